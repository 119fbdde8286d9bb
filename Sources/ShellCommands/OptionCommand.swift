// `option "name" default`: a script option (`--name=value` on the command line) or its default, so a
// script can be shrunk from outside (`fqat-shell examples/quickstart.fqs --erm_steps=20`).
import Foundation
import ShellLanguage

extension ShellCommands {
    struct OptionArguments: CommandArguments {
        @Positional(help: "option name, in quotes") var name: String
        @Positional(help: "value when the option is not given") var `default`: Value
    }

    static func optionCommand() -> CommandSpec {
        CommandSpec(
            name: "option", summary: "the value of script option --name=…, or a default",
            discussion: "Write the name in quotes: a bare word would be read as the variable itself once the option is given.",
            group: "shell",
            arguments: OptionArguments.self,
            examples: ["let steps = option \"steps\" 600"],
            run: { args, inv in
                guard let given = inv.interpreter.environment.lookup(args.name) else { return args.default }
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
