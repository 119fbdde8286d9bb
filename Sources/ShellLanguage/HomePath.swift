// `~` in paths the user types: one rule, used by every path argument, `source`, file completion and
// `data ~/folder`.
import Foundation

public enum HomePath {
    /// `~` alone is the home directory and `~/rest` is `rest` inside it; anything else (including
    /// `~user/…`, which a shell would expand through the password database) is returned unchanged.
    public static func expand(_ path: String, home: String = NSHomeDirectory()) -> String {
        if path == "~" { return home }
        guard path.hasPrefix("~/") else { return path }
        return home + path.dropFirst()
    }
}
