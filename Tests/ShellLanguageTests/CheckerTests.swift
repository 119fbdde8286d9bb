import XCTest
@testable import ShellLanguage

final class CheckerTests: XCTestCase {
    func testUnknownCommandSuggestsTheClosest() {
        XCTAssertEqual(errorSummaries("trian fqat"), ["1:1: unknown command 'trian'; did you mean 'train'?"])
        XCTAssertEqual(errorSummaries("qunatize lsq"), ["1:1: unknown command 'qunatize'; did you mean 'quantize'?"])
        let far = diagnostics("zzzzzz")
        XCTAssertEqual(far.map(\.summary), ["1:1: unknown command 'zzzzzz'"])
        XCTAssertEqual(far.first?.notes.map(\.message), ["type 'help' to list the commands"])
    }

    func testUnknownKeyAndListOfValidKeys() {
        XCTAssertEqual(errorSummaries("train fqat stpes=3"), ["1:12: unknown argument 'stpes' for 'train'; did you mean 'steps'?"])
        let far = diagnostics("train fqat qqqqq=3")
        XCTAssertEqual(far.first?.notes.map(\.message), ["arguments of 'train': method, steps, lr, tau, layers"])
    }

    func testTypesRangesAndChoices() {
        XCTAssertEqual(errorSummaries("train fqat steps=1.5"), ["1:18: argument 'steps' expects an integer, got number 1.5"])
        XCTAssertEqual(errorSummaries("train fqat steps=1e3"), [], "integral numbers are integers")
        XCTAssertEqual(errorSummaries("train fqat steps=0"), ["1:18: argument 'steps' must be at least 1, got 0"])
        XCTAssertEqual(errorSummaries("train fqat tau=1.5"), ["1:16: argument 'tau' must be between 0.0 and 1.0, got 1.5"])
        XCTAssertEqual(errorSummaries("train fqat lr=\"x\""), ["1:15: argument 'lr' expects a number, got the text \"x\""])
        XCTAssertEqual(errorSummaries("quantize lsq init=mes"), ["1:19: argument 'init' has no choice 'mes'; did you mean 'mse'?"])
        XCTAssertEqual(errorSummaries("data rotated angles=[0, a]"), ["1:21: argument 'angles' element 2 expects an integer, got the text \"a\""])
        XCTAssertEqual(errorSummaries("quantize lsq bits=[4]"), ["1:19: argument 'bits' expects an integer, got list [4]"])
        XCTAssertEqual(errorSummaries("exit 300"), ["1:6: argument 'status' must be between 0 and 255, got 300"])
    }

    func testMissingRequiredDuplicatesAndExtras() {
        XCTAssertEqual(errorSummaries("train steps=3"), ["1:1: missing required argument 'method' for 'train'"])
        XCTAssertEqual(diagnostics("train").first?.notes.map(\.message),
                       ["usage: train <method> [steps=<int>] [lr=<number>] [tau=<number>] [layers=[<pattern>, …]]"])
        XCTAssertEqual(errorSummaries("train fqat steps=1 steps=2"), ["1:20: argument 'steps' is given twice"])
        XCTAssertEqual(errorSummaries("train fqat method=qat"), ["1:12: argument 'method' is given twice"])
        XCTAssertEqual(errorSummaries("train fqat steps 10"), [
            "1:12: 'train' takes 1 positional argument; this one is extra; did you mean 'steps=…'?",
            "1:18: 'train' takes 1 positional argument; this one is extra",
        ])
    }

    func testUndefinedVariablesAreFlowSensitive() {
        XCTAssertEqual(errorSummaries("print x + 1\nlet x = 1\nprint x + 1"), ["1:7: undefined variable 'x'"])
        XCTAssertEqual(errorSummaries("let total = 1\nprint totl * 2"), ["2:7: undefined variable 'totl'; did you mean 'total'?"])
        // Block scope: the loop variable and lets inside a block end with it.
        XCTAssertEqual(errorSummaries("for b in [1] { let inner = b }\nlet y = inner\nlet z = b"), [
            "2:9: 'inner' is neither a command nor a variable",
            "3:9: 'b' is neither a command nor a variable",
        ])
        XCTAssertEqual(errorSummaries("let n = 2\nlet m = n*2"), ["2:9: 'n*2' is not a variable name"])
        XCTAssertEqual(diagnostics("let n = 2\nlet m = n*2").first?.notes.map(\.message), ["to compute, put spaces around '*': 'n * 2'"])
        XCTAssertEqual(errorSummaries("let n = 2\nlet m = n -1"), ["2:9: 'n' is a variable, not a command"])
        XCTAssertEqual(errorSummaries("let e = evl"), ["1:9: 'evl' is neither a command nor a variable; did you mean 'eval'?"])
        XCTAssertEqual(errorSummaries("if q { }"), ["1:4: undefined variable 'q'"])
        XCTAssertEqual(errorSummaries("y = 3"), ["1:1: cannot assign to undefined variable 'y'"])
        XCTAssertEqual(errorSummaries("print $zz"), ["1:7: undefined variable 'zz'"])
    }

