// The read-eval-print loop over any line source, so it runs the same under libedit, over a pipe and
// in tests. An entry that ends inside a block, bracket or string asks for another line with the
// continuation prompt (like lua.c); errors are reported and the session goes on with its state.
import Foundation

/// What a line reader returns.
public enum LineInput: Equatable {
    case line(String)
    /// Ctrl-C at the prompt: drop the partial entry and prompt again.
    case interrupted
    /// Ctrl-D or the end of the input stream.
    case endOfInput
}

/// A source of input lines (libedit, stdin, or a script in tests).
public protocol LineReader: AnyObject {
    func readLine(prompt: String) -> LineInput
    /// Records a complete entry (possibly several lines joined by newlines).
    func addHistory(_ entry: String)
    /// Entries so far, oldest first (what `history` shows).
    var history: [String] { get }
}

/// Reads standard input without prompts or line editing (stdin is not a terminal).
public final class StdinLineReader: LineReader {
    public private(set) var history: [String] = []
    /// Write prompts to standard output (off by default: piped input should give clean output).
    public var showsPrompts: Bool

    public init(showsPrompts: Bool = false) { self.showsPrompts = showsPrompts }

    public func readLine(prompt: String) -> LineInput {
        if showsPrompts {
            writeUnbuffered(prompt, to: STDOUT_FILENO)
        }
        guard let line = Swift.readLine(strippingNewline: true) else { return .endOfInput }
        return .line(line)
    }

    public func addHistory(_ entry: String) { history.append(entry) }
}

/// Replays fixed input (tests, scripted demos); records the prompts it was shown.
public final class ScriptedLineReader: LineReader {
    public private(set) var inputs: [LineInput]
    public private(set) var prompts: [String] = []
    public private(set) var history: [String] = []

    public init(_ inputs: [LineInput]) { self.inputs = inputs }
    public convenience init(lines: [String]) { self.init(lines.map { .line($0) }) }

    public func readLine(prompt: String) -> LineInput {
        prompts.append(prompt)
        return inputs.isEmpty ? .endOfInput : inputs.removeFirst()
    }

    public func addHistory(_ entry: String) { history.append(entry) }
}

public final class Repl {
    public let interpreter: Interpreter
    public let lineReader: LineReader
    public var prompt = "fqat> "
    public var continuationPrompt = "...> "
    /// The file name shown in diagnostics for an entry.
    public var sourceName = "<repl>"
    /// Printed once before the first prompt (nil for none).
    public var banner: String?

    public init(interpreter: Interpreter, lineReader: LineReader) {
        self.interpreter = interpreter
        self.lineReader = lineReader
    }

    /// Runs until `exit` (returns its status) or the end of input (returns the last entry's status,
    /// so a piped session that ends on an error reports it).
    public func run() -> Int32 {
        interpreter.historyProvider = { [weak lineReader] in lineReader?.history ?? [] }
        if let banner { interpreter.output.line(banner) }
        var buffer: [String] = []
        var lastStatus = ExitStatus.success
        while true {
            let input = lineReader.readLine(prompt: buffer.isEmpty ? prompt : continuationPrompt)
            switch input {
            case .interrupted:
                buffer = []
                interpreter.interrupt.clear()
            case .endOfInput:
                if !buffer.isEmpty {
                    // Input ended inside a block or string: report it like any other error.
                    let result = submit(buffer.joined(separator: "\n"))
                    if result.exitRequested { return result.status }
                    lastStatus = result.status
                }
                return lastStatus
            case .line(let line):
                if buffer.isEmpty, line.allSatisfy({ $0 == " " || $0 == "\t" }) { continue }
                buffer.append(line)
                let text = buffer.joined(separator: "\n")
                if Lexer.tokenize(Source(name: sourceName, text: text)).isIncomplete { continue }
                buffer = []
                let result = submit(text)
                if result.exitRequested { return result.status }
                lastStatus = result.status
            }
        }
    }

    /// Runs one complete entry.
    func submit(_ text: String) -> RunResult {
        lineReader.addHistory(text)
        interpreter.interrupt.clear()
        return interpreter.run(Source(name: sourceName, text: text))
    }

    /// Whether `text` needs more lines before it can run (open block, bracket or string, or a
    /// trailing `\`).
    public static func needsMoreInput(_ text: String) -> Bool {
        Lexer.tokenize(Source(name: "<repl>", text: text)).isIncomplete
    }
}
