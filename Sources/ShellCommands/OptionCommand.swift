// `option "name" default`: a script option (`--name=value` on the command line) or its default, so a
// script can be shrunk from outside (`fqat-shell examples/quickstart.fqs --erm_steps=20`).
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
                inv.interpreter.environment.lookup(inv.string("name")) ?? inv.value("default") ?? .none
            })
    }
}
