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

/// The fake `train`'s recipes: an enum-backed choice.
enum FakeRecipe: String, ChoiceArgument { case erm, qat, sagm, fqat }

struct FakeTrainArguments: CommandArguments {
    @Positional(help: "the recipe") var method: FakeRecipe
    @Option(.int(min: 1), help: "optimizer steps") var steps = 100
    @Option(.number(min: 0), help: "learning rate") var lr = 0.01
    @Option(.number(0...1), help: "freezing threshold") var tau: Double?
    @Option(.list(.pattern), help: "layers to train", completion: .dynamic("layers")) var layers: [String]?
}

struct FakeQuantizeArguments: CommandArguments {
    enum Method: String, ChoiceArgument { case lsq, ewgs }
    enum RangeInit: String, ChoiceArgument { case minmax, mse, lsq }
    @Positional(help: "quantizer") var method: Method
    @Option(.int(2...8), help: "bit width") var bits = 4
    @Option(help: "layers kept in full precision", completion: .dynamic("layers")) var keep: [String]?
    @Option(help: "range initialisation") var `init` = RangeInit.lsq
}

func makeRegistry(_ session: FakeSession = FakeSession()) -> CommandRegistry {
    let registry = CommandRegistry()
    registry.register(CommandSpec(
        name: "train", summary: "train the model with a recipe",
        discussion: "Runs optimizer steps and returns the final accuracies.",
        group: "training", arguments: FakeTrainArguments.self,
        examples: ["train fqat steps=2000 tau=0.3"],
        run: { args, _ in
            session.trained.append(args.method.rawValue)
            var record = Record()
            record["method"] = .string(args.method.rawValue)
            record["steps"] = .int(args.steps)
            record["lr"] = .number(args.lr)
            if let tau = args.tau { record["tau"] = .number(tau) }
            record["ood"] = .number(0.5 + Double(args.steps) / 1000)
            return .record(record)
        }))
    struct EvalArguments: CommandArguments {
        enum Split: String, ChoiceArgument { case val, test }
        @Option(help: "which split") var split = Split.val
    }
    registry.register(CommandSpec(
        name: "eval", summary: "evaluate every domain", group: "training", arguments: EvalArguments.self,
        run: { args, _ in
            .record(["split": .string(args.split.rawValue), "iid": 0.9, "ood": 0.75,
                     "domains": ["a", "b"]])
        }))
    registry.register(CommandSpec(
        name: "quantize", summary: "insert quantizers", group: "model", arguments: FakeQuantizeArguments.self,
        run: { args, _ in
            var record = Record()
            record["method"] = .string(args.method.rawValue)
            record["bits"] = .int(args.bits)
            if let keep = args.keep { record["keep"] = .list(keep.map { .string($0) }) }
            return .record(record)
        }))
    struct RotatedArguments: CommandArguments {
        @Option(help: "rotation angles") var angles = [0, 15, 30]
    }
    struct FolderArguments: CommandArguments {
        @Option(.path, help: "dataset root") var root: String
    }
    registry.register(CommandSpec(
        name: "data", summary: "choose the data", group: "data",
        subcommands: [
            CommandSpec(name: "rotated", summary: "rotated Fashion-MNIST domains", arguments: RotatedArguments.self,
                        run: { args, _ in .string("rotated \(args.angles)") }),
            CommandSpec(name: "folder", summary: "DomainBed image folders", arguments: FolderArguments.self,
                        run: { args, _ in .string("folder \(args.root)") }),
        ]))
    registry.register(CommandSpec(
        name: "count", summary: "increment and return a counter", group: "test",
        run: { _ in
            session.counter += 1
            return .int(session.counter)
        }))
    struct FailArguments: CommandArguments {
        @Option(help: "the message") var what = "boom"
    }
    registry.register(CommandSpec(
        name: "fail", summary: "fail with a message", group: "test", arguments: FailArguments.self,
        run: { args, invocation in
            if invocation.range(of: args.$what) == nil { throw invocation.error("failed: \(args.what)") }
            throw invocation.error("failed: \(args.what)", argument: args.$what)
        }))
    struct WaitArguments: CommandArguments {
        @Option(.int(min: 0), help: "how many") var steps = 10
    }
    registry.register(CommandSpec(
        name: "wait", summary: "do steps, polling for Ctrl-C", group: "test", arguments: WaitArguments.self,
        run: { args, invocation in
            for step in 0..<args.steps {
                if step == session.interruptAtStep { invocation.interrupt.request() }
                try invocation.checkInterrupt()
                session.stepsDone += 1
            }
            return .none
        }))
    struct FreezeArguments: CommandArguments {
        @Rest(.pattern, help: "layer patterns", completion: .dynamic("layers")) var layers: [String]
        @Option(.int(min: 1), help: "steps") var `for`: Int?
    }
    registry.register(CommandSpec(
        name: "freeze", summary: "freeze scale factors", group: "training", arguments: FreezeArguments.self,
        run: { args, _ in .list(args.layers.map { .string($0) }) }))
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
