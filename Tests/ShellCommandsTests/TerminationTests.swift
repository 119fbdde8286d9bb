// Issue 17 L2, L4, C6 (and S3's history file under $HOME): SIGTERM saves only a consistent session. At the
// idle REPL prompt it saves at once and exits 143 (libedit re-raises the signal; that must not read as
// Ctrl-D); during a step that cannot finish within the grace period it exits 143 without touching the
// last saved session. Ctrl-C stops a landscape inside a grid point.
import Foundation
import Plot
import XCTest

final class TerminationTests: XCTestCase {
    let binary = repositoryRoot.appendingPathComponent(".build/debug/fqat-shell").path

    func makeFolder(_ name: String) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fqat-\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Waits until `condition` holds (up to `timeout` seconds); false when it never did.
    func waitUntil(_ timeout: Double, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try condition() { return true }
            Thread.sleep(forTimeInterval: 0.2)
        }
        return false
    }

    func testSIGTERMDuringAStepThatCannotFinishKeepsTheLastSavedSession() throws {
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: binary), "fqat-shell is not built")
        try XCTSkipUnless(fashionMNISTPresent, "Fashion-MNIST is not installed")
        let dir = try makeFolder("grace")
        defer { try? FileManager.default.removeItem(at: dir) }
        // A grace period of 0 s: no step can finish in time, so the process must not save the live model.
        let script = "set out=o progress=off; data style-fmnist per_domain=200 batch=32; model new resnet20; save session \"o/autosave.fqsession\"; train erm steps=1000000 eval_every=1000000 bn=train"
        let child = try Subprocess(executable: "/usr/bin/env", arguments: ["FQAT_TERM_GRACE=0", binary, "-c", script],
                                   workingDirectory: dir.path, stdin: .null, stdout: .pipe, stderr: .standardOutput)
        let output = child.output!
        let box = TerminationBox(), group = DispatchGroup()
        DispatchQueue.global().async(group: group) { box.data = output.readDataToEndOfFile() }
        let autosave = dir.appendingPathComponent("o/autosave.fqsession").path
        XCTAssertTrue(waitUntil(60) { FileManager.default.fileExists(atPath: autosave) }, "the script never saved")
        Thread.sleep(forTimeInterval: 2)  // training is under way
        let before = try Data(contentsOf: URL(fileURLWithPath: autosave))
        child.send(signal: SIGTERM)
        var ended = child.wait(timeout: 60)
        if ended == nil { child.send(signal: SIGKILL); ended = child.wait(); XCTFail("did not end") }
        group.wait()
        let text = String(decoding: box.data, as: UTF8.self)
        XCTAssertEqual(ended, .exited(143), text)
        XCTAssertTrue(text.contains("did not reach a step boundary"), text)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: autosave)), before, "the last saved session changed")
    }

    /// Issue 17 C6: the first Ctrl-C stops a landscape inside a grid point, between two batches, instead
    /// of after the point. One point here evaluates 8000 images through a ResNet-20 of width 3 (32 batches
    /// of 250, about 6 TFLOP: a minute or more on this project's 2-core machine, seconds at best on a
    /// large one). Ctrl-C comes 1 s into the landscape, so an interrupt honoured only between points would
    /// report the first point finished; the time bound only says the wait was about one batch, not a point.
    func testCtrlCStopsALandscapeInsideAGridPoint() throws {
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: binary), "fqat-shell is not built")
        try XCTSkipUnless(fashionMNISTPresent, "Fashion-MNIST is not installed")
        let dir = try makeFolder("landscape-int")
        defer { try? FileManager.default.removeItem(at: dir) }
        let script = "set out=o progress=off; data style-fmnist per_domain=10000 test=fog; model new resnet20 width=3; save model o/ready.safetensors; landscape line x=-1:1:3 images=8000 format=none"
        let child = try Subprocess(executable: binary, arguments: ["-c", script], workingDirectory: dir.path,
                                   stdin: .null, stdout: .pipe, stderr: .standardOutput)
        let output = child.output!
        let box = TerminationBox(), group = DispatchGroup()
        DispatchQueue.global().async(group: group) { box.data = output.readDataToEndOfFile() }
        // The saved model (renamed into place whole) says the landscape command is next; 1 s later it is
        // inside the first point (or still gathering its images, which polls Ctrl-C too).
        let ready = dir.appendingPathComponent("o/ready.safetensors").path
        XCTAssertTrue(waitUntil(120) { FileManager.default.fileExists(atPath: ready) }, "the setup never finished")
        Thread.sleep(forTimeInterval: 1)
        child.send(signal: SIGINT)
        let sent = Date()
        var ended = child.wait(timeout: 120)
        let latency = Date().timeIntervalSince(sent)
        if ended == nil { child.send(signal: SIGKILL); ended = child.wait(); XCTFail("the shell did not end after Ctrl-C") }
        group.wait()
        let text = String(decoding: box.data, as: UTF8.self)
        XCTAssertEqual(ended, .exited(130), text)
        XCTAssertTrue(text.contains("landscape interrupted before its first point finished"), text)
        // One batch (250 images, ~190 GFLOP) is the longest wait allowed for; on this 2-core machine under
        // other builds one point took over 120 s, so 60 s is still well under a point and the grid.
        XCTAssertLessThan(latency, 60, "Ctrl-C waited for the grid point to finish: \(text)")
    }

    func testSIGTERMAtTheIdlePromptSavesTheSession() throws {
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux"), "tmux is not installed")
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: binary), "fqat-shell is not built")
        let home = try makeFolder("idle")
        let socket = home.appendingPathComponent("tmux").path
        let session = "fqat-term-\(ProcessInfo.processInfo.processIdentifier)"
        func tmux(_ args: [String]) throws -> String {
            let result = try Subprocess.run(executable: "/usr/bin/tmux", arguments: ["-S", socket] + args)
            return String(decoding: result.output, as: UTF8.self)
        }
        defer {
            _ = try? tmux(["kill-server"])
            try? FileManager.default.removeItem(at: home)
        }
        // The pane runs a small perl that starts the shell and writes the wait status its parent sees:
        // "exit N" or "signal N" (tmux 3.3's own #{pane_dead_status} stayed empty in most runs when the
        // pane's process was the shell itself: tmux marks the pane dead when the terminal closes and does
        // not always fill the status in afterwards; under this wrapper the same builds exited 143 every
        // time). sh and perl ignore SIGTERM because libedit re-sends the signal to the process group.
        let statusFile = home.appendingPathComponent("status").path
        let start = try Subprocess(executable: "/usr/bin/tmux",
                                   arguments: ["-S", socket, "new-session", "-d", "-s", session, "-x", "120", "-y", "30",
                                               #"cd \#(home.path) && trap '' TERM; perl -e '$SIG{TERM} = "IGNORE"; my $f = shift; system(@ARGV); open(my $o, ">", $f); print $o (($? & 127) ? "signal " . ($? & 127) : "exit " . ($? >> 8));' \#(statusFile) env -u CI -u FQAT_SHELL_HISTORY HOME=\#(home.path) TERM=xterm \#(binary)"#],
                                   stdin: .null, stdout: .null, stderr: .null)
        XCTAssertNotNil(start.wait(timeout: 30))
        _ = try tmux(["set-option", "-t", session, "remain-on-exit", "on"])
        XCTAssertTrue(try waitUntil(30) { try tmux(["capture-pane", "-p", "-t", session]).contains("fqat>") }, "no first prompt in 30 s")
        _ = try tmux(["send-keys", "-t", session, "set out=o seed=7", "Enter"])
        XCTAssertTrue(try waitUntil(30) { try tmux(["capture-pane", "-p", "-t", session]).components(separatedBy: "fqat>").count >= 3 }, "no second prompt in 30 s")
        // The history file follows $HOME (issue 17 S3): it was written to the password database's home.
        XCTAssertTrue(FileManager.default.fileExists(atPath: home.appendingPathComponent(".fqat_shell_history").path))
        let wrapper = try tmux(["display-message", "-p", "-t", session, "#{pane_pid}"]).trimmingCharacters(in: .whitespacesAndNewlines)
        let children = try Subprocess.run(executable: "/usr/bin/pgrep", arguments: ["-P", wrapper])
        let pid = Int32(String(decoding: children.output, as: UTF8.self).split(separator: "\n").first.map(String.init) ?? "")
        XCTAssertNotNil(pid, "no shell process under the pane's sh \(wrapper)")
        guard let pid else { return }
        kill(pid, SIGTERM)
        var status = ""
        let ended = try waitUntil(30) {
            status = ((try? String(contentsOfFile: statusFile, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            return !status.isEmpty
        }
        let screen = try tmux(["capture-pane", "-p", "-t", session])
        XCTAssertTrue(ended, "the shell did not end within 30 s of SIGTERM: \(screen)")
        // 143 from the thread that saved (issue 17, L4), not a death by signal.
        XCTAssertEqual(status, "exit 143", screen)
        XCTAssertTrue(FileManager.default.fileExists(atPath: home.appendingPathComponent("o/autosave.fqsession").path), screen)
        XCTAssertTrue(screen.contains("session saved to o/autosave.fqsession"), screen)
    }
}

private final class TerminationBox: @unchecked Sendable {
    var data = Data()
}
