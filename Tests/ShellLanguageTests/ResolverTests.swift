// The resolution rules that the Checker and the Interpreter share (Resolver.swift): what a
// statement's first word names, which subcommand a call picks, when a bare word is a choice.
import XCTest
@testable import ShellLanguage

final class ResolverTests: XCTestCase {
    let registry = makeRegistry()

    func command(_ text: String) throws -> Command {
        let parsed = Parser.parse(Source(name: "t", text: text))
        XCTAssertFalse(parsed.hasErrors, "\(text): \(parsed.diagnostics.map { $0.message })")
        guard case .command(let command)? = parsed.program.statements.first else {
            throw XCTSkip("'\(text)' did not parse as a command")
        }
        return command
    }

    func target(_ text: String, bound: Set<String> = []) throws -> String {
        switch Resolver.target(of: try command(text), in: registry, isBound: { bound.contains($0) }) {
        case .help: return "help"
        case .statementForm: return "statement"
        case .command(let spec): return "command \(spec.name)"
        case .variable: return "variable"
        case .undefinedVariablePath: return "undefined"
        case .variableWithArguments: return "variable with arguments"
        case .topicOnly(let spec): return "topic \(spec.name)"
        case .unknown: return "unknown"
        }
    }

    func testWhatTheFirstWordNames() throws {
        XCTAssertEqual(try target("train fqat steps=3"), "command train")
        XCTAssertEqual(try target("train?"), "help")
        XCTAssertEqual(try target("nosuch?"), "help")
        // A command wins over a variable of the same name, with or without arguments.
        XCTAssertEqual(try target("count", bound: ["count"]), "command count")
        XCTAssertEqual(try target("eval split=test", bound: ["eval"]), "command eval")
        // A lone name reads a variable only when one is bound; dotted names read fields.
        XCTAssertEqual(try target("r", bound: ["r"]), "variable")
        XCTAssertEqual(try target("r.ood", bound: ["r"]), "variable")
        XCTAssertEqual(try target("r.ood"), "undefined")
        XCTAssertEqual(try target("r"), "unknown")
        XCTAssertEqual(try target("x -1", bound: ["x"]), "variable with arguments")
        XCTAssertEqual(try target("x -1"), "unknown")
        XCTAssertEqual(try target("syntax"), "topic syntax")
    }

    func testSubcommandChoice() throws {
        let data = try XCTUnwrap(registry.spec(named: "data"))
        func choice(_ text: String) throws -> Resolver.SubcommandChoice {
            Resolver.subcommand(of: data, arguments: try command(text).arguments)
        }
        XCTAssertEqual(try choice("data rotated angles=[0, 15]"), .named("rotated", argumentIndex: 0))
        // Keywords before the subcommand word do not count as the choice.
        XCTAssertEqual(try choice("data root=x folder"), .named("folder", argumentIndex: 1))
        XCTAssertEqual(try choice("data \"rotated\""), .computed(argumentIndex: 0))
        XCTAssertEqual(try choice("data $which"), .computed(argumentIndex: 0))
        XCTAssertEqual(try choice("data nosuch"), .computed(argumentIndex: 0))
        XCTAssertEqual(try choice("data root=x"), .missing)
    }

    func testChoiceWordsWinOverVariables() throws {
        let spec = try XCTUnwrap(registry.spec(named: "quantize"))
        let method = try XCTUnwrap(spec.argument(named: "method"))
        let bits = try XCTUnwrap(spec.argument(named: "bits"))
        let arguments = try command("quantize ewgs bits=four").arguments
        XCTAssertEqual(Resolver.choiceWord(arguments[0].value, for: method), "ewgs")
        XCTAssertNil(Resolver.choiceWord(arguments[1].value, for: bits))
        XCTAssertNil(Resolver.choiceWord(try command("quantize $ewgs").arguments[0].value, for: method))
        XCTAssertNil(Resolver.choiceWord(try command("quantize sgd").arguments[0].value, for: method))
        // The same rule at check time and at run time: a bound `ewgs` is still the choice.
        let output = CapturingOutput()
        let interpreter = Interpreter(registry: registry, output: output, interrupt: Interrupt())
        let result = interpreter.run(Source(name: "t", text: "let ewgs = 3\nlet r = quantize ewgs\nprint r.method"))
        XCTAssertEqual(result.status, 0, output.error)
        XCTAssertEqual(output.standardLines.last, "ewgs")
        XCTAssertTrue(output.error.contains("'ewgs' is the choice 'ewgs' here, not the variable"), output.error)
    }
}
