// The language's own commands (help, print, echo, exit, history) and help topics for its statement
// forms (let, for, if, source, time, syntax). Engine commands are registered by ShellCommands.
import Foundation

enum Builtins {
    /// Statement forms the parser reads itself but that `help` and completion list like commands.
    static let statementNames: Set<String> = ["source", "time"]

    static func specs() -> [CommandSpec] {
        [help, print, echo, exit, history, letTopic, forTopic, ifTopic, source, time, syntax]
    }

    struct HelpArguments: CommandArguments {
        @Positional(help: "a command or language keyword", completion: .dynamic("commands")) var topic: String?
        @Positional(help: "a subcommand of the topic") var subtopic: String?
    }
    struct PrintArguments: CommandArguments {
        @Rest(help: "values to print", completion: .dynamic("variables")) var values: [Value]
    }
    struct EchoArguments: CommandArguments {
        @Rest(help: "words or values", completion: .dynamic("variables")) var words: [Value]
    }
    struct ExitArguments: CommandArguments {
        @Positional(.int(0...255), help: "the exit status") var status = 0
    }
    struct HistoryArguments: CommandArguments {
        @Positional(.int(min: 1), help: "how many entries to show") var count = 20
    }
    /// `source` is read by the parser; this declaration documents and completes its argument.
    struct SourceArguments: CommandArguments {
        @Positional(.path, help: "the .fqs file") var path: String
    }

    static var help: CommandSpec { CommandSpec(
        name: "help", summary: "list the commands, or describe one",
        discussion: "With no topic, lists every command by group. `help name` (or `name?`) shows a command's usage, each argument with its type and default, and examples. `help name sub` describes a subcommand.",
        group: "shell",
        arguments: HelpArguments.self,
        examples: ["help", "help for", "train?"],
        run: { args, invocation in
            let topic = [args.topic, args.subtopic].compactMap { $0 }
            let text = topic.isEmpty ? Help.overview(invocation.interpreter.registry)
                                     : try invocation.interpreter.helpText(topic, at: invocation.range(of: args.$topic))
            invocation.output.write(text, to: .standard)
            return .none
        }) }

    static var print: CommandSpec { CommandSpec(
        name: "print", summary: "print values",
        discussion: "Prints its arguments separated by spaces. A single record prints as an aligned table of its fields; strings print without quotes. Arguments are expressions: `print \"ood\" r.ood * 100`. A negative number after a value starts a new argument (`print x -1` prints two values); write `x - 1` to subtract.",
        group: "shell",
        arguments: PrintArguments.self,
        examples: ["print r", "print \"ood accuracy\" r.ood", "print [1, 2, 3]"],
        run: { args, invocation in
            if args.values.count == 1 {
                invocation.print(args.values[0].displayString)
            } else {
                invocation.print(args.values.map(\.inlineString).joined(separator: " "))
            }
            return .none
        }) }

    static var echo: CommandSpec { CommandSpec(
        name: "echo", summary: "print words and values on one line",
        discussion: "Like `print`, but always one line: records and lists print in their one-line form.",
        group: "shell",
        arguments: EchoArguments.self,
        examples: ["echo starting run $1", "echo done r"],
        run: { args, invocation in
            invocation.print(args.words.map(\.inlineString).joined(separator: " "))
            return .none
        }) }

    static var exit: CommandSpec { CommandSpec(
        name: "exit", summary: "end the script or session with a status",
        discussion: "Stops at once, from any depth of blocks and sourced files. The process exits with the status (default 0).",
        group: "shell",
        arguments: ExitArguments.self,
        examples: ["exit", "exit 3"],
        run: { args, _ in
            throw ExitRequest(status: Int32(args.status))
        }) }

