// Diagnostics: what went wrong, where, rendered once at the boundary in clang's format:
//
//     study.fqs:3:1: error: unknown command 'trian'; did you mean 'train'?
//     trian fqat steps=10
//     ^~~~~
//
// The lexer, parser, checker and interpreter all report through this one type, so syntax, static
// and run-time errors look the same to the user.
import Foundation

public enum Severity: String, Sendable {
    case error, warning, note
}

/// One message about a place in a script, with optional notes (each may point elsewhere).
public struct Diagnostic: Error, CustomStringConvertible {
    public var severity: Severity
    public var message: String
    public var range: SourceRange?
    public var notes: [Diagnostic]

    public init(_ severity: Severity, _ message: String, at range: SourceRange?, notes: [Diagnostic] = []) {
        self.severity = severity
        self.message = message
        self.range = range
        self.notes = notes
    }

    public static func error(_ message: String, at range: SourceRange?, notes: [Diagnostic] = []) -> Diagnostic {
        Diagnostic(.error, message, at: range, notes: notes)
    }
    public static func warning(_ message: String, at range: SourceRange?, notes: [Diagnostic] = []) -> Diagnostic {
        Diagnostic(.warning, message, at: range, notes: notes)
    }
    public static func note(_ message: String, at range: SourceRange? = nil) -> Diagnostic {
        Diagnostic(.note, message, at: range)
    }

    /// `line:col` of the start, if located.
    public var location: SourceLocation? { range?.startLocation }

    /// The compact form used by test fixtures: `line:col: message` (or just the message).
    public var summary: String {
        guard let location else { return message }
        return "\(location): \(message)"
    }

    /// clang-style text: header line, source line, caret line, then the notes.
    public func rendered() -> String {
        var text = ""
        if let range {
            let location = range.startLocation
            text += "\(range.source.name):\(location.line):\(location.column): \(severity.rawValue): \(message)\n"
            text += Diagnostic.snippet(range)
        } else {
            text += "\(severity.rawValue): \(message)\n"
        }
        for note in notes { text += note.rendered() }
        return text
    }

    public var description: String { rendered() }

    /// The source line and a caret/underline under the range (clipped to the first line).
    static func snippet(_ range: SourceRange) -> String {
        let start = range.startLocation
        var line = range.source.lineText(start.line)
        var lineScalars = Array(line.unicodeScalars)
        var startColumn = start.column
        // A very long line is shown as a window around the caret.
        let window = 160
        var clippedEnd = false
        if lineScalars.count > window {
            let from = max(0, min(start.column - 1 - 40, lineScalars.count - window))
            let to = min(lineScalars.count, from + window)
            clippedEnd = to < lineScalars.count
            var shown = String.UnicodeScalarView()
            if from > 0 { shown.append(contentsOf: "…".unicodeScalars) }
            shown.append(contentsOf: lineScalars[from..<to])
            if clippedEnd { shown.append(contentsOf: "…".unicodeScalars) }
            startColumn = start.column - from + (from > 0 ? 1 : 0)
            line = String(shown)
            lineScalars = Array(shown)
        }
        // Keep tabs so the caret lines up under the text whatever the tab width.
        var caret = ""
        for index in 0..<max(0, min(startColumn - 1, lineScalars.count)) {
            caret.append(lineScalars[index] == "\t" ? "\t" : " ")
        }
        let end = range.endLocation
        let lastColumn = end.line == start.line ? end.column - (start.column - startColumn) : lineScalars.count + 1
        let width = max(1, min(lastColumn, lineScalars.count + 1) - startColumn)
        caret += "^" + String(repeating: "~", count: width - 1)
        return line + "\n" + caret + "\n"
    }
}

extension Diagnostic {
    /// Source order within `main`: a diagnostic from a sourced file sorts at the `source` line that
    /// brought it in (its "sourced here" note); the sort is stable, so a file's own order is kept.
    public static func sorted(_ diagnostics: [Diagnostic], main: Source) -> [Diagnostic] {
        func key(_ diagnostic: Diagnostic) -> Int {
            if let range = diagnostic.range, range.source == main { return range.start }
            for note in diagnostic.notes.reversed() {
                if let range = note.range, range.source == main { return range.start }
            }
            return Int.max
        }
        return capped(diagnostics.enumerated()
            .sorted { (key($0.element), $0.offset) < (key($1.element), $1.offset) }
            .map(\.element))
    }

