// docs/commands.md is generated from the command registry; this keeps the committed file in sync.
// Regenerate with: swift run fqat-shell --commands-markdown > docs/commands.md
import Foundation
import ShellCommands
import ShellLanguage
import XCTest

final class DocsTests: XCTestCase {
    func testCommandReferenceIsUpToDate() throws {
        let generated = ShellCommands.makeRegistry(session: Session()).markdownReference()
        let path = repositoryRoot.appendingPathComponent("docs/commands.md")
        let committed = try String(contentsOf: path, encoding: .utf8)
        XCTAssertEqual(committed, generated, "docs/commands.md is stale: run `swift run fqat-shell --commands-markdown > docs/commands.md`")
    }

    func testEveryCommandHasHelpAndExamplesParse() throws {
        let registry = ShellCommands.makeRegistry(session: Session())
        for name in ["data", "model", "quantize", "train", "step", "disorder", "freeze", "unfreeze", "policy", "eval",
                     "plot", "landscape", "save", "load", "export", "set", "show", "time", "help", "history", "exit", "results"] {
            let spec = try XCTUnwrap(registry.spec(named: name), "missing command \(name)")
            XCTAssertFalse(spec.summary.isEmpty, "\(name) has no summary")
            XCTAssertNotNil(registry.helpText(for: [name]), "\(name) has no help")
        }
        // Every example in every command's help passes the checker (no typo in the documentation).
        let interpreter = Interpreter(registry: registry, output: CapturingOutput())
        let builtins = Set(CommandRegistry(includeBuiltins: true).names)
        for spec in registry.commands where !builtins.contains(spec.name) {
            for example in spec.examples + spec.subcommands.flatMap(\.examples) {
                let errors = interpreter.check(Source(name: "example", text: "let r = 1\n" + example)).filter { $0.severity == .error }
                XCTAssertTrue(errors.isEmpty, "example of \(spec.name) does not check: \(example)\n\(errors.map { $0.rendered() })")
            }
        }
    }

    func testTrainHelpShowsEveryHyperparameter() throws {
        let registry = ShellCommands.makeRegistry(session: Session())
        let help = try XCTUnwrap(registry.helpText(for: ["train"]))
        for key in ["steps", "lr", "wd", "scale_lr", "rho", "alpha", "tau", "K", "eval_every", "bn", "dropout", "fqat", "freeze-both", "no-unfreeze", "alternate", "reverse"] {
            XCTAssertTrue(help.contains(key), "help train does not mention \(key)\n\(help)")
        }
    }
}
