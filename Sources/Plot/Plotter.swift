// The effect behind a protocol (STYLE.md: "Effects behind protocols"): `GnuplotProcess` pipes scripts
// into a live gnuplot; `RecordingPlotter` records them for tests, which never spawn gnuplot.
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a render produced.
public struct PlotResult: Equatable, Sendable {
    /// The image file written (PNG/SVG targets); nil for terminal targets.
    public var outputPath: String?
    /// Text for the terminal: gnuplot `dumb` output, a sixel stream, or the Swift heatmap. Empty for files.
    public var terminalOutput: String
    /// gnuplot's messages on stderr that did not stop the plot (warnings).
    public var messages: String
    /// The data files written, in order.
    public var dataFiles: [String]

    public init(outputPath: String? = nil, terminalOutput: String = "", messages: String = "", dataFiles: [String] = []) {
        self.outputPath = outputPath; self.terminalOutput = terminalOutput
        self.messages = messages; self.dataFiles = dataFiles
    }
}

/// Failures a user can act on.
public enum PlotError: Error, Equatable, CustomStringConvertible {
    /// No gnuplot executable. The data files were written before this was thrown.
    case gnuplotMissing(dataFiles: [String])
    /// gnuplot stopped at an error: its message, the script line number and text it named, its status.
    case gnuplotFailed(message: String, line: Int?, offendingLine: String?, status: Int32)
    /// gnuplot could not be started.
    case launchFailed(executable: String, reason: String)
    /// A data file (or its folder) could not be written.
    case cannotWrite(path: String, reason: String)

    public var description: String {
        switch self {
        case .gnuplotMissing(let files):
            let data = files.isEmpty ? "" : " The data was written to \(files.joined(separator: ", "))."
            return "gnuplot is not installed: install it with `apt-get install gnuplot-nox` (or put gnuplot on PATH) and plot again.\(data)"
        case .gnuplotFailed(let message, let line, let offendingLine, let status):
            var text = "gnuplot failed (exit status \(status)): \(message)"
            if let line { text += "\n  at script line \(line)" }
            if let offendingLine { text += ": \(offendingLine)" }
            return text
        case .launchFailed(let executable, let reason):
            return "could not start gnuplot at \(executable): \(reason)"
        case .cannotWrite(let path, let reason):
            return "cannot write \(path): \(reason); check that the folder exists and is writable"
        }
    }
}

/// Runs gnuplot scripts.
public protocol Plotter {
    /// Writes `dataFiles` (creating their folders), then runs `script`. The script's output (image file or
    /// terminal text) is described by the returned result.
    func render(script: String, dataFiles: [DataFile]) throws -> PlotResult
    /// Writes data files only (terminal views drawn in Swift still leave their CSV behind).
    func write(dataFiles: [DataFile]) throws
}

// MARK: - Live gnuplot

/// Pipes each script into a fresh `gnuplot` process (about 30 ms to start; a fresh process means no state
/// can leak between plots, and each script also begins with `reset`).
///
/// The script goes to gnuplot's standard input, which gnuplot reads as the file `/dev/stdin`: fed as a file
/// it stops at the first error and names the line ("/dev/stdin" line 7: ...), where in interactive
/// stdin mode it would carry on and report "line 0". Standard output and standard error are drained
/// concurrently so a chatty gnuplot can never block on a full pipe.
public struct GnuplotProcess: Plotter {
    /// The gnuplot executable, nil when none was found.
    public var executable: String?
    /// The folder gnuplot runs in (relative paths in scripts resolve against it); nil keeps ours.
    public var workingDirectory: String?

    public init(executable: String? = nil, workingDirectory: String? = nil,
                environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.executable = executable ?? GnuplotProcess.locate(environment: environment)
        self.workingDirectory = workingDirectory
    }

