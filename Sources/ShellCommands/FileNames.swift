// File names made from user text (plot names, run labels, model labels): never a path.
import Foundation

extension ShellCommands {
    /// `text` as one file-name component: letters, digits and `-_+.` are kept, everything else (`/`, `\`,
    /// spaces, quotes, backquotes, control characters) becomes `_`; a name of dots only gets a leading `_`
    /// (so `..` is never the parent folder) and the result is at most 120 characters. The same rule names
    /// the records file of a run, so a label cannot write outside `<out>` either.
    static func fileNameSafe(_ text: String, fallback: String = "plot") -> String {
        var safe = String(text.map { $0.isLetter || $0.isNumber || "-_+.".contains($0) ? $0 : "_" }.prefix(120))
        if safe.isEmpty { safe = fallback }
        if safe.allSatisfy({ $0 == "." }) { safe = "_" + safe }
        return safe
    }
}
