// One set of resolution rules for the Checker (before a script runs) and the Interpreter (as it runs),
// after jlox's Resolver: what a statement's first word names (a command, help, a variable, …), which
// subcommand a call picks, and when a bare word is a choice rather than a variable. Both sides call
// these functions, so a script that passes the checker never meets a different rule when it runs;
// only what cannot be known statically (a computed subcommand name, a variable's value) is left to
// the interpreter.
import Foundation

enum Resolver {
    /// What a command statement's name refers to.
    enum Target {
        /// `name?`: help for the name.
        case help
        /// `source`/`time` in a value position (`let x = time …`): statement forms give no value.
        case statementForm
        /// A command (or a parent of subcommands) in the registry.
        case command(CommandSpec)
        /// A lone name that reads a bound variable (`r`, `r.ood`): its value is shown.
        case variable
        /// A lone dotted name whose first segment is not bound (`rr.ood`).
        case undefinedVariablePath
        /// A bound variable followed by arguments (`x -1`): not a command.
        case variableWithArguments
        /// A help-only topic (`syntax`) used as a command.
        case topicOnly(CommandSpec)
        /// Nothing of that name.
        case unknown
    }

    /// Resolves a command statement's name. Commands win over variables of the same name; a lone
    /// name reads a variable only when no command has it. `isBound` answers for a variable's name
    /// (its first segment) in the scope of the statement.
    static func target(of command: Command, in registry: CommandRegistry, isBound: (String) -> Bool) -> Target {
        if command.wantsHelp { return .help }
        if Builtins.statementNames.contains(command.name) { return .statementForm }
        if let spec = registry.spec(named: command.name), registry.commandNames.contains(command.name) {
            return .command(spec)
        }
        if Interpreter.isVariablePath(command.name) {
            let bound = isBound(Interpreter.firstSegment(command.name))
            if command.arguments.isEmpty {
                if bound { return .variable }
                if command.name.contains(".") { return .undefinedVariablePath }
            } else if bound {
                return .variableWithArguments
            }
        }
        if let spec = registry.spec(named: command.name) { return .topicOnly(spec) }
        return .unknown
    }

    /// Which subcommand a call of a parent command picks: its first positional argument.
    enum SubcommandChoice: Equatable {
        /// No positional argument: the parent needs one.
        case missing
        /// A bare word naming a subcommand: that subcommand, even if a variable has its name.
        case named(String, argumentIndex: Int)
        /// Any other expression: its value (text) names the subcommand, known statically only for
        /// literals.
        case computed(argumentIndex: Int)
    }

    static func subcommand(of spec: CommandSpec, arguments: [Argument]) -> SubcommandChoice {
        guard let index = arguments.firstIndex(where: { $0.label == nil }) else { return .missing }
        if case .word(let word, _) = arguments[index].value, spec.subcommand(named: word) != nil {
            return .named(word, argumentIndex: index)
        }
        return .computed(argumentIndex: index)
    }

    /// A bare word that is one of the argument's choices is that choice, even if a variable has its
    /// name (`quantize ewgs` in a script run with --ewgs=true); `$ewgs` reads the variable.
    static func choiceWord(_ expression: ExpressionNode, for argument: ArgSpec) -> String? {
        if case .word(let word, _) = expression, case .choice(let choices) = argument.kind, choices.contains(word) {
            return word
        }
        return nil
    }
}
