// fqat-fuzz: libFuzzer harnesses for the inputs fqat-shell reads from users and files (docs/reliability.md).
//
//   language     lexer + parser + checker on script text (the checker sees every command spec)
//   safetensors  the safetensors reader, then `load model` on the same bytes (metadata, quantizers)
//   session      `load session` on the bytes (session JSON, embedded run, validation)
//   idx          IDX parsing, raw or gzip
//   image        PNG/JPEG/BMP/GIF decoding (stb) to RGB
//
// Built normally it replays inputs: `fqat-fuzz <harness> <file or folder>…` runs every file through the
// harness (the regression tests do this over Tests/Fuzz/<harness>/). Built with
// `-Xswiftc -sanitize=fuzzer -Xswiftc -DFUZZING` (scripts/fuzz.sh) its main runs libFuzzer's driver
// (LLVMFuzzerRunDriver) with the harness chosen by $FQAT_FUZZ_TARGET. A thrown Swift error is a correct answer; a trap or a crash is a finding.
import Datasets
import Foundation
import NN
import ShellCommands
import ShellLanguage

/// Discards everything (the harnesses look for crashes, not messages).
final class NullOutput: Output {
    func write(_ text: String, to channel: OutputChannel) {}
}

/// Everything here runs on the main thread: the replay loop, and libFuzzer's driver, which calls
/// `LLVMFuzzerTestOneInput` on the thread that entered `LLVMFuzzerRunDriver` (ours, the main one). So the
/// harness state (one interpreter, the selected harness) is main-actor state, not an unsafe global.
@MainActor
enum Harness: String, CaseIterable {
    case language, safetensors, session, idx, image

    static let interpreter: Interpreter = {
        let session = Session()
        session.settings.out = scratch + "/out"
        session.settings.progress = .off
        session.settings.plot = .none
        session.settings.threads = 1
        return Interpreter(registry: ShellCommands.makeRegistry(session: session), output: NullOutput())
    }()

    static let scratch: String = {
        let dir = NSTemporaryDirectory() + "fqat-fuzz-\(getpid())"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }()

    /// Writes the bytes to a scratch file and runs one shell command on it.
    static func runCommand(_ command: String, on bytes: [UInt8]) {
        let path = scratch + "/input"
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else { return }
        interpreter.run(Source(name: "fuzz", text: "\(command) \"\(path)\""))
    }

    func run(_ bytes: [UInt8]) {
        switch self {
        case .language:
            _ = Harness.interpreter.check(Source(name: "fuzz.fqs", text: String(decoding: bytes, as: UTF8.self)))
        case .safetensors:
            if let file = try? SafeTensors.decode(Data(bytes), source: "fuzz") { _ = file.stateDict }
            Harness.runCommand("load model", on: bytes)
        case .session:
            Harness.runCommand("load session", on: bytes)
        case .idx:
            _ = try? IDX.parse(bytes, path: "fuzz")
        case .image:
            _ = try? ImageDecoder.decode(bytes: bytes, path: "fuzz")
        }
    }
}

#if FUZZING
@MainActor var selectedHarness: Harness = .language

/// Called by libFuzzer's driver on the main thread (see `Harness`); `assumeIsolated` checks that at run time.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    MainActor.assumeIsolated { selectedHarness.run(bytes) }
    return 0
}

/// libFuzzer's driver, called from our own main: SwiftPM links an executable's `main` to the module's
/// entry point, so libFuzzer's `main` is never used.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32
#endif

@main
@MainActor
enum FuzzMain {
    static func main() {
        #if FUZZING
        let name = ProcessInfo.processInfo.environment["FQAT_FUZZ_TARGET"] ?? ""
        guard let harness = Harness(rawValue: name) else {
            FileHandle.standardError.write(Data("fqat-fuzz: set FQAT_FUZZ_TARGET to one of \(Harness.allCases.map(\.rawValue).joined(separator: ", "))\n".utf8))
            exit(64)
        }
        selectedHarness = harness
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzTestOneInput))
        #else
        replay()
        #endif
    }

    static func replay() {
        var arguments = Array(CommandLine.arguments.dropFirst())
        guard let name = arguments.first, let harness = Harness(rawValue: name) else {
            print("usage: fqat-fuzz <\(Harness.allCases.map(\.rawValue).joined(separator: "|"))> <file or folder>…")
            exit(64)
        }
        arguments.removeFirst()
        var files: [String] = []
        for path in arguments {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                print("fqat-fuzz: no such file '\(path)'"); exit(66)
            }
            if isDirectory.boolValue {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
                files += names.sorted().filter { !$0.hasPrefix(".") }.map { (path as NSString).appendingPathComponent($0) }
            } else {
                files.append(path)
            }
        }
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else { print("fqat-fuzz: cannot read '\(file)'"); exit(66) }
            harness.run(Array(data))
        }
        print("fqat-fuzz \(harness.rawValue): \(files.count) inputs, no crash")
    }
}