    func testBareWordsAreTextOnlyWhereTheKindAcceptsText() {
        XCTAssertEqual(errorSummaries("quantize lsq keep=[conv1, layer1.0.conv2]"), [])
        XCTAssertEqual(errorSummaries("freeze layer1.* layer2.0.conv1 for=10"), [])
        XCTAssertEqual(errorSummaries("train fqat steps=n"), ["1:18: argument 'steps' expects an integer, got the text \"n\""])
        XCTAssertEqual(errorSummaries("let n = 5\ntrain fqat steps=n"), [])
        // Values of variables are judged at run time, not by the checker.
        XCTAssertEqual(errorSummaries("let n = \"x\"\ntrain fqat steps=n"), [])
    }

    func testMisspeltVariableWhereTextIsAcceptedWarns() {
        let found = diagnostics("let result = 1\nprint reslt")
        XCTAssertEqual(found.map(\.severity), [.warning])
        XCTAssertEqual(found.map(\.summary), ["2:7: 'reslt' is not a variable, so it is read as the text \"reslt\""])
    }

    func testChoiceWordWinsOverAVariableOfTheSameNameAndWarns() {
        let found = diagnostics("let fqat = 1\ntrain fqat steps=3")
        XCTAssertEqual(found.map(\.severity), [.warning])
        XCTAssertEqual(found.first?.summary, "2:7: 'fqat' is the choice 'fqat' here, not the variable")
        // `$fqat` is the variable, judged at run time; a subcommand word is the subcommand.
        XCTAssertEqual(errorSummaries("let fqat = 1\ntrain $fqat steps=3"), [])
        XCTAssertEqual(errorSummaries("let folder = 1\ndata folder"), ["2:1: missing required argument 'root' for 'data folder'"])
    }

    func testHelpTopicsAndSubcommands() {
        XCTAssertEqual(errorSummaries("help trian\ntrian?\nhelp data rotatd\nhelp for\nfor?"), [
            "1:6: no help for 'trian'; did you mean 'train'?",
            "2:1: no help for 'trian'; did you mean 'train'?",
            "3:11: 'data' has no subcommand 'rotatd'; did you mean 'rotated'?",
        ])
        XCTAssertEqual(errorSummaries("data"), ["1:1: 'data' needs a subcommand: rotated, folder"])
        XCTAssertEqual(errorSummaries("data folder"), ["1:1: missing required argument 'root' for 'data folder'"])
        XCTAssertEqual(errorSummaries("data rotated roots=x"), ["1:14: unknown argument 'roots' for 'data rotated'"])
        // A subcommand chosen by a variable: only keys are checked.
        XCTAssertEqual(errorSummaries("let d = \"rotated\"\ndata d angels=[1]"),
                       ["2:8: unknown argument 'angels' for 'data'; did you mean 'angles'?"])
    }

    func testScriptArgumentsAreCheckedWhenKnown() {
        let source = Source(name: "s", text: "print $1 $2")
        let checker = Checker(registry: makeRegistry(), variables: ["args"], scriptArgumentCount: 1)
        XCTAssertEqual(checker.check(Parser.parse(source).program).map(\.summary),
                       ["1:10: script argument $2 is not given (the script got 1 argument)"])
    }

    func testSourcedFilesAreCheckedAndCyclesFound() {
        let files = ["a.fqs": "let fromA = 1\nsource \"b.fqs\"", "b.fqs": "print fromA\nsource \"a.fqs\"\ntrian"]
        let checker = Checker(registry: makeRegistry(), variables: ["args"])
        checker.readSource = { path in
            let name = (path as NSString).lastPathComponent
            guard let text = files[name] else { throw SourceReadError(path: path) }
            return Source(name: name, text: text, path: "/virtual/" + name)
        }
        let main = Source(name: "main.fqs", text: "source \"a.fqs\"\nprint fromA", path: "/virtual/main.fqs")
        let found = checker.check(Parser.parse(main).program)
        XCTAssertEqual(found.map { "\($0.range!.source.name):\($0.summary)" }, [
            "b.fqs:2:8: 'a.fqs' is already being sourced (cycle: a.fqs → b.fqs → a.fqs)",
            "b.fqs:3:1: unknown command 'trian'; did you mean 'train'?",
        ])
        XCTAssertEqual(found.last?.notes.last?.summary, "2:1: in the file sourced here")
    }

    func testComputedSourcePathRelaxesLaterChecks() {
        let found = diagnostics("let f = \"x.fqs\"\nsource f\nprint defined_in_x + 1")
        XCTAssertEqual(found.map(\.severity), [.warning])
        XCTAssertEqual(found.first?.summary, "2:8: the file of this 'source' is computed, so it is checked only when it runs")
    }

    func testRenderedCheckerErrorClangStyle() {
        let found = diagnostics("let r = 1\n  train fqat stesp=10")
        XCTAssertEqual(found.first?.rendered(), """
        test.fqs:2:14: error: unknown argument 'stesp' for 'train'; did you mean 'steps'?
          train fqat stesp=10
                     ^~~~~

        """)
    }
}
