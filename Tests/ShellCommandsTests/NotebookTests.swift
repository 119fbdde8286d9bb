// `--notebook`: each top-level command, what it printed and the figure it drew, in order.
import Foundation
import Plot
import ShellCommands
import ShellLanguage
import XCTest

final class NotebookTests: XCTestCase {
    func testTranscriptHoldsCommandsOutputAndFigures() throws {
        try XCTSkipUnless(fashionMNISTPresent, "Fashion-MNIST is not installed")
        let h = try ShellHarness()
        let dir = h.directory.appendingPathComponent("nb").path
        let recorder = NotebookRecorder(directory: dir, session: h.session)
        let interpreter = Interpreter(registry: ShellCommands.makeRegistry(session: h.session), output: recorder)
        interpreter.echoCommandResults = false
        recorder.attach(to: interpreter)
        recorder.title = "smoke study"
        let cwd = FileManager.default.currentDirectoryPath
        XCTAssertTrue(FileManager.default.changeCurrentDirectoryPath(h.directory.path))
        defer { _ = FileManager.default.changeCurrentDirectoryPath(cwd) }
        let status = interpreter.runScript(Source(name: "nb.fqs", text: """
            data style-fmnist test=fog per_domain=60 batch=4
            model new resnet8 width=0.5
            train erm steps=2 eval_every=2 bn=train
            plot curves format=png
            print "done"
            """), arguments: .parse(scriptName: "nb.fqs", [])).status
        XCTAssertEqual(status, 0)
        recorder.write()
        let md = try String(contentsOfFile: dir + "/notebook.md", encoding: .utf8)
        for piece in ["smoke study", "data style-fmnist test=fog per_domain=60 batch=4", "style-fmnist: 4 domains",
                      "train erm steps=2", "selected step 2", "plot curves format=png", "erm-curves.png", "done"] {
            XCTAssertTrue(md.contains(piece), "notebook.md lacks '\(piece)':\n\(md)")
        }
        // Commands appear in the order they ran.
        let a = try XCTUnwrap(md.range(of: "model new resnet8")), b = try XCTUnwrap(md.range(of: "train erm steps=2"))
        XCTAssertLessThan(a.lowerBound, b.lowerBound)
        let html = try String(contentsOfFile: dir + "/notebook.html", encoding: .utf8)
        XCTAssertTrue(html.contains("<pre") && html.contains("train erm steps=2"))
    }
}
