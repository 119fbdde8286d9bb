// `option "name" default`: a script option (`--name=value` on the command line) or its default, so a
// script can be shrunk from outside (`fqat-shell examples/quickstart.fqs --erm_steps=20`).
import Foundation
import ShellLanguage

extension ShellCommands {
    static func optionCommand() -> CommandSpec {
        CommandSpec(
            name: "option", summary: "the value of script option --name=…, or a default",
            discussion: "Write the name in quotes: a bare word would be read as the variable itself once the option is given.",
            group: "shell",
            positionals: [ArgSpec("name", .string, required: true, help: "option name, in quotes"),
                          ArgSpec("default", .any, required: true, help: "value when the option is not given")],
            examples: ["let steps = option \"steps\" 600"],
            run: { inv in
                guard let given = inv.interpreter.environment.lookup(inv.string("name")) else { return inv.value("default") ?? .none }
                return parseListOption(given)
            })
    }

    /// `--seeds=[0,23]` arrives as text; a bracketed, comma-separated list becomes a list value
    /// (elements read as literals: numbers, booleans, else text without quotes).
    static func parseListOption(_ value: Value) -> Value {
        guard case .string(let text) = value else { return value }
        let t = text.trimmingCharacters(in: .whitespaces)
        guard t.hasPrefix("["), t.hasSuffix("]") else { return value }
        let inner = t.dropFirst().dropLast()
        if inner.trimmingCharacters(in: .whitespaces).isEmpty { return .list([]) }
        return .list(inner.split(separator: ",").map { part in
            let p = part.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            return Value.parseLiteral(p)
        })
    }
}
