import XCTest
@testable import ShellLanguage

final class InterpreterTests: XCTestCase {
    func testLetForIfAndPrinting() {
        let run = runScript("""
        let xs = [1, 2, 3]
        let total = 0
        for x in xs { total = total + x }
        if total == 6 { print "six" total } else { print "not six" }
        print xs[-1] xs.count "n=" + total
        """)
        XCTAssertEqual(run.result.status, 0)
        XCTAssertEqual(run.stdout, ["six 6", "3 3 n=6"])
    }

    func testScopesEndWithTheirBlockAndAssignmentReachesOut() {
        let run = runScript("""
        let x = "outer"
        if true { let x = "inner"; print x; let y = 1 }
        print x
        for i in [1] { x = "changed" }
        print x
        """)
        XCTAssertEqual(run.stdout, ["inner", "outer", "changed"])
    }

    func testCommandResultsAndFieldAccess() {
        let run = runScript("let r = train fqat steps=300 lr=0.1\nprint r.ood r.lr r.method r.count")
        XCTAssertEqual(run.stdout, ["0.8 0.1 fqat 4"])
    }

    func testBareCommandResultsAreShownUnlessDisabled() {
        XCTAssertEqual(runScript("count\ncount").stdout, ["1", "2"])
        let output = CapturingOutput()
        let interpreter = Interpreter(registry: makeRegistry(), output: output, interrupt: Interrupt())
        interpreter.echoResults = false
        interpreter.run(Source(name: "t", text: "count\nprint \"x\""))
        XCTAssertEqual(output.standardLines, ["x"])
    }

    func testScriptArgumentsAndOptions() {
        let run = runScript("print $0 $1 args steps verbose\ntrain erm steps=steps", arguments: ["7", "--steps=20", "--verbose"])
        XCTAssertEqual(run.stdout.first, "test.fqs 7 [7] 20 true")
        XCTAssertEqual(run.result.status, 0)
        let parsed = ScriptArguments.parse(scriptName: "s", ["--a=1", "-1", "--", "--b", "--no-c"])
        XCTAssertEqual(parsed.positional, [.int(-1), .string("--b"), .string("--no-c")])
        XCTAssertEqual(parsed.options.map(\.name), ["a"])
    }

    /// `--ewgs=true` binds a variable `ewgs`; `quantize ewgs` still means the choice (this once broke
    /// examples/paper/table1.fqs run with --ewgs=true), and `$ewgs` reads the variable.
    func testChoiceWordsWinOverVariablesOfTheSameName() {
        let run = runScript("let fqat = 1\ntrain fqat steps=2\nlet r = train fqat steps=3\nprint r.method ewgs", arguments: ["--ewgs=true"])
        XCTAssertEqual(run.result.status, 0, run.errors.joined(separator: "\n"))
        XCTAssertEqual(run.stdout.last, "fqat true")
        let wrong = runScript("let fqat = 1\ntrain $fqat steps=2")
        XCTAssertEqual(wrong.result.status, 70)
        XCTAssertTrue(wrong.errors.joined().contains("argument 'method'"), wrong.errors.joined())
    }

    func testExitStatuses() {
        XCTAssertEqual(runScript("print 1").result.status, 0)
        XCTAssertEqual(runScript("trian").result.status, 65)
        XCTAssertEqual(runScript("print (1 +").result.status, 65)
        XCTAssertEqual(runScript("print 1 / 0").result.status, 70)
        XCTAssertEqual(runScript("exit 9\nprint 2").result.status, 9)
        XCTAssertEqual(runScript("exit").result.status, 0)
        let missing = Interpreter(registry: makeRegistry(), output: CapturingOutput(), interrupt: Interrupt())
            .runScript(atPath: "/nonexistent/x.fqs", arguments: ScriptArguments())
        XCTAssertEqual(missing.status, 66)
    }

