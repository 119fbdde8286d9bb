// The resolver (after jlox's): one pass over a parsed program, before the Checker and the Interpreter,
// that decides once what each statement's first word names (a command, help, a variable, …), which
// subcommand each call picks, which arguments bind to which parameters, which bare words are choices,
// and which variable references and assignment targets name no variable, walking block scopes and
// `source`d files as they will run. It stores that in a `Resolution`, a side table keyed by each node's source range (jlox keeps
// `locals` keyed by the expression): the Checker reports errors from it and the Interpreter reads it
// instead of resolving again. Only what cannot be known before running is left to run time, through
// the same rule functions: a subcommand named by a computed value, and names that a `source` of a
// computed file may bind (relaxed checking).
import Foundation

final class Resolver {
    // MARK: The rules (each decides one node; the pass below applies them once)

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

    /// How a call of `spec` binds its arguments: the subcommand it picks (recursively), the match of
    /// its arguments to the parameters, and which bare words are choices. `isBound` only marks a
    /// choice word that also names a variable (the checker warns). The pass resolves every call
    /// whose subcommand is known before running; the interpreter calls this for a subcommand named
    /// by a computed value, once it has the value.
    static func call(of spec: CommandSpec, arguments: [Argument], path: [String], commandRange: SourceRange,
                     isBound: (String) -> Bool) -> ResolvedCall {
        if !spec.subcommands.isEmpty {
            switch subcommand(of: spec, arguments: arguments) {
            case .missing:
                return .missingSubcommand
            case .named(let word, let index):
                return chosen(word, of: spec, at: index, arguments: arguments, path: path, commandRange: commandRange, isBound: isBound)
            case .computed(let index):
                // A string literal is known now: `data "rotated"` is `data rotated`.
                if case .string(let text, _) = arguments[index].value, spec.subcommand(named: text) != nil {
                    return chosen(text, of: spec, at: index, arguments: arguments, path: path, commandRange: commandRange, isBound: isBound)
                }
                return .computedSubcommand(argumentIndex: index)
            }
        }
        let match = ArgumentMatcher.match(arguments, spec: spec, path: path, commandRange: commandRange)
        var choices: [SourceRange: ChoiceWord] = [:]
        func note(_ argument: Argument, _ argSpec: ArgSpec) {
            if let word = choiceWord(argument.value, for: argSpec) {
                choices[argument.value.range] = ChoiceWord(word: word, shadowsVariable: isBound(word))
            }
        }
        for (argSpec, argument) in match.matched { note(argument, argSpec) }
        if let variadic = spec.variadic {
            for argument in match.rest { note(argument, variadic) }
        }
        return .arguments(match, choices: choices)
    }

    private static func chosen(_ name: String, of spec: CommandSpec, at index: Int, arguments: [Argument], path: [String],
                               commandRange: SourceRange, isBound: (String) -> Bool) -> ResolvedCall {
        guard let sub = spec.subcommand(named: name) else { return .computedSubcommand(argumentIndex: index) }
        var remaining = arguments
        remaining.remove(at: index)
        return .subcommand(sub, argumentIndex: index,
                           call: call(of: sub, arguments: remaining, path: path + [name], commandRange: commandRange, isBound: isBound))
    }

    // MARK: The pass

    let registry: CommandRegistry
    /// Reads a sourced file (tests substitute an in-memory file system).
    let readSource: (String) throws -> Source
    /// Names bound in each open block scope, outermost (the session's globals) first.
    var scopes: [Set<String>]
    /// After a `source` whose path is computed, the names it may bind are unknown: every name counts
    /// as possibly bound from there on (the checker stops reporting undefined variables).
    var relaxed = false
    /// Files being resolved, outermost first (cycles, nesting depth and relative paths).
    var sourceStack: [Source] = []
    /// For a file resolved as it is sourced at run time: the files running around it and the blocks
    /// open there (nesting limits and cycles count from where it runs).
    var enclosingSources: [Source] = []
    var enclosingBlocks = 0
    var resolution = Resolution()

    init(registry: CommandRegistry, variables: Set<String>, readSource: @escaping (String) throws -> Source) {
        self.registry = registry
        self.scopes = [variables]
        self.readSource = readSource
    }

    /// Resolves a program (and every file it sources with a path known now).
    func resolve(_ program: Program) -> Resolution {
        sourceStack = enclosingSources + [program.source]
        resolve(program.statements)
        resolution.boundNames = scopes.reduce(into: Set<String>()) { $0.formUnion($1) }
        return resolution
    }

    func isBound(_ name: String) -> Bool { scopes.contains { $0.contains(name) } }
    func define(_ name: String) { scopes[scopes.count - 1].insert(name) }
    var visibleNames: Set<String> { scopes.reduce(into: Set<String>()) { $0.formUnion($1) } }

