// The resolver as a pass (Resolver.swift): one walk over a program records, per node, what each
// command's first word names, how each call binds (subcommand, argument match, choice words), which
// variable references and assignment targets are unbound, and what each `source` reads; the Checker reports from that record
// and the Interpreter runs from it without resolving again.
import XCTest
@testable import ShellLanguage

final class ResolutionTests: XCTestCase {
    let registry = makeRegistry()

    /// Parses `text` and resolves it with `bound` as the session's variables.
    func resolve(_ text: String, bound: Set<String> = [], files: [String: String] = [:]) -> (Program, Resolution) {
        let parsed = Parser.parse(Source(name: "t.fqs", text: text))
        XCTAssertFalse(parsed.hasErrors, "\(text): \(parsed.diagnostics.map { $0.message })")
        let resolver = Resolver(registry: registry, variables: bound, readSource: { path in
            guard let text = files[path] else { throw SourceReadError(path: path) }
            return Source(name: path, text: text, path: path)
        })
        return (parsed.program, resolver.resolve(parsed.program))
    }

    /// Every command node of a program (statements, `let` right-hand sides, `time`, inside blocks).
    func commands(_ statements: [Statement]) -> [Command] {
        statements.flatMap { statement -> [Command] in
            switch statement {
            case .command(let c), .time(let c, _), .letBinding(_, _, .command(let c), _), .assignment(_, _, .command(let c), _): return [c]
            case .forLoop(_, _, _, let body, _): return commands(body.statements)
            case .conditional(let branches, let elseBody, _):
                return branches.flatMap { commands($0.body.statements) } + commands(elseBody?.statements ?? [])
            default: return []
            }
        }
    }

    func describe(_ resolved: ResolvedCommand?) -> String {
        guard let resolved else { return "not resolved" }
        let assumed = resolved.assumedBound ? " (assumed)" : ""
        switch resolved.target {
        case .help: return "help"
        case .statementForm: return "statement"
        case .command(let spec): return "command \(spec.name)"
        case .variable: return "variable" + assumed
        case .undefinedVariablePath: return "undefined"
        case .variableWithArguments: return "variable with arguments"
        case .topicOnly(let spec): return "topic \(spec.name)"
        case .unknown: return "unknown"
        }
    }

    /// The target of each command of the program, in order.
    func targets(_ text: String, bound: Set<String> = [], files: [String: String] = [:]) -> [String] {
        let (program, resolution) = resolve(text, bound: bound, files: files)
        return commands(program.statements).map { describe(resolution.commands[$0.nameRange]) }
    }

    func testEveryFirstWordIsResolvedOnceWithTheScopeWhereItStands() {
        // One case per target, each in the scope the statement runs in.
        XCTAssertEqual(targets("""
            train?
            train fqat steps=3
            let r = eval
            r
            r.ood
            rr.ood
            syntax
            nosuch
            let x = 1
            x -1
            let count = 5
            count
            """), ["help", "command train", "command eval", "variable", "variable", "undefined", "topic syntax", "unknown",
                   "variable with arguments", "command count"])
        // Session variables count as bound.
        XCTAssertEqual(targets("s", bound: ["s"]), ["variable"])
        // Block scopes: a loop variable is bound in its body only; a `let` in a branch ends with it.
        XCTAssertEqual(targets("for i in [1] { i }\ni\nif true { let y = 1\ny }\ny"), ["variable", "unknown", "variable", "unknown"])
        // A use before the `let` is not bound yet.
        XCTAssertEqual(targets("z\nlet z = 2\nz"), ["unknown", "variable"])
        // A statement form where a value is wanted.
        XCTAssertEqual(targets("let t = source"), ["statement"])
    }

    func testAssignmentTargetsAreResolved() {
        let (program, resolution) = resolve("let a = 1\na = 2\nb = 3")
        guard case .assignment(_, let bound, _, _) = program.statements[1], case .assignment(_, let unbound, _, _) = program.statements[2] else {
            return XCTFail("not assignments")
        }
        // Only the unbound target is recorded (the checker's error), with the names in scope.
        XCTAssertNil(resolution.unboundAssignments[bound], "'a' is bound")
        guard let visible = resolution.unboundAssignments[unbound] else { return XCTFail("'b' is bound") }
        XCTAssertTrue(visible.contains("a"))
        XCTAssertEqual(resolution.unboundAssignments.count, 1)
    }

