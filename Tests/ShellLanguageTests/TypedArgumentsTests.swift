// The argument declarations (`@Positional`, `@Option`, `@Rest`) are the one source of each argument's
// spec: name, kind, required/default and help; enum-backed choices give the checker's words.
import XCTest
@testable import ShellLanguage

final class TypedArgumentsTests: XCTestCase {
    enum Shape: String, ChoiceArgument { case square, round, starLike = "star-like" }

    struct Arguments: CommandArguments {
        @Positional(.path, help: "where") var path: String
        @Positional(help: "how many") var count = 3
        @Option(help: "the shape") var shape = Shape.round
        @Option(help: "shapes to skip") var skip: [Shape]?
        @Option(.number(0...1), help: "a fraction") var fraction: Double?
        @Option(help: "a Swift keyword as a name") var `default` = true
        @Rest(help: "the rest") var values: [Value]
    }

    func testSpecsComeFromTheDeclarations() {
        let spec = CommandSpec(name: "probe", summary: "probe", arguments: Arguments.self) { _, _ in .none }
        XCTAssertEqual(spec.positionals.map(\.name), ["path", "count"])
        XCTAssertEqual(spec.keywords.map(\.name), ["shape", "skip", "fraction", "default"])
        XCTAssertEqual(spec.variadic?.name, "values")
        XCTAssertEqual(spec.positionals.map(\.required), [true, false])
        XCTAssertEqual(spec.keywords.map(\.required), [false, false, false, false])
        XCTAssertEqual(spec.argument(named: "path")?.kind, .path)
        XCTAssertEqual(spec.argument(named: "count")?.defaultValue, .int(3))
        XCTAssertEqual(spec.argument(named: "shape")?.kind, .choice(["square", "round", "star-like"]))
        XCTAssertEqual(spec.argument(named: "shape")?.defaultValue, .string("round"))
        XCTAssertEqual(spec.argument(named: "shape")?.completion, .choices)
        XCTAssertEqual(spec.argument(named: "skip")?.kind, .list(.choice(["square", "round", "star-like"])))
        XCTAssertNil(spec.argument(named: "skip")?.defaultValue)
        XCTAssertEqual(spec.argument(named: "fraction")?.kind, .number(0...1))
        XCTAssertEqual(spec.argument(named: "default")?.defaultValue, .bool(true))
        XCTAssertEqual(spec.argument(named: "values")?.kind, .any)
        XCTAssertEqual(spec.argument(named: "shape")?.help, "the shape")
    }

    func testEnumChoicesAreCheckedDecodedAndPointedAt() throws {
        var seen: [String] = []
        let registry = CommandRegistry()
        registry.register(CommandSpec(name: "probe", summary: "probe", arguments: Arguments.self) { args, inv in
            seen.append("\(args.path) \(args.count) \(args.shape.rawValue) \((args.skip ?? []).map(\.rawValue)) \(args.fraction ?? -1) \(args.default) \(args.values.count)")
            if args.shape == .square { throw inv.error("no squares", argument: args.$shape) }
            return .none
        })
        let output = CapturingOutput()
        let interpreter = Interpreter(registry: registry, output: output, interrupt: Interrupt())
        XCTAssertEqual(interpreter.run(Source(name: "t", text: "probe a/b 5 shape=star-like skip=[round] default=false x y")).status, 0)
        XCTAssertEqual(seen, ["a/b 5 star-like [\"round\"] -1.0 false 2"])
        // A word that is no case: the checker says so before anything runs, with a suggestion.
        XCTAssertNotEqual(interpreter.run(Source(name: "t", text: "probe a shape=rond")).status, 0)
        XCTAssertTrue(output.error.contains("argument 'shape' has no choice 'rond'; did you mean 'round'?"), output.error)
        XCTAssertEqual(seen.count, 1)
        // `args.$shape` names the argument, so the error points at where it was written.
        XCTAssertNotEqual(interpreter.run(Source(name: "t", text: "probe a shape=square")).status, 0)
        XCTAssertTrue(output.error.contains("t:1:9: error: no squares"), output.error)
    }

    struct Shared: CommandArguments {
        @Option(.number(0...1), help: "a shared rate") var rate: Double?
    }
    struct Grouped: CommandArguments {
        @Positional(help: "steps") var steps = 1
        @Group var shared: Shared
        @Option(help: "after the group") var after = false
    }

    func testGroupsAreDeclaredOnceAndShared() throws {
        let spec = CommandSpec(name: "g", summary: "g", arguments: Grouped.self) { _, _ in .none }
        XCTAssertEqual(spec.keywords.map(\.name), ["rate", "after"])
        XCTAssertEqual(spec.argument(named: "rate")?.kind, .number(0...1))
        var rates: [Double?] = []
        let registry = CommandRegistry()
        registry.register(CommandSpec(name: "g", summary: "g", arguments: Grouped.self) { args, _ in
            rates.append(args.shared.rate)
            return .none
        })
        let interpreter = Interpreter(registry: registry, output: CapturingOutput(), interrupt: Interrupt())
        XCTAssertEqual(interpreter.run(Source(name: "t", text: "g 2 rate=0.5\ng")).status, 0)
        XCTAssertEqual(rates, [0.5, nil])
    }

    func testDeclaredKindsMustFitTheType() {
        XCTAssertTrue(ArgKind.int(1...3).refines(.int))
        XCTAssertTrue(ArgKind.path.refines(.string))
        XCTAssertTrue(ArgKind.list(.pattern).refines(.list(.string)))
        XCTAssertTrue(ArgKind.choice(["a"]).refines(.choice(["a", "b"])))
        XCTAssertFalse(ArgKind.choice(["c"]).refines(.choice(["a", "b"])))
        XCTAssertFalse(ArgKind.int.refines(.string))
        XCTAssertFalse(ArgKind.number.refines(.int))
        XCTAssertFalse(ArgKind.list(.int).refines(.list(.string)))
        XCTAssertTrue(ArgKind.string.refines(.any))
    }
}