    /// `/usr/bin/gnuplot` if executable, else the first `gnuplot` on `PATH`.
    public static func locate(environment: [String: String]) -> String? {
        let manager = FileManager.default
        if manager.isExecutableFile(atPath: "/usr/bin/gnuplot") { return "/usr/bin/gnuplot" }
        for folder in (environment["PATH"] ?? "").split(separator: ":") {
            let candidate = "\(folder)/gnuplot"
            if manager.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    public func write(dataFiles: [DataFile]) throws {
        try writeFiles(dataFiles)
    }

    public func render(script: String, dataFiles: [DataFile]) throws -> PlotResult {
        try writeFiles(dataFiles)
        guard let executable else { throw PlotError.gnuplotMissing(dataFiles: dataFiles.map(\.path)) }
        let readsStdinAsFile = FileManager.default.fileExists(atPath: "/dev/stdin")
        let result: (termination: Termination, output: Data, errors: Data)
        do {
            result = try Subprocess.run(executable: executable, arguments: readsStdinAsFile ? ["/dev/stdin"] : [],
                                        workingDirectory: workingDirectory, input: Data(script.utf8))
        } catch let error as SubprocessError {
            throw PlotError.launchFailed(executable: executable, reason: error.reason)
        }
        let stdout = String(decoding: result.output, as: UTF8.self)
        let stderr = String(decoding: result.errors, as: UTF8.self)
        let status = result.termination.status
        if result.termination != .exited(0) {
            throw Self.failure(stderr: stderr, script: script, status: status)
        }
        return PlotResult(outputPath: nil, terminalOutput: stdout, messages: stderr.trimmingCharacters(in: .whitespacesAndNewlines),
                          dataFiles: dataFiles.map(\.path))
    }

    /// Turns gnuplot's stderr into a typed error. gnuplot reports `"<file>" line N: message` (file input)
    /// or `line N: message`, after echoing the command with a caret under the fault.
    static func failure(stderr: String, script: String, status: Int32) -> PlotError {
        let lines = stderr.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
        let scriptLines = script.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        for text in lines.reversed() {
            guard let range = text.range(of: #"line [0-9]+: "#, options: .regularExpression) else { continue }
            let numberText = text[range].dropFirst(5).dropLast(2)
            let message = String(text[range.upperBound...]).trimmingCharacters(in: .whitespaces)
            if let number = Int(numberText), number > 0 {
                let offending = number <= scriptLines.count ? scriptLines[number - 1] : nil
                return .gnuplotFailed(message: message, line: number, offendingLine: offending, status: status)
            }
            return .gnuplotFailed(message: message, line: nil, offendingLine: nil, status: status)
        }
        let message = stderr.trimmingCharacters(in: .whitespacesAndNewlines)
        return .gnuplotFailed(message: message.isEmpty ? "no message" : message, line: nil, offendingLine: nil, status: status)
    }
}

/// A process-wide SIGPIPE handler set to ignore (only when it is still the default, which would
/// kill the whole shell if gnuplot closes its input early); writes then fail with EPIPE instead.
/// Children get the default back (Subprocess resets it).
func ignoreBrokenPipe() {
    var current = sigaction()
    if sigaction(SIGPIPE, nil, &current) == 0 {
        #if canImport(Glibc)
        let isDefault = current.__sigaction_handler.sa_handler == nil
        #else
        let isDefault = current.__sigaction_u.__sa_handler == nil
        #endif
        if isDefault { signal(SIGPIPE, SIG_IGN) }
    }
}

/// Bytes gathered by the draining threads (each writes its own field once, read after `group.wait()`).
final class Collected: Sendable {
    private let state = Mutex<(output: Data, errors: Data)>((Data(), Data()))
    var bytes: (output: Data, errors: Data) { state.withLock { $0 } }
    func setOutput(_ data: Data) { state.withLock { $0.output = data } }
    func setErrors(_ data: Data) { state.withLock { $0.errors = data } }
}

/// Writes each file, creating its folder.
func writeFiles(_ files: [DataFile]) throws {
    let manager = FileManager.default
    for file in files {
        let folder = URL(fileURLWithPath: file.path).deletingLastPathComponent()
        do {
            try manager.createDirectory(at: folder, withIntermediateDirectories: true)
            try Data(file.contents.utf8).write(to: URL(fileURLWithPath: file.path), options: .atomic)
        } catch {
            throw PlotError.cannotWrite(path: file.path, reason: error.localizedDescription)
        }
    }
}

// MARK: - Test stand-in

/// Records scripts and data files instead of running gnuplot; answers with `result` or throws `error`.
public final class RecordingPlotter: Plotter {
    public private(set) var scripts: [String] = []
    /// The data files handed to each render (and each `write`), in order.
    public private(set) var dataFiles: [[DataFile]] = []
    /// What `render` returns (its `dataFiles` are filled in from the call).
    public var result: PlotResult
    /// When set, `render` throws it.
    public var error: PlotError?

    public init(result: PlotResult = PlotResult(), error: PlotError? = nil) {
        self.result = result
        self.error = error
    }

    public func render(script: String, dataFiles: [DataFile]) throws -> PlotResult {
        scripts.append(script)
        self.dataFiles.append(dataFiles)
        if let error { throw error }
        var result = self.result
        result.dataFiles = dataFiles.map(\.path)
        return result
    }

    public func write(dataFiles: [DataFile]) throws {
        self.dataFiles.append(dataFiles)
    }
}