    func testSourcedFilesBindIntoTheScopeTheyAreSourcedInto() throws {
        let files = ["lib.fqs": "let fromLib = 1\nfromLib"]
        let (program, resolution) = resolve("source \"lib.fqs\"\nfromLib", files: files)
        guard case .parsed(let sourced, let parseDiagnostics)? = resolution.sources[program.statements[0].range] else {
            return XCTFail("the sourced file is not recorded")
        }
        XCTAssertTrue(parseDiagnostics.isEmpty)
        // The file's own commands are in the same table, and its `let` binds for the rest of the script.
        XCTAssertEqual(commands(sourced.statements).map { describe(resolution.commands[$0.nameRange]) }, ["variable"])
        XCTAssertEqual(commands(program.statements).map { describe(resolution.commands[$0.nameRange]) }, ["variable"])
        XCTAssertTrue(resolution.boundNames.contains("fromLib"))
        // A file that cannot be read, and a cycle.
        let (p2, r2) = resolve("source \"missing.fqs\"")
        guard case .unreadable(let text, _, let lookedFor)? = r2.sources[p2.statements[0].range] else { return XCTFail("\(String(describing: r2.sources))") }
        XCTAssertEqual(text, "missing.fqs")
        XCTAssertEqual(lookedFor, "missing.fqs")
        let (p3, r3) = resolve("source \"a.fqs\"", files: ["a.fqs": "source \"a.fqs\""])
        guard case .parsed(let a, _)? = r3.sources[p3.statements[0].range],
              case .cycle(let cycleText, let chain)? = r3.sources[a.statements[0].range] else { return XCTFail("no cycle recorded") }
        XCTAssertEqual(cycleText, "a.fqs")
        XCTAssertEqual(chain, "a.fqs → a.fqs")
        // Files nested deeper than the limit: f0 sources f1, … each a different file.
        var chainFiles: [String: String] = [:]
        for i in 0...SourcePaths.maximumDepth { chainFiles["f\(i).fqs"] = "source \"f\(i + 1).fqs\"" }
        let (p4, r4) = resolve("source \"f0.fqs\"", files: chainFiles)
        var statement = p4.statements[0]
        var depth = 1
        while case .parsed(let file, _)? = r4.sources[statement.range] {
            statement = file.statements[0]
            depth += 1
        }
        guard case .tooDeep? = r4.sources[statement.range] else { return XCTFail("no depth limit at \(depth)") }
        XCTAssertEqual(depth, SourcePaths.maximumDepth)
    }

    /// `if true { ` `n` times around `body`, closed again.
    func nested(_ n: Int, _ body: String) -> String {
        String(repeating: "if true { ", count: n) + body + String(repeating: " }", count: n)
    }

    func testBlocksAroundASourceCountAcrossTheFilesThatSourceIt() {
        // One block in the script and 99 in a.fqs: b.fqs is sourced inside 100 blocks, the limit.
        let within = ["a.fqs": nested(99, "source \"b.fqs\""), "b.fqs": "let x = 1"]
        let (p1, r1) = resolve(nested(1, "source \"a.fqs\""), files: within)
        XCTAssertTrue(r1.boundNames.isEmpty)
        guard case .conditional(let branches, _, _) = p1.statements[0], case .parsed(let a, _)? = r1.sources[branches[0].body.statements[0].range] else {
            return XCTFail("a.fqs is not recorded")
        }
        var statement = a.statements[0]
        while case .conditional(let inner, _, _) = statement { statement = inner[0].body.statements[0] }
        guard case .parsed? = r1.sources[statement.range] else { return XCTFail("b.fqs inside 100 blocks is refused") }
        // One more block in a.fqs: refused before b.fqs is read, with the count and the limit.
        let beyond = ["a.fqs": nested(100, "source \"b.fqs\"")]
        let (p2, r2) = resolve(nested(1, "source \"a.fqs\""), files: beyond)
        guard case .conditional(let branches2, _, _) = p2.statements[0], case .parsed(let a2, _)? = r2.sources[branches2[0].body.statements[0].range] else {
            return XCTFail("a.fqs is not recorded")
        }
        statement = a2.statements[0]
        while case .conditional(let inner, _, _) = statement { statement = inner[0].body.statements[0] }
        guard case .tooDeep(let reason)? = r2.sources[statement.range] else { return XCTFail("no limit on the blocks around a source") }
        XCTAssertTrue(reason.contains("inside 101 blocks") && reason.contains("limit is 100"), reason)
    }