    /// For a name that is not bound where it stands (and cannot have been bound by a computed
    /// `source`): the names that are (suggestions). Nil when it is, or may be, bound.
    func unbound(_ name: String) -> Set<String>? {
        isBound(name) || relaxed ? nil : visibleNames
    }

    func resolve(_ statements: [Statement]) {
        for statement in statements { resolve(statement) }
    }

    func resolveBlock(_ block: Block, binding variable: String? = nil) {
        scopes.append([])
        if let variable { define(variable) }
        resolve(block.statements)
        scopes.removeLast()
    }

    func resolve(_ statement: Statement) {
        switch statement {
        case .command(let command), .time(let command, _):
            resolve(command)
        case .expression(let expression):
            resolve(expression)
        case .letBinding(let name, _, let value, _):
            resolve(value)
            define(name)
        case .assignment(let name, let nameRange, let value, _):
            resolve(value)
            resolution.unboundAssignments[nameRange] = unbound(name)
        case .forLoop(let variable, _, let sequence, let body, _):
            resolve(sequence)
            resolveBlock(body, binding: variable)
        case .conditional(let branches, let elseBody, _):
            for branch in branches {
                resolve(branch.condition)
                resolveBlock(branch.body)
            }
            if let elseBody { resolveBlock(elseBody) }
        case .source(let path, let range):
            resolve(path)
            resolveSource(path, range: range)
        }
    }

    func resolve(_ value: RightHandSide) {
        switch value {
        case .command(let command): resolve(command)
        case .expression(let expression): resolve(expression)
        }
    }

    func resolve(_ command: Command) {
        let lexical = Resolver.target(of: command, in: registry, isBound: { isBound($0) })
        var target = lexical
        var assumed = false
        if relaxed, case .unknown = lexical {
            // A computed `source` may have bound the name: decided as if it had, and checked again
            // against the variables when the line runs.
            target = Resolver.target(of: command, in: registry, isBound: { _ in true })
            if case .variable = target { assumed = true }
        } else if relaxed, case .undefinedVariablePath = lexical {
            target = .variable
            assumed = true
        }
        var resolved = ResolvedCommand(target: target, assumedBound: assumed)
        switch target {
        case .command(let spec):
            resolved.call = Resolver.call(of: spec, arguments: command.arguments, path: [command.name],
                                          commandRange: command.nameRange, isBound: { isBound($0) })
        case .unknown, .undefinedVariablePath:
            resolved.visibleNames = visibleNames
        default:
            break
        }
        resolution.commands[command.nameRange] = resolved
        for argument in command.arguments { resolve(argument.value) }
    }

    /// Records every variable reference inside an expression that names no variable.
    func resolve(_ expression: ExpressionNode) {
        switch expression {
        case .word(let word, let range):
            // A word that cannot name a variable (`a/b`, `x*`) is text; the checker's hints for it
            // still need the names in scope.
            resolution.unboundReferences[range] = Interpreter.isVariablePath(word) ? unbound(Interpreter.firstSegment(word))
                                                                                  : visibleNames
        case .variable(let name, let range):
            resolution.unboundReferences[range] = unbound(Interpreter.firstSegment(name))
        case .list(let items, _):
            for item in items { resolve(item) }
        case .unary(_, let operand, _):
            resolve(operand)
        case .binary(_, let left, let right, _):
            resolve(left)
            resolve(right)
        case .field(let base, _, _):
            resolve(base)
        case .index(let base, let index, _):
            resolve(base)
            resolve(index)
        case .integer, .number, .string, .bool, .scriptArgument, .invalid:
            break
        }
    }

    /// The text of a `source` path known before running: a literal, or a bare word that names no
    /// variable (as where an argument stands), coerced as a path. The same folding as the checker's
    /// static values: lists of known items, the negation of a known number.
    func staticPath(_ expression: ExpressionNode) -> String? {
        func value(_ expression: ExpressionNode, argument: Bool) -> Value? {
            switch expression {
            case .integer(let i, _): return .int(i)
            case .number(let d, _): return .number(d)
            case .string(let s, _): return .string(s)
            case .bool(let b, _): return .bool(b)
            case .word(let word, _):
                guard argument else { return nil }
                if Interpreter.isVariablePath(word), isBound(Interpreter.firstSegment(word)) || relaxed { return nil }
                return .string(word)
            case .list(let items, _):
                let values = items.compactMap { value($0, argument: argument) }
                return values.count == items.count ? .list(values) : nil
            case .unary(.negate, let operand, _):
                switch value(operand, argument: false) {
                case .int(let i)? where i != Int.min: return .int(-i)
                case .number(let d)?: return .number(-d)
                default: return nil
                }
            default:
                return nil
            }
        }
        return value(expression, argument: true).flatMap { try? ArgKind.path.coerce($0).stringValue }
    }

