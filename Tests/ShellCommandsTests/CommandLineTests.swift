// fqat-shell's own flags go through swift-argument-parser: `--help` lists every flag and the exit
// codes; a bad flag is a usage error (exit 64) that names the flag and shows the usage; whatever
// follows the script's path is the script's ($1, `--name=value` options), as before.
import Foundation
import Plot
import XCTest

final class CommandLineTests: XCTestCase {
    struct Outcome { var status: Int32; var stdout: String; var stderr: String }

    func run(_ arguments: [String]) throws -> Outcome {
        let binary = repositoryRoot.appendingPathComponent(".build/debug/fqat-shell").path
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: binary), "fqat-shell is not built")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fqat-argv-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let script = "let steps = option \"steps\" 600\nprint \"got\" $1 steps args\n"
        XCTAssertTrue(FileManager.default.createFile(atPath: dir.appendingPathComponent("s.fqs").path, contents: Data(script.utf8)))
        let child = try Subprocess(executable: binary, arguments: arguments, workingDirectory: dir.path,
                                   stdin: .null, stdout: .pipe, stderr: .pipe)
        let errors = child.errors!, box = ErrorsBox(), group = DispatchGroup()
        DispatchQueue.global().async(group: group) { box.data = errors.readDataToEndOfFile() }
        let out = child.output!.readDataToEndOfFile()
        var ended = child.wait(timeout: 60)
        if ended == nil { child.send(signal: SIGKILL); ended = child.wait(); XCTFail("fqat-shell \(arguments) did not end") }
        group.wait()
        return Outcome(status: ended!.status, stdout: String(decoding: out, as: UTF8.self), stderr: String(decoding: box.data, as: UTF8.self))
    }

    func testHelpListsEveryFlagAndTheExitCodes() throws {
        for flag in ["--help", "-h"] {
            let o = try run([flag])
            XCTAssertEqual(o.status, 0, o.stderr)
            for text in ["USAGE: fqat-shell [options] [script.fqs [args…]]", "-c <TEXT>", "--check", "--notebook <DIR>",
                         "--commands-markdown", "--threads <N>", "--records <FILE>", "--record-arg <K=V>", "--autosave <PATH>",
                         "--resume-from <FILE>", "--version", "64 usage error", "65 static error", "fqat-shell sweep"] {
                XCTAssertTrue(o.stdout.contains(text), "\(flag) does not show '\(text)':\n\(o.stdout)")
            }
        }
    }

    func testBadFlagsAreUsageErrors() throws {
        let cases: [(arguments: [String], message: String)] = [
            (["--bogus"], "Unknown option '--bogus'"),
            (["--threads", "2", "--chek", "s.fqs"], "Unknown option '--chek'"),
            (["--threads", "0", "s.fqs"], "--threads needs a thread count from 1 to 256, got 0"),
            (["--threads", "many", "s.fqs"], "The value 'many' is invalid for '--threads <N>'"),
            (["--record-arg", "=x", "s.fqs"], "--record-arg needs KEY=VALUE, got '=x'"),
            (["-c"], "Missing value for '-c <TEXT>'"),
            (["--notebook"], "Missing value for '--notebook <DIR>'"),
        ]
        for c in cases {
            let o = try run(c.arguments)
            XCTAssertEqual(o.status, 64, "\(c.arguments): \(o.stderr)")
            XCTAssertTrue(o.stderr.contains(c.message), "\(c.arguments): \(o.stderr)")
            XCTAssertTrue(o.stderr.contains("Usage: fqat-shell"), "\(c.arguments): \(o.stderr)")
            XCTAssertEqual(o.stdout, "", "\(c.arguments)")
        }
    }

    func testEverythingAfterTheScriptIsTheScripts() throws {
        let o = try run(["--threads", "1", "s.fqs", "hello", "--steps=20", "--help"])
        XCTAssertEqual(o.status, 0, o.stderr)
        XCTAssertTrue(o.stdout.contains("got hello 20 [\"hello\"]"), o.stdout)
        let c = try run(["-c", "print \"got\" $1", "there", "--x=1"])
        XCTAssertEqual(c.status, 0, c.stderr)
        XCTAssertTrue(c.stdout.contains("got there"), c.stdout)
        XCTAssertEqual(try run(["no-such.fqs"]).status, 66)
        let v = try run(["--version"])
        XCTAssertEqual(v.status, 0)
        XCTAssertTrue(v.stdout.hasPrefix("fqat-shell "), v.stdout)
    }
}

private final class ErrorsBox: @unchecked Sendable { var data = Data() }
