// Effects behind small types: where text goes (`Output`), how Ctrl-C reaches running work
// (`Interrupt`), and the exit statuses the shell reports.
import Foundation
import Synchronization

public enum OutputChannel: Sendable {
    case standard, error
}

/// Where the interpreter and commands write. The executable uses `StandardOutput`; tests capture.
public protocol Output: AnyObject {
    func write(_ text: String, to channel: OutputChannel)
}

extension Output {
    /// Writes `text` and a newline to standard output.
    public func line(_ text: String) { write(text + "\n", to: .standard) }
    /// Writes `text` and a newline to standard error.
    public func errorLine(_ text: String) { write(text + "\n", to: .error) }
}

/// The process's stdout and stderr, written at once (no buffering) so progress shows immediately.
public final class StandardOutput: Output {
    public init() {}
    public func write(_ text: String, to channel: OutputChannel) {
        writeUnbuffered(text, to: channel == .standard ? STDOUT_FILENO : STDERR_FILENO)
    }
}

/// Writes all of `text` to a file descriptor with write(2), after flushing C stdio (whatever `print`
/// left in its buffer comes first). Unlike C's `stdout` global, this touches no shared mutable state.
/// A closed pipe or a full disk ends the write silently, as `fputs` would.
public func writeUnbuffered(_ text: String, to descriptor: Int32) {
    fflush(nil)
    var bytes = Array(text.utf8)
    bytes.withUnsafeMutableBytes { buffer in
        var offset = 0
        while offset < buffer.count {
            let n = Foundation.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
            if n > 0 { offset += n } else if n < 0 && errno == EINTR { continue } else { return }
        }
    }
}

/// Keeps everything written, per channel and interleaved (for tests). Thread-safe.
public final class CapturingOutput: Output, Sendable {
    private struct Texts {
        var standard = "", error = "", combined = ""
    }
    private let texts = Mutex(Texts())

    public init() {}

    public func write(_ text: String, to channel: OutputChannel) {
        texts.withLock { t in
            if channel == .standard { t.standard += text } else { t.error += text }
            t.combined += text
        }
    }

    public var standard: String { texts.withLock { $0.standard } }
    public var error: String { texts.withLock { $0.error } }
    /// Both channels in the order written.
    public var combined: String { texts.withLock { $0.combined } }

    /// Standard output split into lines (without the final empty line).
    public var standardLines: [String] {
        var lines = standard.components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        return lines
    }

    public func clear() {
        texts.withLock { $0 = Texts() }
    }
}

/// Ctrl-C as a flag: the executable's SIGINT handler sets it; the interpreter checks it between
/// statements and commands check it at step boundaries (`Invocation.checkInterrupt()`), so a long
/// `train` stops at a clean point and the session keeps its state. Setting and reading are atomic
/// and lock-free, hence safe inside a signal handler.
public final class Interrupt: Sendable {
    private let flag = Atomic<Bool>(false)

    public init() {}

    /// The instance the process-wide SIGINT handler sets.
    public static let shared = Interrupt()

    public func request() { flag.store(true, ordering: .sequentiallyConsistent) }
    public func clear() { flag.store(false, ordering: .sequentiallyConsistent) }
    public var isRequested: Bool { flag.load(ordering: .sequentiallyConsistent) }

    /// Throws `Interrupted` when a request is pending (the request stays pending until `clear()`).
    public func check() throws {
        if isRequested { throw Interrupted() }
    }

    /// Installs a SIGINT handler that sets `Interrupt.shared`. A second Ctrl-C before the first was
    /// acted on ends the process with status 130 (the escape hatch when a command never polls).
    public static func installSignalHandler() {
        signal(SIGINT) { _ in
            if Interrupt.shared.isRequested { _exit(130) }
            Interrupt.shared.request()
        }
    }
}

/// Thrown when work stops because of Ctrl-C.
public struct Interrupted: Error, CustomStringConvertible {
    public init() {}
    public var description: String { "interrupted" }
}

/// Thrown by `exit [status]`; unwinds every block and sourced file.
public struct ExitRequest: Error {
    public var status: Int32
    public init(status: Int32) { self.status = status }
}

/// A run-time error at a place in the script (exit status 70).
public struct RuntimeError: Error, CustomStringConvertible {
    public var diagnostic: Diagnostic
    public init(_ message: String, at range: SourceRange?, notes: [Diagnostic] = []) {
        diagnostic = .error(message, at: range, notes: notes)
    }
    public var description: String { diagnostic.rendered() }
}

/// Process exit statuses (jlox's 65/70 after BSD sysexits).
public enum ExitStatus {
    public static let success: Int32 = 0
    /// Syntax or checking errors: nothing ran (EX_DATAERR).
    public static let staticError: Int32 = 65
    /// The script file could not be read (EX_NOINPUT).
    public static let noInput: Int32 = 66
    /// A command or expression failed while running (EX_SOFTWARE).
    public static let runtimeError: Int32 = 70
    /// Stopped by Ctrl-C (128 + SIGINT).
    public static let interrupted: Int32 = 130
}
