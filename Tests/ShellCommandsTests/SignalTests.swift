// A batch job killed with SIGTERM saves its session, and `load session` continues the run.
import Foundation
import Plot
import XCTest

final class SignalTests: XCTestCase {
    func testSIGTERMSavesTheSessionAndItResumes() throws {
        let binary = repositoryRoot.appendingPathComponent(".build/debug/fqat-shell").path
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: binary), "fqat-shell is not built")
        try XCTSkipUnless(fashionMNISTPresent, "Fashion-MNIST is not installed")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fqat-sigterm-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }

        /// Starts the shell on `script`, collecting everything it prints on a background thread.
        func launch(_ script: String) throws -> (Subprocess, DispatchGroup, Box) {
            let child = try Subprocess(executable: binary, arguments: ["-c", script], workingDirectory: dir.path,
                                       stdin: .null, stdout: .pipe, stderr: .standardOutput)
            let box = Box(), group = DispatchGroup()
            let output = child.output!
            DispatchQueue.global().async(group: group) { box.data = output.readDataToEndOfFile() }
            return (child, group, box)
        }
        /// Waits for the child (killing it after `limit` seconds, so a broken test fails instead of hanging).
        func finish(_ child: Subprocess, _ group: DispatchGroup, _ box: Box, limit: Double) -> (Termination, String) {
            var ended = child.wait(timeout: limit)
            if ended == nil {
                child.send(signal: SIGKILL)
                ended = child.wait()
                XCTFail("the shell did not end within \(limit) s")
            }
            group.wait()
            return (ended!, String(decoding: box.data, as: UTF8.self))
        }

        let (job, jobGroup, jobBox) = try launch("set out=o progress=off; data style-fmnist per_domain=60 batch=4; model new resnet8 width=0.5; train erm steps=1000000 eval_every=1000000 bn=train")
        // Let it train for a while, then ask it to stop.
        let autosave = dir.appendingPathComponent("o/autosave.fqsession").path
        Thread.sleep(forTimeInterval: 6)
        job.send(signal: SIGTERM)
        let (ended, text) = finish(job, jobGroup, jobBox, limit: 60)
        XCTAssertEqual(ended, .exited(143), text)
        XCTAssertTrue(text.contains("session saved to o/autosave.fqsession"), text)
        XCTAssertTrue(FileManager.default.fileExists(atPath: autosave))

        let (resume, resumeGroup, resumeBox) = try launch("load session o/autosave.fqsession; train erm steps=2")
        let (resumeEnded, resumed) = finish(resume, resumeGroup, resumeBox, limit: 120)
        XCTAssertEqual(resumeEnded, .exited(0), resumed)
        XCTAssertTrue(resumed.contains("run erm at step"), resumed)
        XCTAssertTrue(resumed.contains("continuing at step"), resumed)
    }
}

private final class Box: @unchecked Sendable {
    var data = Data()
}