    func testAChainOfDeeplyNestedSourcesEndsWithAnErrorNotAStackOverflow() {
        // Found by hand: 64 files, each sourcing the next inside 150 blocks (one file may nest 200),
        // overflowed the stack in the checker (≈ 4,000 levels) and, sooner, in the interpreter.
        var files: [String: String] = [:]
        for i in 0..<SourcePaths.maximumDepth { files["c\(i).fqs"] = nested(150, "source \"c\(i + 1).fqs\"") }
        files["c\(SourcePaths.maximumDepth).fqs"] = "print \"bottom\""
        let run = runScript("source \"c0.fqs\"", files: files)
        XCTAssertEqual(run.result.status, ExitStatus.staticError)
        XCTAssertEqual(run.errors.count, 1, "\(run.errors)")
        XCTAssertTrue(run.errors.first?.contains("'source' inside 150 blocks") == true, "\(run.errors)")
        XCTAssertEqual(run.result.errors.first?.range?.source.name, "c0.fqs")
        // A computed path is checked when it runs, from where it runs: the blocks around it count.
        let computed = runScript("let f = \"a.fqs\"\n" + nested(1, "source f"), files: ["a.fqs": nested(100, "source \"b.fqs\""), "b.fqs": ""])
        XCTAssertEqual(computed.result.status, ExitStatus.staticError)
        XCTAssertTrue(computed.errors.first?.contains("'source' inside 101 blocks") == true, "\(computed.errors)")
        // And the `source` of a computed path itself, inside too many blocks, is refused when it runs.
        let around = runScript("let f = \"b.fqs\"\n" + nested(101, "source f"), files: ["b.fqs": ""])
        XCTAssertEqual(around.result.status, ExitStatus.runtimeError)
        XCTAssertTrue(around.errors.first?.contains("'source' inside 101 blocks") == true, "\(around.errors)")
        // A file that sources itself through a computed path stops at the depth limit.
        let selfSourcing = runScript("source \"self.fqs\"", files: ["self.fqs": "let f = \"self.fqs\"\nsource f"])
        XCTAssertEqual(selfSourcing.result.status, ExitStatus.runtimeError)
        XCTAssertTrue(selfSourcing.errors.first?.contains("nested more than \(SourcePaths.maximumDepth) deep") == true, "\(selfSourcing.errors)")
    }

    func testAFileThatChangesBetweenTheCheckAndTheRunIsCheckedAgainWhenItRuns() {
        // The check reads `let a = 1`; by the time it runs the file binds `b` instead. The script's
        // record says `a` is a variable; the interpreter finds it unbound: a clear error, no trap.
        var reads = 0
        let output = CapturingOutput()
        let interpreter = Interpreter(registry: registry, output: output, interrupt: Interrupt())
        interpreter.readSource = { path in
            reads += 1
            return Source(name: path, text: reads == 1 ? "let a = 1" : "let b = 2\nprint b", path: path)
        }
        let result = interpreter.run(Source(name: "t.fqs", text: "source \"lib.fqs\"\nprint b\na"))
        XCTAssertEqual(reads, 2)
        XCTAssertEqual(output.standardLines, ["2", "2"])
        XCTAssertEqual(result.status, ExitStatus.runtimeError)
        XCTAssertEqual(result.errors.map(\.summary), ["3:1: undefined variable 'a'"])
    }

    func testAComputedSourceRelaxesWhatFollows() {
        // After `source $f` any name may have been bound: a lone unknown name is assumed a variable,
        // decided again only against the variables when the line runs.
        let (program, resolution) = resolve("let f = \"x.fqs\"\nnosuch\nsource $f\nmaybe\nmaybe.field", bound: [])
        XCTAssertEqual(commands(program.statements).map { describe(resolution.commands[$0.nameRange]) },
                       ["unknown", "variable (assumed)", "variable (assumed)"])
        guard case .computed(let first)? = resolution.sources[program.statements[2].range] else { return XCTFail("not computed") }
        XCTAssertTrue(first)
    }

