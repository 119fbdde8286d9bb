// Runs every Fixtures/*.fqs script against the fake registry and compares what it printed, the
// diagnostics it reported and its exit status with the script's own comments:
//
//   # args: 4 --name=x            script arguments (optional)
//   # expect: text                one line of standard output, in order
//   # expect-error: 3:1: message  an error (prefix `file.fqs:` when it is in another file)
//   # expect-warning: 3:1: message
//   # expect-exit: 65             the exit status (default 0)
import Foundation
import XCTest
@testable import ShellLanguage

final class FixtureTests: XCTestCase {
    struct Expectations {
        var arguments: [String] = []
        var stdout: [String] = []
        var errors: [String] = []
        var warnings: [String] = []
        var exit: Int32 = 0
    }

    static func expectations(in text: String) -> Expectations {
        var result = Expectations()
        for line in text.components(separatedBy: "\n") {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            func value(_ tag: String) -> String? {
                guard let range = trimmed.range(of: "# \(tag):") else { return nil }
                var rest = String(trimmed[range.upperBound...])
                if rest.hasPrefix(" ") { rest.removeFirst() }
                return rest
            }
            if let v = value("args") { result.arguments = v.split(separator: " ").map(String.init) }
            if let v = value("expect") { result.stdout.append(v) }
            if let v = value("expect-error") { result.errors.append(v) }
            if let v = value("expect-warning") { result.warnings.append(v) }
            if let v = value("expect-exit") { result.exit = Int32(v) ?? -1 }
        }
        return result
    }

    /// `line:col: message`, with the file's base name first when the diagnostic is in another file.
    static func summary(_ diagnostic: Diagnostic, main: String) -> String {
        guard let range = diagnostic.range else { return diagnostic.message }
        let name = (range.source.name as NSString).lastPathComponent
        return (name == main ? "" : name + ":") + diagnostic.summary
    }

    func testFixtures() throws {
        let directory = Fixtures.directory
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasSuffix(".fqs") }.sorted()
        XCTAssertGreaterThanOrEqual(names.count, 8, "fixtures missing from \(directory.path)")
        for name in names {
            let path = directory.appendingPathComponent(name).path
            let source = try Source.file(atPath: path)
            let expected = FixtureTests.expectations(in: source.text)
            let output = CapturingOutput()
            let session = FakeSession()
            let interpreter = Interpreter(registry: makeRegistry(session), output: output, interrupt: Interrupt())
            interpreter.clock = { 0 }
            let result = interpreter.runScript(source, arguments: ScriptArguments.parse(scriptName: name, expected.arguments))
            let errors = result.diagnostics.filter { $0.severity == .error }.map { FixtureTests.summary($0, main: name) }
            let warnings = result.diagnostics.filter { $0.severity == .warning }.map { FixtureTests.summary($0, main: name) }
            XCTAssertEqual(output.standardLines, expected.stdout, "\(name): standard output")
            XCTAssertEqual(errors, expected.errors, "\(name): errors\n\(output.error)")
            XCTAssertEqual(warnings, expected.warnings, "\(name): warnings\n\(output.error)")
            XCTAssertEqual(result.status, expected.exit, "\(name): exit status\n\(output.error)")
        }
    }

    /// The runner itself must notice a wrong expectation (it is not a tautology).
    func testRunnerDetectsMismatch() {
        let parsed = FixtureTests.expectations(in: "print 1\n# expect: 2\n# expect-exit: 3\n# args: a --b=1")
        XCTAssertEqual(parsed.stdout, ["2"])
        XCTAssertEqual(parsed.exit, 3)
        XCTAssertEqual(parsed.arguments, ["a", "--b=1"])
        let run = runScript("print 1")
        XCTAssertNotEqual(run.stdout, parsed.stdout)
    }
}