    func testStaticErrorsMeanNothingRuns() {
        let session = FakeSession()
        let run = runScript("train fqat\nprint \"hi\"\ntrain fqat steps=-3", session: session)
        XCTAssertEqual(run.result.status, 65)
        XCTAssertEqual(session.trained, [], "a script with checking errors never starts")
        XCTAssertEqual(run.stdout, [])
    }

    func testRuntimeErrorsCarryTheLocation() {
        let run = runScript("let s = \"x\"\nprint 1\n  train fqat steps=s")
        XCTAssertEqual(run.result.status, 70)
        XCTAssertEqual(run.stdout, ["1"])
        XCTAssertEqual(run.errors, ["3:20: argument 'steps' expects an integer, got the text \"x\""])
        XCTAssertEqual(run.output.error, """
        test.fqs:3:20: error: argument 'steps' expects an integer, got the text "x"
          train fqat steps=s
                           ^

        """)
    }

    func testArithmeticRules() {
        let run = runScript("""
        print 7 / 2 7 * 2 7 - 2.5 (2 + 3) * 2 -(1)
        print 1 == 1.0 "a" < "b" [1, 2] == [1, 2.0] 3 != 4
        """)
        XCTAssertEqual(run.stdout, ["3.5 14 4.5 9", "true true true true"], "-(1) after a value subtracts; only -digit starts an argument")
        XCTAssertEqual(runScript("print \"a\" * 2").errors, ["1:7: cannot apply '*' to the text \"a\" and int 2"])
        XCTAssertEqual(runScript("print 9223372036854775807 + 1").errors, ["1:7: integer overflow in '+'"])
        XCTAssertEqual(runScript("if 1 and true { }").errors, ["1:4: 'and' needs true or false, got int 1"])
        XCTAssertEqual(runScript("let xs = [1]\nprint xs[3]").errors, ["2:10: index 3 is out of range for a list of 1"])
    }

    func testSubcommandsAndDefaults() {
        let run = runScript("data rotated\ndata folder root=~/x\nlet which = \"rotated\"\ndata which angles=[5]")
        XCTAssertEqual(run.stdout, ["rotated [0, 15, 30]", "folder \(NSHomeDirectory())/x", "rotated [5]"])
    }

    func testCommandErrorPointsAtTheArgument() {
        let run = runScript("fail\nprint 2")
        XCTAssertEqual(run.errors, ["1:1: failed: boom"])
        XCTAssertEqual(runScript("fail what=\"bad thing\"").errors, ["1:6: failed: bad thing"])
    }

    func testSourceRunsInTheCurrentScope() {
        let run = runScript("let a = 1\nsource \"lib.fqs\"\nprint b", files: ["lib.fqs": "let b = a + 1\nprint \"in lib\""])
        XCTAssertEqual(run.stdout, ["in lib", "2"])
        // A computed path is checked when it runs.
        let computed = runScript("let f = \"bad.fqs\"\nprint 1\nsource f", files: ["bad.fqs": "trian"])
        XCTAssertEqual(computed.stdout, ["1"])
        XCTAssertEqual(computed.result.status, 65)
        XCTAssertEqual(computed.errors, ["1:1: unknown command 'trian'; did you mean 'train'?"])
        XCTAssertEqual(computed.result.errors.first?.range?.source.name, "bad.fqs")
    }

    func testHelpAndQuestionMark() {
        let run = runScript("train?\nhelp train")
        XCTAssertEqual(run.result.status, 0)
        let half = run.output.standard.count / 2
        XCTAssertTrue(run.output.standard.hasPrefix("usage: train <method>"))
        XCTAssertEqual(String(run.output.standard.prefix(half)), String(run.output.standard.suffix(run.output.standard.count - half)))
    }

