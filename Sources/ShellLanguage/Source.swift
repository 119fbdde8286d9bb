// Source text, positions and ranges.
//
// Every token and AST node carries a `SourceRange` so that any error, static or at run time, can be
// rendered clang-style with the file name, line, column, the source line and a caret under the range.
// Offsets count Unicode scalars (not bytes, not grapheme clusters): columns then match what an editor
// shows for ASCII and most text, and the lexer can index the text in O(1).
import Foundation

/// One script: a file, a `-c` string, or one REPL entry. Immutable, shared by reference from ranges.
public final class Source: Hashable, CustomStringConvertible, Sendable {
    /// The name shown in diagnostics (a path as given, `<stdin>`, `<repl>`, `<command line>`).
    public let name: String
    /// The file this text was read from, if any; `source "x.fqs"` resolves relative paths against its directory.
    public let path: String?
    public let text: String
    /// The text as Unicode scalars; offsets index this array.
    let scalars: [Unicode.Scalar]
    /// Offset of the first scalar of each line (line 1 starts at offset 0).
    let lineStarts: [Int]

    public init(name: String, text: String, path: String? = nil) {
        self.name = name
        self.path = path
        self.text = text
        self.scalars = Array(text.unicodeScalars)
        var starts = [0]
        for (offset, scalar) in scalars.enumerated() where scalar == "\n" { starts.append(offset + 1) }
        self.lineStarts = starts
    }

    /// Reads a script file; the diagnostic name is the path as given.
    public static func file(atPath path: String) throws -> Source {
        guard let data = FileManager.default.contents(atPath: path),
              let text = String(data: data, encoding: .utf8) else {
            throw SourceReadError(path: path)
        }
        return Source(name: path, text: text, path: path)
    }

    /// The directory relative `source` paths resolve against: the file's directory, else nil (use the cwd).
    public var directory: String? {
        guard let path else { return nil }
        let directory = (path as NSString).deletingLastPathComponent
        return directory.isEmpty ? "." : directory
    }

    /// 1-based line and column of a scalar offset (offsets past the end clamp to the end).
    public func location(ofOffset offset: Int) -> SourceLocation {
        let offset = max(0, min(offset, scalars.count))
        // Binary search for the last line start <= offset.
        var low = 0, high = lineStarts.count - 1
        while low < high {
            let middle = (low + high + 1) / 2
            if lineStarts[middle] <= offset { low = middle } else { high = middle - 1 }
        }
        return SourceLocation(line: low + 1, column: offset - lineStarts[low] + 1)
    }

    /// The text of a 1-based line without its newline.
    public func lineText(_ line: Int) -> String {
        guard line >= 1, line <= lineStarts.count else { return "" }
        let start = lineStarts[line - 1]
        var end = line < lineStarts.count ? lineStarts[line] - 1 : scalars.count
        if end > start, scalars[end - 1] == "\r" { end -= 1 }
        return slice(start, max(start, end))
    }

    /// The text between two offsets.
    public func slice(_ start: Int, _ end: Int) -> String {
        let start = max(0, min(start, scalars.count)), end = max(start, min(end, scalars.count))
        var result = String.UnicodeScalarView()
        result.append(contentsOf: scalars[start..<end])
        return String(result)
    }

    public var lineCount: Int { lineStarts.count }
    public var description: String { name }
    public static func == (lhs: Source, rhs: Source) -> Bool { lhs === rhs }
    public func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }
}

/// A script file that could not be read.
public struct SourceReadError: Error, CustomStringConvertible {
    public let path: String
    public init(path: String) { self.path = path }
    /// "no such file" or "not readable UTF-8 text".
    public var reason: String {
        FileManager.default.fileExists(atPath: path) ? "not readable UTF-8 text" : "no such file"
    }
    public var description: String { "cannot read '\(path)': \(reason)" }
}

/// A 1-based line and column.
public struct SourceLocation: Equatable, Comparable, CustomStringConvertible, Sendable {
    public let line: Int
    public let column: Int
    public init(line: Int, column: Int) { self.line = line; self.column = column }
    public var description: String { "\(line):\(column)" }
    public static func < (lhs: SourceLocation, rhs: SourceLocation) -> Bool {
        (lhs.line, lhs.column) < (rhs.line, rhs.column)
    }
}

/// A half-open range of scalar offsets `[start, end)` in one source.
public struct SourceRange: Hashable, CustomStringConvertible, Sendable {
    public let source: Source
    public let start: Int
    public let end: Int

    public init(source: Source, start: Int, end: Int) {
        precondition(start <= end, "SourceRange start \(start) after end \(end)")
        self.source = source
        self.start = start
        self.end = end
    }

    /// The smallest range covering both (same source).
    public func union(_ other: SourceRange) -> SourceRange {
        SourceRange(source: source, start: min(start, other.start), end: max(end, other.end))
    }

    public var startLocation: SourceLocation { source.location(ofOffset: start) }
    public var endLocation: SourceLocation { source.location(ofOffset: end) }
    /// The covered text.
    public var text: String { source.slice(start, end) }
    /// `name:line:col`
    public var description: String { "\(source.name):\(startLocation)" }
}
