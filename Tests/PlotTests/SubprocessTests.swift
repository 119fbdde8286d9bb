// Subprocess: posix_spawn + waitpid, the replacement for Foundation's Process (whose waitUntilExit
// can hang on Linux when SIGCHLD lands on a thread that does not block it).
import Foundation
import Plot
import XCTest

final class SubprocessTests: XCTestCase {
    let shell = "/bin/sh"

    func testExitStatusOutputAndErrorsAreSeparate() throws {
        let result = try Subprocess.run(executable: shell, arguments: ["-c", "echo out; echo err >&2; exit 3"])
        XCTAssertEqual(result.termination, .exited(3))
        XCTAssertEqual(result.termination.status, 3)
        XCTAssertEqual(String(decoding: result.output, as: UTF8.self), "out\n")
        XCTAssertEqual(String(decoding: result.errors, as: UTF8.self), "err\n")
    }

    func testMergedErrorsKeepTheirOrder() throws {
        let result = try Subprocess.run(executable: shell, arguments: ["-c", "echo a; echo b >&2; echo c"], mergeErrors: true)
        XCTAssertEqual(String(decoding: result.output, as: UTF8.self), "a\nb\nc\n")
        XCTAssertTrue(result.errors.isEmpty)
    }

    func testInputReachesTheChildAndLargeOutputDoesNotDeadlock() throws {
        // 1 MB through cat: far more than a pipe buffer in both directions at once.
        let big = Data(repeating: UInt8(ascii: "x"), count: 1 << 20)
        let result = try Subprocess.run(executable: "/bin/cat", input: big)
        XCTAssertEqual(result.termination, .exited(0))
        XCTAssertEqual(result.output, big)
    }

    func testChildThatStopsReadingEarlyIsNotAnError() throws {
        let big = Data(repeating: UInt8(ascii: "y"), count: 1 << 20)
        let result = try Subprocess.run(executable: shell, arguments: ["-c", "head -c 10 >/dev/null; echo done"], input: big)
        XCTAssertEqual(result.termination, .exited(0))
        XCTAssertEqual(String(decoding: result.output, as: UTF8.self), "done\n")
    }

    func testWorkingDirectoryAndEnvironment() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fqat-sub-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let result = try Subprocess.run(executable: shell, arguments: ["-c", "pwd; echo $FQAT_PROBE"],
                                        workingDirectory: dir.path, environment: ["FQAT_PROBE": "42", "PATH": "/usr/bin:/bin"])
        let lines = String(decoding: result.output, as: UTF8.self).split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 2)
        XCTAssertEqual(URL(fileURLWithPath: lines[0]).resolvingSymlinksInPath().path, dir.resolvingSymlinksInPath().path)
        XCTAssertEqual(lines[1], "42")
    }

    func testSignalsAndTimeouts() throws {
        let child = try Subprocess(executable: shell, arguments: ["-c", "sleep 30"], stdin: .null, stdout: .null, stderr: .null)
        XCTAssertNil(child.wait(timeout: 0.1), "still running")
        XCTAssertNil(child.termination)
        child.send(signal: SIGTERM)
        XCTAssertEqual(child.wait(timeout: 10), .signalled(SIGTERM))
        XCTAssertEqual(child.termination?.status, 128 + SIGTERM)
        child.send(signal: SIGTERM)  // already reaped: a no-op, never a stray signal to a reused pid
    }

    func testASignalCanBeSentWhileAnotherThreadWaits() throws {
        let child = try Subprocess(executable: shell, arguments: ["-c", "sleep 30"], stdin: .null, stdout: .null, stderr: .null)
        let done = DispatchSemaphore(value: 0)
        let box = TerminationBox()
        Thread.detachNewThread {
            box.value = child.wait()
            done.signal()
        }
        Thread.sleep(forTimeInterval: 0.2)
        // send must not block behind the waiting thread; it runs on its own thread so that a regression
        // fails here instead of hanging the suite.
        let sent = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            child.send(signal: SIGTERM)
            sent.signal()
        }
        let sentInTime = sent.wait(timeout: .now() + 10) == .success
        let endedInTime = done.wait(timeout: .now() + 10) == .success
        if !(sentInTime && endedInTime) { kill(child.pid, SIGKILL) }
        XCTAssertTrue(sentInTime, "send(signal:) blocked while another thread waited")
        XCTAssertTrue(endedInTime, "wait() did not return after SIGTERM")
        XCTAssertEqual(box.value, .signalled(SIGTERM))
    }

    func testChildrenGetDefaultSignalHandlingBack() throws {
        // The shell ignores SIGPIPE (and SIGTERM while it saves); its children must not inherit that.
        let saved = signal(SIGTERM, SIG_IGN)
        defer { signal(SIGTERM, saved) }
        let child = try Subprocess(executable: shell, arguments: ["-c", "sleep 30"], stdin: .null, stdout: .null, stderr: .null)
        child.send(signal: SIGTERM)
        let ended = child.wait(timeout: 10)
        if ended == nil { child.send(signal: SIGKILL); child.wait() }
        XCTAssertEqual(ended, .signalled(SIGTERM))
    }

    func testMissingExecutableIsAClearError() {
        XCTAssertThrowsError(try Subprocess.run(executable: "/nonexistent/gnuplot")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("/nonexistent/gnuplot") && text.contains("No such file"), text)
        }
    }

    func testManyShortChildrenAreAllReaped() throws {
        for i in 0..<50 {
            let result = try Subprocess.run(executable: shell, arguments: ["-c", "exit \(i % 7)"])
            XCTAssertEqual(result.termination, .exited(Int32(i % 7)))
        }
    }
}

private final class TerminationBox: @unchecked Sendable {
    var value: Termination?
}
