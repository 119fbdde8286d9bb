// Name patterns for addressing parameters (scale factors) by name, e.g. `layer3.*.a.s`.
//
// A small glob in the spirit of POSIX fnmatch without FNM_PATHNAME: the dot is an ordinary
// character, so `*` may span dots (`layer3.*.a.s` matches `layer3.0.conv1.a.s`). Parameter names
// are dotted paths whose depth varies between blocks, which is why `*` is not confined to one
// component. Matching is case-sensitive and anchored at both ends.
//
//   *        any run of characters, including none and including dots
//   ?        exactly one character
//   [abc]    one character from the set; ranges like [0-3]; [!abc] or [^abc] negates
//   \x       the character x literally (to match a literal *, ?, [ or \)
//
// A pattern with no special character is an exact name.

/// A compiled glob pattern over parameter names.
public struct NamePattern: Equatable, Codable, Sendable, CustomStringConvertible {
    /// The pattern as the user wrote it.
    public let text: String
    private let elements: [Element]

    private enum Element: Equatable, Sendable {
        case literal(Character)
        case anyOne
        case anyRun
        case set(members: [ClosedRange<Character>], negated: Bool)
    }

    /// Compiles `text`; throws when a `[` is never closed or the pattern ends in a lone `\`.
    public init(_ text: String) throws {
        self.text = text
        var out: [Element] = []
        let chars = Array(text)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            switch c {
            case "*":
                // Consecutive stars mean the same as one.
                if out.last != .anyRun { out.append(.anyRun) }
                i += 1
            case "?":
                out.append(.anyOne)
                i += 1
            case "\\":
                guard i + 1 < chars.count else {
                    throw NamePatternError.trailingEscape(pattern: text)
                }
                out.append(.literal(chars[i + 1]))
                i += 2
            case "[":
                var j = i + 1
                var negated = false
                if j < chars.count, chars[j] == "!" || chars[j] == "^" { negated = true; j += 1 }
                var members: [ClosedRange<Character>] = []
                var first = true
                // A `]` right after `[` (or `[!`) is a member, as in fnmatch.
                while j < chars.count, chars[j] != "]" || first {
                    first = false
                    let lo = chars[j]
                    if j + 2 < chars.count, chars[j + 1] == "-", chars[j + 2] != "]" {
                        let hi = chars[j + 2]
                        guard lo <= hi else {
                            throw NamePatternError.reversedRange(pattern: text, range: "\(lo)-\(hi)")
                        }
                        members.append(lo...hi)
                        j += 3
                    } else {
                        members.append(lo...lo)
                        j += 1
                    }
                }
                guard j < chars.count else { throw NamePatternError.unclosedSet(pattern: text) }
                out.append(.set(members: members, negated: negated))
                i = j + 1
            default:
                out.append(.literal(c))
                i += 1
            }
        }
        elements = out
    }

    /// True when the pattern has no wildcard: it names exactly one parameter.
    public var isExactName: Bool {
        elements.allSatisfy { if case .literal = $0 { return true } else { return false } }
    }

    /// Whether the whole of `name` matches the pattern.
    public func matches(_ name: String) -> Bool {
        let s = Array(name)
        // Iterative wildcard matching with backtracking to the most recent `*` only: on a mismatch,
        // let that star swallow one more character and retry. Sufficient because a later star can
        // absorb anything an earlier one could. O(|pattern|·|name|) worst case.
        var p = 0, k = 0
        var starP = -1, starK = 0
        while k < s.count {
            if p < elements.count {
                switch elements[p] {
                case .anyRun:
                    starP = p; starK = k; p += 1
                    continue
                case .anyOne:
                    p += 1; k += 1
                    continue
                case .literal(let c) where c == s[k]:
                    p += 1; k += 1
                    continue
                case .set(let members, let negated) where members.contains(where: { $0.contains(s[k]) }) != negated:
                    p += 1; k += 1
                    continue
                default:
                    break
                }
            }
            guard starP >= 0 else { return false }
            starK += 1
            k = starK
            p = starP + 1
        }
        while p < elements.count, elements[p] == .anyRun { p += 1 }
        return p == elements.count
    }

    public var description: String { text }

    // Stored as its text; decoding compiles it again.
    public init(from decoder: Decoder) throws {
        try self.init(try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(text)
    }
}

/// A malformed name pattern (user error).
public enum NamePatternError: Error, Equatable, CustomStringConvertible {
    case unclosedSet(pattern: String)
    case trailingEscape(pattern: String)
    case reversedRange(pattern: String, range: String)

    public var description: String {
        switch self {
        case .unclosedSet(let p):
            return "name pattern '\(p)' opens a '[' set that is never closed; add ']' or write '\\[' for a literal bracket"
        case .trailingEscape(let p):
            return "name pattern '\(p)' ends with a lone '\\'; remove it or write '\\\\' for a literal backslash"
        case .reversedRange(let p, let r):
            return "name pattern '\(p)' has the range '\(r)' whose ends are reversed; write the smaller character first"
        }
    }
}