    func testSubcommandsArgumentsAndChoiceWordsAreRecordedPerCall() throws {
        let (program, resolution) = resolve("""
            data rotated angles=[0, 15]
            data "folder" root=x
            data $which
            data
            quantize ewgs bits=4
            quantize $ewgs
            """, bound: ["which", "ewgs"])
        let calls = commands(program.statements).map { resolution.commands[$0.nameRange]?.call }
        guard case .subcommand(let rotated, 0, .arguments(let match, let noChoices))? = calls[0] else { return XCTFail("\(String(describing: calls[0]))") }
        XCTAssertEqual(rotated.name, "rotated")
        XCTAssertEqual(match.matched.map(\.0.name), ["angles"])
        XCTAssertTrue(noChoices.isEmpty)
        // A string literal naming a subcommand is known before running.
        guard case .subcommand(let folder, 0, .arguments)? = calls[1] else { return XCTFail("\(String(describing: calls[1]))") }
        XCTAssertEqual(folder.name, "folder")
        guard case .computedSubcommand(0)? = calls[2] else { return XCTFail("\(String(describing: calls[2]))") }
        guard case .missingSubcommand? = calls[3] else { return XCTFail("\(String(describing: calls[3]))") }
        // `ewgs` is the choice although a variable has its name (the checker warns); `$ewgs` is the variable.
        guard case .arguments(let quantize, let choices)? = calls[4] else { return XCTFail("\(String(describing: calls[4]))") }
        XCTAssertEqual(quantize.matched.map(\.0.name), ["method", "bits"])
        XCTAssertEqual(Array(choices.values), [ChoiceWord(word: "ewgs", shadowsVariable: true)])
        guard case .arguments(_, let none)? = calls[5] else { return XCTFail("\(String(describing: calls[5]))") }
        XCTAssertTrue(none.isEmpty)
    }

    func testVariableReferencesAreRecordedWithTheNamesInScope() {
        let (program, resolution) = resolve("let seed = 1\nprint seeed\nprint $seed", bound: [])
        guard case .command(let misspelt) = program.statements[1], case .command(let dollar) = program.statements[2] else {
            return XCTFail("not commands")
        }
        guard let visible = resolution.unboundReferences[misspelt.arguments[0].value.range] else {
            return XCTFail("'seeed' is recorded as bound")
        }
        XCTAssertTrue(visible.contains("seed"))
        // A bound reference is not recorded: the interpreter looks it up when it runs.
        XCTAssertNil(resolution.unboundReferences[dollar.arguments[0].value.range], "$seed is recorded as unbound")
        XCTAssertEqual(resolution.unboundReferences.count, 1)
        // After a `source` of a computed file an unbound name may be bound: not recorded either.
        let (relaxedProgram, relaxed) = resolve("let f = \"x.fqs\"\nsource f\nprint seeed", bound: [])
        guard case .command(let after) = relaxedProgram.statements[2] else { return XCTFail("not a command") }
        XCTAssertNil(relaxed.unboundReferences[after.arguments[0].value.range])
    }

    // MARK: The interpreter runs from the record

    /// Runs `text`'s statements with a resolution changed by `edit` after the resolver made it: what
    /// runs follows the record, so an interpreter that resolved again would fail these tests.
    func runEdited(_ text: String, bound: [String: Value] = [:], edit: (Program, inout Resolution) -> Void) -> (CapturingOutput, Error?) {
        let output = CapturingOutput()
        let interpreter = Interpreter(registry: registry, output: output, interrupt: Interrupt())
        for (name, value) in bound { interpreter.environment.define(name, value) }
        var (program, resolution) = resolve(text, bound: interpreter.environment.names)
        edit(program, &resolution)
        interpreter.resolution = resolution
        do {
            for statement in program.statements { try interpreter.execute(statement) }
            return (output, nil)
        } catch {
            return (output, error)
        }
    }

