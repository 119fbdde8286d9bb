// A batch job killed with SIGTERM saves its session, and `load session` continues the run.
import Foundation
import XCTest

final class SignalTests: XCTestCase {
    func testSIGTERMSavesTheSessionAndItResumes() throws {
        let binary = repositoryRoot.appendingPathComponent(".build/debug/fqat-shell").path
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: binary), "fqat-shell is not built")
        try XCTSkipUnless(fashionMNISTPresent, "Fashion-MNIST is not installed")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fqat-sigterm-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }

        func launch(_ script: String) throws -> (Process, Pipe) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: binary)
            p.arguments = ["-c", script]
            p.currentDirectoryURL = dir
            let out = Pipe()
            p.standardOutput = out
            p.standardError = out
            try p.run()
            return (p, out)
        }
        let (job, jobOut) = try launch("set out=o progress=off; data style-fmnist per_domain=60 batch=4; model new resnet8 width=0.5; train erm steps=1000000 eval_every=1000000 bn=train")
        // Let it train for a while, then ask it to stop.
        let autosave = dir.appendingPathComponent("o/autosave.fqsession").path
        Thread.sleep(forTimeInterval: 6)
        job.terminate()
        let text = String(decoding: jobOut.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        job.waitUntilExit()
        XCTAssertEqual(job.terminationStatus, 143, text)
        XCTAssertTrue(text.contains("session saved to o/autosave.fqsession"), text)
        XCTAssertTrue(FileManager.default.fileExists(atPath: autosave))

        let (resume, resumeOut) = try launch("load session o/autosave.fqsession; train erm steps=2")
        let resumed = String(decoding: resumeOut.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        resume.waitUntilExit()
        XCTAssertEqual(resume.terminationStatus, 0, resumed)
        XCTAssertTrue(resumed.contains("run erm at step"), resumed)
        XCTAssertTrue(resumed.contains("continuing at step"), resumed)
    }
}