    func resolveSource(_ path: ExpressionNode, range: SourceRange) {
        guard let text = staticPath(path) else {
            resolution.sources[range] = .computed(firstRelaxation: !relaxed)
            relaxed = true
            return
        }
        let resolved = SourcePaths.resolve(text, from: sourceStack.last)
        let identity = SourcePaths.standardize(resolved)
        if let cycleStart = sourceStack.firstIndex(where: { $0.path.map(SourcePaths.standardize) == identity }) {
            resolution.sources[range] = .cycle(text: text, chain: (sourceStack[cycleStart...].map(\.name) + [text]).joined(separator: " → "))
            return
        }
        // scopes[0] holds the globals; every other scope is an open block.
        if let problem = SourcePaths.nestingProblem(files: sourceStack.count, blocks: enclosingBlocks + scopes.count - 1) {
            resolution.sources[range] = .tooDeep(reason: problem)
            return
        }
        let file: Source
        do {
            file = try readSource(resolved)
        } catch let error as SourceReadError {
            resolution.sources[range] = .unreadable(text: text, reason: error.reason, lookedFor: error.path)
            return
        } catch {
            resolution.sources[range] = .unreadable(text: text, reason: "\(error)", lookedFor: nil)
            return
        }
        let parsed = Parser.parse(file)
        resolution.sources[range] = .parsed(parsed.program, diagnostics: parsed.diagnostics)
        sourceStack.append(file)
        resolve(parsed.program.statements)
        sourceStack.removeLast()
    }
}

/// What the resolver decided, keyed by source range: commands by their name's range, variable
/// references and assignment targets by their own range, `source` statements by the statement's.
/// Ranges carry their `Source` (compared by identity), so the files a program sources never collide
/// with it. It holds only what is read: the interpreter reads `commands`; the checker reads it all.
struct Resolution {
    var commands: [SourceRange: ResolvedCommand] = [:]
    /// Variable references (a word or `$name`, by the reference's range) that name no variable where
    /// they stand, with the names that do (for "did you mean"); a word that cannot name a variable
    /// (`a/b`) too. A reference not here is bound, or may be bound by a `source` of a computed file
    /// (relaxed checking). Only the checker reads this: the interpreter looks every reference up in
    /// its environment when it runs, which holds the values and, scope for scope, the same names.
    var unboundReferences: [SourceRange: Set<String>] = [:]
    /// Assignment targets (`x = …`, by the name's range) that name no variable, likewise.
    var unboundAssignments: [SourceRange: Set<String>] = [:]
    var sources: [SourceRange: SourcedFile] = [:]
    /// Every name bound at the end of the program (the REPL keeps them between entries).
    var boundNames: Set<String> = []
}

/// What a command statement's first word names, and for a command how the call binds.
struct ResolvedCommand {
    var target: Resolver.Target
    /// `.variable` only because a computed `source` may have bound the name: when the line runs, an
    /// unbound name is an unknown command, as it would be without the assumption.
    var assumedBound = false
    /// For `.command`: the subcommand path, argument match and choice words.
    var call: ResolvedCall?
    /// For `.unknown` and `.undefinedVariablePath`: the names bound there (suggestions).
    var visibleNames: Set<String> = []
}

/// How one call binds its arguments.
indirect enum ResolvedCall {
    /// A command without subcommands: its arguments matched to its parameters (problems included),
    /// and the bare words (by range) that are choices.
    case arguments(ArgumentMatcher, choices: [SourceRange: ChoiceWord])
    /// A parent command given no positional argument.
    case missingSubcommand
    /// A parent command whose subcommand is known before running (a bare word or a string literal
    /// naming it, at `argumentIndex`), and how the rest binds to that subcommand.
    case subcommand(CommandSpec, argumentIndex: Int, call: ResolvedCall)
    /// A parent command whose subcommand is the value of the argument at `argumentIndex`: known
    /// when it runs (then resolved with `Resolver.call`).
    case computedSubcommand(argumentIndex: Int)
}

/// A bare word that is one of its argument's choices; `shadowsVariable`: a variable has its name.
struct ChoiceWord: Equatable {
    var word: String
    var shadowsVariable: Bool
}

/// What a `source` statement's file is, as far as is known before running.
enum SourcedFile {
    /// The path is computed: checked when it runs. `firstRelaxation`: checking was strict before it.
    case computed(firstRelaxation: Bool)
    /// The file (`text`: its path as written) is already being sourced (`chain`: the files, outermost first).
    case cycle(text: String, chain: String)
    /// Nested too deep (`SourcePaths.nestingProblem`: files in files, or blocks around it).
    case tooDeep(reason: String)
    case unreadable(text: String, reason: String, lookedFor: String?)
    /// Read and parsed (parse errors in `diagnostics`), and resolved into the same table.
    case parsed(Program, diagnostics: [Diagnostic])
}
