// A small fake registry of engine-like commands, and helpers to run scripts with captured output.
import Foundation
import XCTest
@testable import ShellLanguage

/// State the fake commands share (stands in for the integrator's Session).
final class FakeSession {
    var counter = 0
    var trained: [String] = []
    /// `wait` requests an interrupt when it reaches this step (simulated Ctrl-C).
    var interruptAtStep: Int?
    var stepsDone = 0
}

enum Fixtures {
    static var directory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    }
}

func makeRegistry(_ session: FakeSession = FakeSession()) -> CommandRegistry {
    let registry = CommandRegistry()
    registry.register(CommandSpec(
        name: "train", summary: "train the model with a recipe",
        discussion: "Runs optimizer steps and returns the final accuracies.",
        group: "training",
        positionals: [ArgSpec("method", .choice(["erm", "qat", "sagm", "fqat"]), required: true, help: "the recipe")],
        keywords: [
            ArgSpec("steps", .int(min: 1), default: 100, help: "optimizer steps"),
            ArgSpec("lr", .number(min: 0), default: 0.01, help: "learning rate"),
            ArgSpec("tau", .number(0...1), help: "freezing threshold"),
            ArgSpec("layers", .list(.pattern), help: "layers to train", completion: .dynamic("layers")),
        ],
        examples: ["train fqat steps=2000 tau=0.3"],
        run: { invocation in
            let method = invocation.string("method")
            session.trained.append(method)
            var record = Record()
            record["method"] = .string(method)
            record["steps"] = .int(invocation.int("steps"))
            record["lr"] = .number(invocation.double("lr"))
            if invocation.has("tau") { record["tau"] = .number(invocation.double("tau")) }
            record["ood"] = .number(0.5 + Double(invocation.int("steps")) / 1000)
            return .record(record)
        }))
    registry.register(CommandSpec(
        name: "eval", summary: "evaluate every domain", group: "training",
        keywords: [ArgSpec("split", .choice(["val", "test"]), default: "val", help: "which split")],
        run: { invocation in
            .record(["split": .string(invocation.string("split")), "iid": 0.9, "ood": 0.75,
                     "domains": ["a", "b"]])
        }))
    registry.register(CommandSpec(
        name: "quantize", summary: "insert quantizers", group: "model",
        positionals: [ArgSpec("method", .choice(["lsq", "ewgs"]), required: true, help: "quantizer")],
        keywords: [
            ArgSpec("bits", .int(2...8), default: 4, help: "bit width"),
            ArgSpec("keep", .list(.string), help: "layers kept in full precision", completion: .dynamic("layers")),
            ArgSpec("init", .choice(["minmax", "mse", "lsq"]), default: "lsq", help: "range initialisation"),
        ],
        run: { invocation in
            var record = Record()
            record["method"] = .string(invocation.string("method"))
            record["bits"] = .int(invocation.int("bits"))
            if invocation.has("keep") { record["keep"] = .list(invocation.strings("keep").map { .string($0) }) }
            return .record(record)
        }))
    registry.register(CommandSpec(
        name: "data", summary: "choose the data", group: "data",
        subcommands: [
            CommandSpec(name: "rotated", summary: "rotated Fashion-MNIST domains",
                        keywords: [ArgSpec("angles", .list(.int), default: [0, 15, 30], help: "rotation angles")],
                        run: { invocation in .string("rotated \(invocation.ints("angles"))") }),
            CommandSpec(name: "folder", summary: "DomainBed image folders",
                        keywords: [ArgSpec("root", .path, required: true, help: "dataset root")],
                        run: { invocation in .string("folder \(invocation.string("root"))") }),
        ]))
    registry.register(CommandSpec(
        name: "count", summary: "increment and return a counter", group: "test",
        run: { _ in
            session.counter += 1
            return .int(session.counter)
        }))
    registry.register(CommandSpec(
        name: "fail", summary: "fail with a message", group: "test",
        keywords: [ArgSpec("what", .string, default: "boom", help: "the message")],
        run: { invocation in
            throw invocation.error("failed: \(invocation.string("what"))", argument: invocation.argumentRanges["what"] == nil ? nil : "what")
        }))
    registry.register(CommandSpec(
        name: "wait", summary: "do steps, polling for Ctrl-C", group: "test",
        keywords: [ArgSpec("steps", .int(min: 0), default: 10, help: "how many")],
        run: { invocation in
            for step in 0..<invocation.int("steps") {
                if step == session.interruptAtStep { invocation.interrupt.request() }
                try invocation.checkInterrupt()
                session.stepsDone += 1
            }
            return .none
        }))
    registry.register(CommandSpec(
        name: "freeze", summary: "freeze scale factors", group: "training",
        variadic: ArgSpec("layers", .pattern, help: "layer patterns", completion: .dynamic("layers")),
        keywords: [ArgSpec("for", .int(min: 1), help: "steps")],
        run: { invocation in .list(invocation.rest) }))
    return registry
}

/// A script run with captured output.
struct ScriptRun {
    let result: RunResult
    let output: CapturingOutput
    let interpreter: Interpreter
    var stdout: [String] { output.standardLines }
    var errors: [String] { result.errors.map(\.summary) }
}

func runScript(_ text: String, arguments: [String] = [], session: FakeSession = FakeSession(),
               files: [String: String] = [:], name: String = "test.fqs") -> ScriptRun {
    let output = CapturingOutput()
    let interpreter = Interpreter(registry: makeRegistry(session), output: output, interrupt: Interrupt())
    interpreter.clock = { 0 }
    interpreter.readSource = { path in
        let key = (path as NSString).lastPathComponent
        guard let text = files[key] ?? files[path] else { throw SourceReadError(path: path) }
        return Source(name: key, text: text, path: path)
    }
    let source = Source(name: name, text: text)
    let result = interpreter.runScript(source, arguments: ScriptArguments.parse(scriptName: name, arguments))
    return ScriptRun(result: result, output: output, interpreter: interpreter)
}

/// Parse + check only.
func diagnostics(_ text: String, variables: Set<String> = []) -> [Diagnostic] {
    let source = Source(name: "test.fqs", text: text)
    let parsed = Parser.parse(source)
    let checker = Checker(registry: makeRegistry(), variables: variables.union(["args"]), scriptArgumentCount: 0)
    return parsed.diagnostics + checker.check(parsed.program)
}

func errorSummaries(_ text: String, variables: Set<String> = []) -> [String] {
    diagnostics(text, variables: variables).filter { $0.severity == .error }.map(\.summary)
}