    func testTimeReportsWallTime() {
        let output = CapturingOutput()
        let interpreter = Interpreter(registry: makeRegistry(), output: output, interrupt: Interrupt())
        var now = 10.0
        interpreter.clock = { now += 1.25; return now }
        interpreter.run(Source(name: "t", text: "time count"))
        XCTAssertEqual(output.standardLines, ["1", "time: 1.250 s"])
        XCTAssertEqual(Interpreter.formatDuration(125), "2 min 5.0 s (125.0 s)")
    }

    func testHistoryUsesTheProvider() {
        let output = CapturingOutput()
        let interpreter = Interpreter(registry: makeRegistry(), output: output, interrupt: Interrupt())
        interpreter.historyProvider = { ["a", "b", "c"] }
        interpreter.run(Source(name: "t", text: "history 2"))
        XCTAssertEqual(output.standardLines, ["    2  b", "    3  c"])
    }

    func testInterruptStopsACommandAndKeepsState() {
        let session = FakeSession()
        session.interruptAtStep = 3
        let run = runScript("let kept = 5\nwait steps=10\nprint \"not reached\"", session: session)
        XCTAssertEqual(run.result.status, 130)
        XCTAssertEqual(session.stepsDone, 3, "stopped at the step boundary")
        XCTAssertEqual(run.output.error, "interrupted\n")
        XCTAssertEqual(run.interpreter.environment.lookup("kept"), .int(5))
        XCTAssertFalse(run.interpreter.interrupt.isRequested, "the request is consumed")
    }

    func testInterruptBetweenStatements() {
        let output = CapturingOutput()
        let interrupt = Interrupt()
        let interpreter = Interpreter(registry: makeRegistry(), output: output, interrupt: interrupt)
        interrupt.request()
        let result = interpreter.run(Source(name: "t", text: "print 1"))
        XCTAssertEqual(result.status, ExitStatus.interrupted)
        XCTAssertEqual(output.standardLines, [])
    }

    func testCallFromSwift() throws {
        let interpreter = Interpreter(registry: makeRegistry(), output: CapturingOutput(), interrupt: Interrupt())
        let value = try interpreter.call("train", ["qat"], [("steps", 500)])
        XCTAssertEqual(value["ood"], .number(1.0))
        XCTAssertThrowsError(try interpreter.call("train", ["nope"]))
    }

    func testTypedArgumentsDecodeEveryCall() throws {
        struct Probe: CommandArguments {
            @Positional(help: "") var name: String
            @Rest(help: "") var more: [Double]
            @Option(help: "") var n = 2
            @Option(.number(min: 0), help: "") var x: Double?
            @Option(help: "") var flag = false
            @Option(help: "") var names = ["a"]
            @Option(help: "") var ks = [1, 2]
        }
        let registry = CommandRegistry()
        var seen: [String] = []
        registry.register(CommandSpec(
            name: "probe", summary: "read every argument", arguments: Probe.self,
            run: { args, inv in
                let x: String = args.x.map { "\($0)" } ?? "absent"
                let where_: String = inv.range?.text ?? "-"
                seen = [args.name, "\(args.n)", x, "\(args.flag)", args.names.joined(separator: "+"), "\(args.ks)",
                        "\(args.more)", inv.commandPath.joined(separator: " "), where_]
                return .none
            }))
        let interpreter = Interpreter(registry: registry, output: CapturingOutput(), interrupt: Interrupt())
        let result = interpreter.run(Source(name: "t", text: "probe hello 1 2.5 flag=true\nprobe again x=3 names=[b, c]"))
        XCTAssertEqual(result.status, 0)
        XCTAssertEqual(seen, ["again", "2", "3.0", "false", "b+c", "[1, 2]", "[]", "probe", "probe again x=3 names=[b, c]"])
        _ = interpreter.run(Source(name: "t", text: "probe hello 1 2.5 flag=true"))
        XCTAssertEqual(seen, ["hello", "2", "absent", "true", "a", "[1, 2]", "[1.0, 2.5]", "probe", "probe hello 1 2.5 flag=true"])
    }
}