    /// At most this many diagnostics per source line and per script are shown.
    public static let maxPerLine = 3
    public static let maxPerFile = 50

    /// Keeps the first `maxPerLine` diagnostics of each line and `maxPerFile` in all; what was left out is
    /// counted in one last diagnostic (an error when an error was left out), so a line of 5,000 bad escapes
    /// prints a few lines, not megabytes.
    public static func capped(_ diagnostics: [Diagnostic]) -> [Diagnostic] {
        guard diagnostics.count > maxPerLine else { return diagnostics }
        var perLine: [String: Int] = [:]
        var kept: [Diagnostic] = []
        var dropped = 0
        var droppedError = false
        for d in diagnostics {
            let lineKey = d.range.map { "\($0.source.name):\($0.startLocation.line)" } ?? ""
            let onLine = perLine[lineKey, default: 0]
            if kept.count >= maxPerFile || (!lineKey.isEmpty && onLine >= maxPerLine) {
                dropped += 1
                if d.severity == .error { droppedError = true }
                continue
            }
            perLine[lineKey] = onLine + 1
            kept.append(d)
        }
        if dropped > 0 {
            let text = "\(dropped) more problem\(dropped == 1 ? "" : "s") not shown (at most \(maxPerLine) per line and \(maxPerFile) in all); fix these first"
            kept.append(droppedError ? .error(text, at: nil) : .warning(text, at: nil))
        }
        return kept
    }
}

/// Several diagnostics thrown together (a script that failed to parse or check).
public struct DiagnosticList: Error, CustomStringConvertible {
    public var diagnostics: [Diagnostic]
    public init(_ diagnostics: [Diagnostic]) { self.diagnostics = diagnostics }
    public var errors: [Diagnostic] { diagnostics.filter { $0.severity == .error } }
    public var description: String { diagnostics.map { $0.rendered() }.joined() }
}

// MARK: - Suggestions

/// "Did you mean" by edit distance (Levenshtein with adjacent transpositions, case-insensitive).
public enum Suggestions {
    /// Optimal string alignment distance between two strings.
    public static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a.lowercased()), b = Array(b.lowercased())
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        // table is (a.count+1) x (b.count+1), row-major.
        let width = b.count + 1
        var table = [Int](repeating: 0, count: (a.count + 1) * width)
        for i in 0...a.count { table[i * width] = i }
        for j in 0...b.count { table[j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                var best = min(table[(i - 1) * width + j] + 1, table[i * width + j - 1] + 1,
                               table[(i - 1) * width + j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    best = min(best, table[(i - 2) * width + j - 2] + 1)
                }
                table[i * width + j] = best
            }
        }
        return table[a.count * width + b.count]
    }

    /// The closest candidate within a distance that grows with the word (1 for short words, up to 3),
    /// or a candidate the word is a prefix of when that is unique. Nil when nothing is close.
    public static func closest(to word: String, in candidates: [String]) -> String? {
        guard !word.isEmpty else { return nil }
        let limit = min(3, max(1, word.count / 3))
        var best: (String, Int)?
        for candidate in candidates where candidate != word {
            let d = distance(word, candidate)
            // Sharing nothing is no suggestion (`b` is not a misspelt `y`).
            guard d < word.count, d < candidate.count else { continue }
            if d <= limit, best == nil || d < best!.1 { best = (candidate, d) }
        }
        if let best { return best.0 }
        let prefixed = candidates.filter { $0.lowercased().hasPrefix(word.lowercased()) && $0 != word }
        return prefixed.count == 1 ? prefixed[0] : nil
    }

    /// "; did you mean 'x'?" or "".
    static func didYouMean(_ word: String, in candidates: [String]) -> String {
        guard let match = closest(to: word, in: candidates) else { return "" }
        return "; did you mean '\(match)'?"
    }
}
