import XCTest
@testable import ShellLanguage

final class CompleterTests: XCTestCase {
    var completer: Completer = {
        var completer = Completer(registry: makeRegistry())
        completer.listDirectory = { directory in
            switch directory {
            case ".": return [("study.fqs", false), ("runs", true), (".hidden", false), ("notes.txt", false)]
            case "runs/": return [("a.json", false), ("b.json", false), ("old", true)]
            default: return nil
            }
        }
        return completer
    }()

    func dynamic(_ source: String) -> [String] {
        switch source {
        case "layers": return ["layer1.0.conv1", "layer1.0.conv2", "layer2.0.conv1", "fc"]
        case "variables": return ["best", "r", "bits"]
        default: return []
        }
    }

    func complete(_ line: String, cursor: Int? = nil) -> [String] {
        completer.complete(line: line, cursor: cursor ?? line.count, dynamic: dynamic)
    }

    func testCommandNamesAndKeywordsAtStatementStart() {
        XCTAssertEqual(complete("tr"), ["train"])
        XCTAssertEqual(complete("e"), ["echo", "eval", "exit"])
        XCTAssertTrue(complete("").contains("let") && complete("").contains("quantize") && complete("").contains("source"))
        XCTAssertFalse(complete("").contains("syntax"), "help-only topics are not commands")
        XCTAssertEqual(complete("print 1; qu"), ["quantize"])
        XCTAssertEqual(complete("for b in [1] { qu"), ["quantize"])
        XCTAssertEqual(complete("let r = ev"), ["eval"])
        XCTAssertEqual(complete("time co"), ["count"])
    }

    func testPositionalChoicesAndKeywordNames() {
        XCTAssertEqual(complete("train "), ["erm", "fqat", "layers=", "lr=", "qat", "sagm", "steps=", "tau="])
        XCTAssertEqual(complete("train fqat st"), ["steps="])
        XCTAssertEqual(complete("train fqat steps=10 "), ["layers=", "lr=", "tau="], "given keys are not offered again")
        XCTAssertEqual(complete("train fqat st lr=1", cursor: 13), ["steps="], "the cursor may be mid-line")
    }

    func testValuesAfterEquals() {
        XCTAssertEqual(complete("quantize lsq init=m"), ["init=minmax", "init=mse"])
        XCTAssertEqual(complete("eval split="), ["split=test", "split=val"])
        XCTAssertEqual(complete("train fqat layers=la"), ["layers=layer1.0.conv1", "layers=layer1.0.conv2", "layers=layer2.0.conv1"])
    }

    func testListElementsAndDynamicSources() {
        XCTAssertEqual(complete("train fqat layers=[layer1"), ["layer1.0.conv1", "layer1.0.conv2"])
        XCTAssertEqual(complete("train fqat layers=[layer1.0.conv1, l"), ["layer1.0.conv1", "layer1.0.conv2", "layer2.0.conv1"])
        XCTAssertEqual(complete("freeze layer2"), ["layer2.0.conv1"])
        XCTAssertEqual(complete("freeze fc "), ["fc", "for=", "layer1.0.conv1", "layer1.0.conv2", "layer2.0.conv1"])
        XCTAssertEqual(complete("print b"), ["best", "bits"])
        XCTAssertEqual(complete("if r"), ["r"])
    }

    func testSubcommandsAndHelpTopics() {
        XCTAssertEqual(complete("data "), ["folder", "rotated"])
        XCTAssertEqual(complete("data folder r"), ["root="])
        XCTAssertEqual(complete("help tr"), ["train"])
        XCTAssertEqual(complete("help s"), ["source", "syntax"])
        XCTAssertEqual(complete("help data "), ["folder", "rotated"])
    }

    func testFilePaths() {
        XCTAssertEqual(complete("data folder root="), ["root=notes.txt", "root=runs/", "root=study.fqs"])
        XCTAssertEqual(complete("data folder root=runs/"), ["root=runs/a.json", "root=runs/b.json", "root=runs/old/"])
        XCTAssertEqual(complete("data folder root=."), ["root=.hidden"], "hidden files only for a '.' prefix")
        XCTAssertEqual(complete("source \"st"), ["study.fqs"])
        XCTAssertEqual(complete("source \"runs/a"), ["runs/a.json"])
    }

    func testWordStartMatchesTheBreakCharacters() {
        XCTAssertEqual(Completer.wordStart(in: "train fqat steps=1", cursor: 18), 11)
        XCTAssertEqual(Completer.wordStart(in: "x layers=[a, bc", cursor: 15), 13)
        XCTAssertEqual(Completer.wordStart(in: "source \"ab", cursor: 10), 8)
        XCTAssertEqual(Completer.wordStart(in: "", cursor: 0), 0)
    }

    func testRealFileSystem() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("completer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("sub"), withIntermediateDirectories: true)
        XCTAssertTrue(FileManager.default.createFile(atPath: directory.appendingPathComponent("one.fqs").path, contents: Data()))
        defer { try? FileManager.default.removeItem(at: directory) }
        let real = Completer(registry: makeRegistry())
        let line = "source \(directory.path)/"
        XCTAssertEqual(real.complete(line: line, cursor: line.count, dynamic: { _ in [] }),
                       ["\(directory.path)/one.fqs", "\(directory.path)/sub/"])
    }
}