    func testTheInterpreterReadsWhatAStatementIsFromTheRecord() throws {
        // `count` is a command even with a variable of that name; recorded as the variable, it shows the variable.
        let (asRecorded, e1) = runEdited("count", bound: ["count": .int(41)]) { _, _ in }
        XCTAssertNil(e1)
        XCTAssertEqual(asRecorded.standardLines, ["1"])
        let (edited, e2) = runEdited("count", bound: ["count": .int(41)]) { program, resolution in
            guard case .command(let c) = program.statements[0] else { return }
            resolution.commands[c.nameRange] = ResolvedCommand(target: .variable)
        }
        XCTAssertNil(e2)
        XCTAssertEqual(edited.standardLines, ["41"])
        // A command missing from the record is an internal error, never resolved on the spot.
        let (_, e3) = runEdited("count") { _, resolution in resolution.commands = [:] }
        XCTAssertTrue("\(String(describing: e3))".contains("was not resolved before it ran"), "\(String(describing: e3))")
    }

    func testTheInterpreterReadsTheSubcommandAndTheChoiceWordsFromTheRecord() throws {
        // The record says `data rotated …` calls `folder`: the interpreter follows it.
        let (out, e1) = runEdited("data rotated root=r") { program, resolution in
            guard case .command(let c) = program.statements[0], let data = registry.spec(named: "data"),
                  let folder = data.subcommand(named: "folder") else { return }
            var rest = c.arguments
            rest.remove(at: 0)
            resolution.commands[c.nameRange]?.call = .subcommand(folder, argumentIndex: 0,
                                                                 call: Resolver.call(of: folder, arguments: rest, path: ["data", "folder"],
                                                                                     commandRange: c.nameRange, isBound: { _ in false }))
        }
        XCTAssertNil(e1)
        XCTAssertEqual(out.standardLines, ["folder r"])
        // Without the recorded choice, the bound `ewgs` is read as the variable (3), which is no method.
        let (_, e2) = runEdited("quantize ewgs", bound: ["ewgs": .int(3)]) { program, resolution in
            guard case .command(let c) = program.statements[0], case .arguments(let match, _)? = resolution.commands[c.nameRange]?.call else { return }
            resolution.commands[c.nameRange]?.call = .arguments(match, choices: [:])
        }
        XCTAssertTrue("\(String(describing: e2))".contains("has no choice '3'"), "\(String(describing: e2))")
        let (recorded, e3) = runEdited("quantize ewgs", bound: ["ewgs": .int(3)]) { _, _ in }
        XCTAssertNil(e3)
        XCTAssertTrue(recorded.standard.contains("ewgs"), recorded.standard)
    }

    func testALoneVariableIsShownWhereCommandResultsAreNot() {
        // fqat-shell turns off the echo of command results (engine commands render their own); a lone
        // variable name is read like an expression and still shown (found by hand in the REPL).
        let output = CapturingOutput()
        let interpreter = Interpreter(registry: registry, output: output, interrupt: Interrupt())
        interpreter.echoCommandResults = false
        let result = interpreter.run(Source(name: "t.fqs", text: "let n = 7\nn\nlet l = [1, 2]\nl.count\ncount\n(n + 1)"))
        XCTAssertEqual(result.status, 0, output.error)
        XCTAssertEqual(output.standardLines, ["7", "2", "8"])
    }

    func testAnAssumedVariableIsCheckedWhenItRuns() {
        // Bound by the computed source: its value is shown. Not bound by it: an unknown command, as before.
        let files = ["defs.fqs": "let made = 7"]
        let bound = runScript("let f = \"defs.fqs\"\nsource $f\nmade", files: files)
        XCTAssertEqual(bound.result.status, 0, bound.output.error)
        XCTAssertEqual(bound.stdout.last, "7")
        let unbound = runScript("let f = \"defs.fqs\"\nsource $f\nnotmade", files: files)
        XCTAssertEqual(unbound.result.status, ExitStatus.runtimeError)
        XCTAssertEqual(unbound.errors.count, 1)
        XCTAssertTrue(unbound.errors.first?.hasSuffix("unknown command 'notmade'") == true, "\(unbound.errors)")
    }
}
