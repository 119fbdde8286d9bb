// The REPL as a person meets it: a real pseudo-terminal (tmux), libedit, Tab completion, multi-line
// blocks, persistent history, and Ctrl-C stopping a running command with the session intact.
import Foundation
import Plot
import XCTest

final class ReplTests: XCTestCase {
    var session = ""
    var home = ""

    /// Runs one tmux command and returns what it printed. Output is captured only for commands that
    /// print: `new-session` forks the tmux server, which would inherit the pipe and hold it open.
    func tmux(_ args: [String]) throws -> String {
        if args.first == "capture-pane" {
            let result = try Subprocess.run(executable: "/usr/bin/tmux", arguments: args)
            return String(decoding: result.output, as: UTF8.self)
        }
        let child = try Subprocess(executable: "/usr/bin/tmux", arguments: args, stdin: .null, stdout: .null, stderr: .null)
        if child.wait(timeout: 30) == nil {
            child.send(signal: SIGKILL)
            child.wait()
            XCTFail("tmux \(args.first ?? "") did not finish in 30 s")
        }
        return ""
    }

    func screen() throws -> String { try tmux(["capture-pane", "-p", "-t", session, "-S", "-200"]) }

    /// Waits until the screen contains `text` (up to `timeout` seconds).
    @discardableResult
    func waitFor(_ text: String, timeout: Double = 60, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        var last = ""
        while Date() < deadline {
            last = try screen()
            if last.contains(text) { return last }
            Thread.sleep(forTimeInterval: 0.2)
        }
        XCTFail("screen never showed '\(text)':\n\(last)", file: file, line: line)
        return last
    }

    func send(_ keys: String...) throws { _ = try tmux(["send-keys", "-t", session] + keys) }

    func testInteractiveSession() throws {
        let binary = repositoryRoot.appendingPathComponent(".build/debug/fqat-shell").path
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux"), "tmux is not installed")
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: binary), "fqat-shell is not built")
        try XCTSkipUnless(fashionMNISTPresent, "Fashion-MNIST is not installed")
        home = FileManager.default.temporaryDirectory.appendingPathComponent("fqat-repl-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        session = "fqat-test-\(ProcessInfo.processInfo.processIdentifier)-\(Int.random(in: 0..<1_000_000))"
        defer {
            _ = try? tmux(["kill-session", "-t", session])
            try? FileManager.default.removeItem(atPath: home)
        }
        let history = home + "/history"
        _ = try tmux(["new-session", "-d", "-s", session, "-x", "160", "-y", "50",
                      "cd \(home) && env -u CI HOME=\(home) FQAT_SHELL_HISTORY=\(history) TERM=xterm \(binary); sleep 30"])
        try waitFor("fqat>")

        // Tab completes a command name.
        try send("hel", "Tab")
        try waitFor("fqat> help")
        try send("C-u")

        // State across lines, and an error that keeps it.
        try send("let x = 41", "Enter")
        try send("prnt x", "Enter")
        try waitFor("did you mean 'print'")
        try send("print x + 1", "Enter")
        try waitFor("42")

        // Multi-line input asks for more.
        try send("for i in [1, 2] {", "Enter")
        try waitFor("...>")
        try send("print i * 10", "Enter", "}", "Enter")
        try waitFor("20")

        // Ctrl-C stops a running command at a step boundary and returns to the prompt, state intact.
        try send("data style-fmnist per_domain=200 batch=8", "Enter")
        try waitFor("style-fmnist: 4 domains")
        try send("model new resnet8 width=0.5", "Enter")
        try waitFor("resnet8:")
        try send("train erm steps=100000 eval_every=100000 bn=train", "Enter")
        try waitFor("erm 1", timeout: 60)
        Thread.sleep(forTimeInterval: 1)
        try send("C-c")
        try waitFor("interrupted after step")
        try send("show run", "Enter")
        try waitFor("run: erm at step")
        try send("exit", "Enter")
        Thread.sleep(forTimeInterval: 1)

        // History persisted to the file.
        // libedit stores entries with spaces escaped as \\040.
        let saved = ((try? String(contentsOfFile: history, encoding: .utf8)) ?? "").replacingOccurrences(of: "\\040", with: " ")
        XCTAssertTrue(saved.contains("print x + 1"), "history file: \(saved)")
    }
}
