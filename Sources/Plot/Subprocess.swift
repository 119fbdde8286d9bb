// A child process we start with posix_spawn and reap with waitpid: gnuplot for the shell, and the
// shell itself (or tmux) for the tests. Foundation's `Process` is not used because on Linux its
// `waitUntilExit` can block forever: it learns of the child's exit from a SIGCHLD dispatch source,
// and the kernel may deliver SIGCHLD to a thread that does not block it (OpenBLAS's pool threads
// start before `main`), where the signal is dropped. `waitpid` on the child's pid cannot miss it.
import CSpawn
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

public struct SubprocessError: Error, CustomStringConvertible {
    public var executable: String
    public var reason: String
    public var description: String { "could not start \(executable): \(reason)" }
}

/// How a child ended.
public enum Termination: Equatable, Sendable {
    case exited(Int32)
    case signalled(Int32)

    /// The shell's convention: the exit status, or 128 + the signal number.
    public var status: Int32 {
        switch self {
        case .exited(let code): return code
        case .signalled(let signal): return 128 + signal
        }
    }
}

public final class Subprocess: Sendable {
    /// Where a child's standard stream goes.
    public enum Stream: Sendable {
        /// The parent's own stream (or /dev/null if the parent has none open).
        case inherit
        case null
        /// A new pipe; the parent's end is in `input`, `output` or `errors`.
        case pipe
        /// stderr only: the same pipe or file as stdout.
        case standardOutput
    }

    public let pid: pid_t
    public let executable: String
    /// The parent's end of the child's stdin, stdout and stderr pipes, when requested.
    public let input: FileHandle?
    public let output: FileHandle?
    public let errors: FileHandle?
    /// How the child ended, once it has been reaped.
    private let ended = Mutex<Termination?>(nil)

    /// Starts `executable` (an absolute path) with `arguments`.
    public init(executable: String, arguments: [String] = [], workingDirectory: String? = nil,
                environment: [String: String]? = nil,
                stdin: Stream = .inherit, stdout: Stream = .inherit, stderr: Stream = .inherit) throws {
        self.executable = executable
        var parentEnds: [Int32] = []      // closed in the parent after the spawn (the child's ends)
        var keep: [FileHandle?] = [nil, nil, nil]
        var childFDs: [Int32] = [-1, -1, -1]
        func makePipe() throws -> (read: Int32, write: Int32) {
            var fds: [Int32] = [0, 0]
            let status = cspawn_pipe(&fds)
            guard status == 0 else {
                throw SubprocessError(executable: executable, reason: String(cString: strerror(status)))
            }
            return (fds[0], fds[1])
        }
        func openStandard(_ fd: Int32) -> Int32 { fcntl(fd, F_GETFD) == -1 ? -1 : fd }
        do {
            for (index, stream) in [stdin, stdout, stderr].enumerated() {
                switch stream {
                case .inherit: childFDs[index] = openStandard(Int32(index))
                case .null: childFDs[index] = -1
                case .standardOutput: childFDs[index] = childFDs[1]
                case .pipe:
                    let p = try makePipe()
                    if index == 0 {
                        childFDs[0] = p.read; parentEnds.append(p.read)
                        keep[0] = FileHandle(fileDescriptor: p.write, closeOnDealloc: true)
                    } else {
                        childFDs[index] = p.write; parentEnds.append(p.write)
                        keep[index] = FileHandle(fileDescriptor: p.read, closeOnDealloc: true)
                    }
                }
            }
        } catch {
            parentEnds.forEach { close($0) }
            throw error
        }
        defer { parentEnds.forEach { close($0) } }

        let env = environment ?? ProcessInfo.processInfo.environment
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var child: pid_t = 0
        let status: Int32 = argv.withUnsafeBufferPointer { a in
            envp.withUnsafeBufferPointer { e in
                if let workingDirectory {
                    return cspawn_start(executable, a.baseAddress, e.baseAddress, workingDirectory,
                                        childFDs[0], childFDs[1], childFDs[2], &child)
                }
                return cspawn_start(executable, a.baseAddress, e.baseAddress, nil,
                                    childFDs[0], childFDs[1], childFDs[2], &child)
            }
        }
        guard status == 0 else {
            throw SubprocessError(executable: executable, reason: String(cString: strerror(status)))
        }
        pid = child
        input = keep[0]
        output = keep[1]
        errors = keep[2]
    }

    /// Blocks until the child ends.
    @discardableResult
    public func wait() -> Termination {
        while true {
            if let done = poll(blocking: true) { return done }
        }
    }

    /// Waits up to `timeout` seconds; nil if the child is still running.
    public func wait(timeout: Double) -> Termination? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let done = poll(blocking: false) { return done }
            if Date() >= deadline { return nil }
            usleep(20_000)
        }
    }

    /// The termination, if the child has ended (reaps it).
    public var termination: Termination? { poll(blocking: false) }

    /// Sends `signal` (SIGTERM by default) unless the child has already been reaped.
    public func send(signal: Int32 = SIGTERM) {
        ended.withLock { if $0 == nil { kill(pid, signal) } }
    }

    /// Reaps the child if it has ended. The lock is not held during a blocking `waitpid`, so another
    /// thread can still `send` a signal to a child that one thread is waiting for.
    private func poll(blocking: Bool) -> Termination? {
        if let done = ended.withLock({ $0 }) { return done }
        var raw: Int32 = 0
        let result = waitpid(pid, &raw, blocking ? 0 : WNOHANG)
        let error = errno
        return ended.withLock { ended -> Termination? in
            if let ended { return ended }  // another thread reaped it meanwhile
            if result == 0 { return nil }
            if result == -1 {
                if error == EINTR { return nil }
                // ECHILD: someone else reaped it (or SIGCHLD is ignored); the status is unknowable.
                ended = .exited(-1)
                return ended
            }
            // WIFEXITED / WEXITSTATUS / WTERMSIG are macros Swift cannot import.
            let signalNumber = raw & 0x7f
            ended = signalNumber == 0 ? .exited((raw >> 8) & 0xff) : .signalled(signalNumber)
            return ended
        }
    }

    /// Runs to completion, feeding `input` to stdin and collecting stdout and stderr (each drained
    /// on its own thread so a chatty child never blocks on a full pipe).
    public static func run(executable: String, arguments: [String] = [], workingDirectory: String? = nil,
                           environment: [String: String]? = nil, input: Data? = nil,
                           mergeErrors: Bool = false) throws -> (termination: Termination, output: Data, errors: Data) {
        if input != nil { ignoreBrokenPipe() }
        let child = try Subprocess(executable: executable, arguments: arguments, workingDirectory: workingDirectory,
                                   environment: environment, stdin: input == nil ? .null : .pipe,
                                   stdout: .pipe, stderr: mergeErrors ? .standardOutput : .pipe)
        let collected = Collected()
        let group = DispatchGroup()
        if let out = child.output {
            DispatchQueue.global().async(group: group) { collected.setOutput(out.readDataToEndOfFile()) }
        }
        if let err = child.errors {
            DispatchQueue.global().async(group: group) { collected.setErrors(err.readDataToEndOfFile()) }
        }
        if let input, let handle = child.input {
            // The child may stop reading early (gnuplot after an error); EPIPE is then expected.
            try? handle.write(contentsOf: input)
            try? handle.close()
        }
        let termination = child.wait()
        group.wait()
        let (output, errors) = collected.bytes
        return (termination, output, errors)
    }
}
