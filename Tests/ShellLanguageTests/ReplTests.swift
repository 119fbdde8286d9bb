import XCTest
@testable import ShellLanguage

final class ReplTests: XCTestCase {
    struct Session {
        let repl: Repl
        let reader: ScriptedLineReader
        let output: CapturingOutput
        let status: Int32
    }

    func run(_ inputs: [LineInput], session: FakeSession = FakeSession()) -> Session {
        let output = CapturingOutput()
        let interpreter = Interpreter(registry: makeRegistry(session), output: output, interrupt: Interrupt())
        let reader = ScriptedLineReader(inputs)
        let repl = Repl(interpreter: interpreter, lineReader: reader)
        let status = repl.run()
        return Session(repl: repl, reader: reader, output: output, status: status)
    }

    func run(lines: [String], session: FakeSession = FakeSession()) -> Session {
        run(lines.map { .line($0) }, session: session)
    }

    func testMultiLineBlocksUseTheContinuationPrompt() {
        let s = run(lines: ["for x in [1, 2] {", "  print x", "}", "print \"done\""])
        XCTAssertEqual(s.output.standardLines, ["1", "2", "done"])
        XCTAssertEqual(s.reader.prompts, ["fqat> ", "...> ", "...> ", "fqat> ", "fqat> "])
        XCTAssertEqual(s.reader.history, ["for x in [1, 2] {\n  print x\n}", "print \"done\""])
    }

    func testUnterminatedStringsAndListsContinue() {
        let s = run(lines: ["print \"a", "b\"", "let xs = [1,", "2]", "print xs", "train fqat \\", "  steps=900"])
        XCTAssertEqual(s.output.standardLines, ["a", "b", "[1, 2]", "method  fqat", "steps   900", "lr      0.01", "ood     1.4"])
    }

    func testErrorsDoNotEndTheSessionAndStateIsKept() {
        let s = run(lines: ["let a = 1", "trian", "print a +", "print (a)", "fail", "let b = a + 1", "print b"])
        XCTAssertEqual(s.output.standardLines, ["1", "2"])
        XCTAssertEqual(s.status, 0, "the last entry succeeded")
        XCTAssertEqual(s.output.error, """
        <repl>:1:1: error: unknown command 'trian'; did you mean 'train'?
        trian
        ^~~~~
        <repl>:1:10: error: expected a value, found end of input
        print a +
                 ^
        <repl>:1:1: error: failed: boom
        fail
        ^~~~

        """)
    }

    func testEntriesAreCheckedAgainstTheSessionsVariables() {
        let s = run(lines: ["let v = 3", "print v * 2", "print w * 2", "v"])
        XCTAssertEqual(s.output.standardLines, ["6", "3"])
        XCTAssertTrue(s.output.error.contains("<repl>:1:7: error: undefined variable 'w'\n"))
    }

    func testResultsAreShownAndFieldsReadable() {
        let s = run(lines: ["let r = eval", "r.ood", "r.domains", "count"])
        XCTAssertEqual(s.output.standardLines, ["0.75", "[\"a\", \"b\"]", "1"])
    }

    func testCtrlCAtThePromptDropsThePartialEntry() {
        let s = run([.line("for x in [1] {"), .interrupted, .line("print 5")])
        XCTAssertEqual(s.output.standardLines, ["5"])
        XCTAssertEqual(s.reader.prompts, ["fqat> ", "...> ", "fqat> ", "fqat> "])
    }

    func testCtrlCDuringACommandReturnsToThePrompt() {
        let session = FakeSession()
        session.interruptAtStep = 2
        let s = run(lines: ["let k = 1", "wait steps=5", "print k", "wait steps=1"], session: session)
        XCTAssertEqual(s.output.standardLines, ["1"])
        XCTAssertEqual(s.output.error, "interrupted\n")
        XCTAssertEqual(session.stepsDone, 3, "2 steps, interrupted, then 1 step in the next entry")
        XCTAssertEqual(s.status, 0)
    }

    func testExitEndsTheSessionWithItsStatus() {
        let s = run(lines: ["print 1", "exit 4", "print 2"])
        XCTAssertEqual(s.status, 4)
        XCTAssertEqual(s.output.standardLines, ["1"])
    }

    func testEndOfInputInsideABlockIsReported() {
        let s = run(lines: ["for x in [1] {", "print x"])
        XCTAssertEqual(s.status, 65)
        XCTAssertTrue(s.output.error.contains("expected '}' to close the block"))
    }

    func testElseOnANewLineAtThePromptExplains() {
        let s = run(lines: ["if true { print 1 }", "else { print 2 }"])
        XCTAssertEqual(s.output.standardLines, ["1"])
        XCTAssertTrue(s.output.error.contains("note: at the prompt, write '} else {' on one line"))
    }

    func testHistoryCommandShowsEntries() {
        let s = run(lines: ["print 1", "let x = 2", "history"])
        XCTAssertEqual(s.output.standardLines, ["1", "    1  print 1", "    2  let x = 2", "    3  history"])
    }

    func testBlankLinesAreIgnoredAndBannerShown() {
        let output = CapturingOutput()
        let interpreter = Interpreter(registry: makeRegistry(), output: output, interrupt: Interrupt())
        let repl = Repl(interpreter: interpreter, lineReader: ScriptedLineReader(lines: ["", "   ", "print 3"]))
        repl.banner = "fqat-shell — type help"
        XCTAssertEqual(repl.run(), 0)
        XCTAssertEqual(output.standardLines, ["fqat-shell — type help", "3"])
    }
}