    static var history: CommandSpec { CommandSpec(
        name: "history", summary: "show the most recent input lines",
        discussion: "History is kept across sessions in ~/.fqat_shell_history (set FQAT_SHELL_HISTORY to move it). Ctrl-R searches it at the prompt.",
        group: "shell",
        arguments: HistoryArguments.self,
        examples: ["history", "history 100"],
        run: { args, invocation in
            let entries = invocation.interpreter.historyProvider()
            let first = max(0, entries.count - args.count)
            for (offset, entry) in entries[first...].enumerated() {
                let number = String(first + offset + 1)
                invocation.print(String(repeating: " ", count: max(0, 5 - number.count)) + number + "  " + entry)
            }
            return .none
        }) }

    // MARK: Language topics (help only)

    static var letTopic: CommandSpec { CommandSpec(
        name: "let", summary: "bind a variable to a value or a command's result",
        discussion: """
        `let name = expression` or `let name = command args…` binds `name` in the current block. \
        `name = …` (without let) changes an existing variable. A variable lives until the end of the block \
        that binds it; top-level variables last for the whole script or session. Command results are \
        records: read fields with `r.field`.
        """,
        group: "language",
        examples: ["let bits = [2, 3, 4]", "let r = eval", "print r.ood", "best = r.ood"],
        usage: "let <name> = <expression> | <command> …") }

    static var forTopic: CommandSpec { CommandSpec(
        name: "for", summary: "repeat a block for each element of a list",
        discussion: "The loop variable is bound inside the block only. Ctrl-C stops the loop between iterations.",
        group: "language",
        examples: ["for b in [2, 3, 4] {\n    quantize lsq bits=b\n    train fqat steps=500\n}"],
        usage: "for <name> in <list> { … }") }

    static var ifTopic: CommandSpec { CommandSpec(
        name: "if", summary: "run a block when a condition holds",
        discussion: "Conditions must be true or false: compare with == != < <= > >=, combine with and, or, not. `else` may follow `}` on the same line or the next one (at the prompt, keep `} else {` on one line).",
        group: "language",
        examples: ["if r.ood > best {\n    best = r.ood\n} else if r.ood < 0.1 {\n    print \"diverged\"\n} else {\n    print \"no better\"\n}"],
        usage: "if <condition> { … } [else if <condition> { … }] [else { … }]") }

    static var source: CommandSpec { CommandSpec(
        name: "source", summary: "run the commands of another script file here",
        discussion: "The file runs in the current scope, so its variables stay bound afterwards. A relative path is looked up in the directory of the file that sources it (the working directory at the prompt). Sourced files are checked together with the script before anything runs.",
        group: "language",
        positionals: SourceArguments.argumentSpecs().positionals,
        examples: ["source \"common.fqs\""],
        usage: "source <path>") }

    static var time: CommandSpec { CommandSpec(
        name: "time", summary: "run a command and report its wall time",
        discussion: "Shows the command's result (if any), then `time: 12.345 s`.",
        group: "language",
        examples: ["time train fqat steps=100"],
        usage: "time <command> …") }

    static var syntax: CommandSpec { CommandSpec(
        name: "syntax", summary: "how commands, values and words are written",
        discussion: """
        A statement is `command positional… key=value…`, one per line or separated by `;`; `#` starts a \
        comment; `\\` at the end of a line continues it. Values: integers `4`, numbers `1e-3` `-0.5`, \
        strings "…" (escapes \\n \\t \\" \\\\), `true`/`false`, lists `[1, 2]`, variables, `$1` `$2` (script \
        arguments), `args` (all of them), `r.field` (a field of a record). A bare word such as `lsq` or \
        `layer1.0.conv1` is a variable if one of that name is bound, otherwise, where an argument stands, \
        it is the text itself; `$name` always means the variable. Inside a word `-`, `.`, `/` and `*` \
        join, so put spaces around operators between names: `n * 2`, `a - b`.
        """,
        group: "language",
        examples: ["quantize lsq bits=4 keep=[conv1, fc]", "let n = $1 * 2", "print \"steps\" n"],
        usage: "<command> <value>… <key>=<value>…") }
}
