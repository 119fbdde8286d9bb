// Checker (phase 3 of 4): a pass over the whole script, sourced files and every block included,
// before anything runs, so a typo on line 40 surfaces before a two-hour `train` on line 3.
//
// It first runs the `Resolver` (Resolver.swift), which walks the scopes as they will run (block
// scopes; `let` binds in the innermost block; sourced files share the scope they are sourced into)
// and records what every name is; the checker then reports errors from that record and validates
// every command call against its `CommandSpec` with the same `ArgKind.coerce` the interpreter uses.
// The interpreter runs from the same record (`resolution`). Only what is known before running is
// judged: literal values and bare words; a variable's value is checked when the command runs.
import Foundation

/// What the checker knows about a value before running.
enum StaticValue {
    /// A literal (or list of literals); `bareWords` lists unbound words read as text inside it.
    case known(Value, bareWords: [(String, SourceRange)])
    case unknown

    var value: Value? { if case .known(let v, _) = self { return v } else { return nil } }
}

public final class Checker {
    public let registry: CommandRegistry
    /// How many script arguments `$1…` exist; nil when not known (no checks of `$n`).
    public var scriptArgumentCount: Int?
    /// Reads a sourced file (tests substitute an in-memory file system).
    public var readSource: (String) throws -> Source = { try Source.file(atPath: $0) }
    /// For a file checked as it is sourced at run time: the files being run around it, outermost
    /// first, and the blocks open there, so that nesting limits and cycles count from where it runs.
    var enclosingSources: [Source] = []
    var enclosingBlocks = 0

    /// Names bound before the program (the session's variables; after a check, what it bound).
    var variables: Set<String>
    /// Checking was relaxed by an earlier program's computed `source`.
    var relaxed = false
    /// The resolver's record of the program last checked: what the interpreter runs from.
    private(set) var resolution = Resolution()
    var diagnostics: [Diagnostic] = []
    /// Where each sourced file was sourced from (for the "sourced from here" note).
    var sourcedFrom: [SourceRange] = []

    public init(registry: CommandRegistry, variables: Set<String> = [], scriptArgumentCount: Int? = nil) {
        self.registry = registry
        self.variables = variables
        self.scriptArgumentCount = scriptArgumentCount
    }

    /// Resolves and checks a parsed program; returns errors and warnings in the order found.
    public func check(_ program: Program) -> [Diagnostic] {
        let resolver = Resolver(registry: registry, variables: variables, readSource: readSource)
        resolver.relaxed = relaxed
        resolver.enclosingSources = enclosingSources
        resolver.enclosingBlocks = enclosingBlocks
        resolution = resolver.resolve(program)
        variables = resolution.boundNames
        relaxed = resolver.relaxed
        check(program.statements)
        return diagnostics
    }

    /// Names bound after checking (the REPL keeps them between entries).
    public var boundNames: Set<String> { variables }

    func report(_ diagnostic: Diagnostic) {
        var diagnostic = diagnostic
        // An error inside a sourced file also says where it was sourced from.
        if diagnostic.severity != .note, let from = sourcedFrom.last {
            diagnostic.notes.append(.note("in the file sourced here", at: from))
        }
        diagnostics.append(diagnostic)
    }

    // MARK: What the resolver recorded

    /// Whether the word or `$name` at `range` may name a variable (bound, or possibly bound): the
    /// resolver records only the references that do not.
    func mayBeBound(at range: SourceRange) -> Bool {
        resolution.unboundReferences[range] == nil
    }

    /// The names bound where the unbound reference at `range` stands (suggestions).
    func visibleNames(at range: SourceRange) -> Set<String> {
        resolution.unboundReferences[range] ?? []
    }

    // MARK: Statements

    func check(_ statements: [Statement]) {
        for statement in statements { check(statement) }
    }

    func check(_ statement: Statement) {
        switch statement {
        case .command(let command):
            checkCommand(command, inRightHandSide: false)
        case .expression(let expression):
            _ = checkExpression(expression)
        case .letBinding(_, _, let value, _):
            checkRightHandSide(value)
        case .assignment(let name, let nameRange, let value, _):
            checkRightHandSide(value)
            if let visible = resolution.unboundAssignments[nameRange] {
                report(.error("cannot assign to undefined variable '\(name)'" + Suggestions.didYouMean(name, in: visible.sorted()),
                              at: nameRange, notes: [.note("declare it first with 'let \(name) = …'")]))
            }
        case .forLoop(_, _, let sequence, let body, _):
            if let value = checkExpression(sequence).value, value.listValue == nil {
                report(.error("'for' needs a list to loop over, got \(ArgKind.show(value))", at: sequence.range))
            }
            check(body.statements)
        case .conditional(let branches, let elseBody, _):
            for branch in branches {
                if let value = checkExpression(branch.condition).value, value.boolValue == nil {
                    report(.error("condition must be true or false, got \(ArgKind.show(value))", at: branch.condition.range))
                }
                check(branch.body.statements)
            }
            if let elseBody { check(elseBody.statements) }
        case .source(let path, let range):
            checkSource(path, range: range)
        case .time(let command, _):
            checkCommand(command, inRightHandSide: false)
        }
    }

    func checkRightHandSide(_ value: RightHandSide) {
        switch value {
        case .command(let command): checkCommand(command, inRightHandSide: true)
        case .expression(let expression): _ = checkExpression(expression)
        }
    }

    // MARK: Commands

    func checkCommand(_ command: Command, inRightHandSide: Bool) {
        guard let resolved = resolution.commands[command.nameRange] else { return }
        switch resolved.target {
        case .help:
            checkHelpTopic([(command.name, command.nameRange)])
            return
        case .statementForm:
            // Only reachable as `let x = source …`: the parser reads statement forms itself.
            report(.error("'\(command.name)' is a statement and gives no value", at: command.nameRange))
            return
        case .command(let spec):
            if let call = resolved.call { checkInvocation(command.arguments, spec: spec, call: call, path: [command.name], command: command) }
            return
        case .variable:
            return
        case .undefinedVariablePath:
            report(undefinedVariable(Interpreter.firstSegment(command.name), in: command.name, at: command.nameRange,
                                     visible: resolved.visibleNames))
            return
        case .variableWithArguments:
            var notes: [Diagnostic] = []
            if let first = command.arguments.first, case .integer = first.value, first.range.text.hasPrefix("-") {
                notes.append(.note("to subtract, put a space after '-': '\(command.name) - \(first.range.text.dropFirst())'"))
            } else if let first = command.arguments.first, case .number = first.value, first.range.text.hasPrefix("-") {
                notes.append(.note("to subtract, put a space after '-': '\(command.name) - \(first.range.text.dropFirst())'"))
            }
            report(.error("'\(command.name)' is a variable, not a command", at: command.nameRange, notes: notes))
            return
        case .topicOnly(let spec):
            // A help-only topic such as `let` used as a command.
            report(.error("'\(spec.name)' is not a command; see 'help \(spec.name)'", at: command.nameRange))
            return
        case .unknown:
            break
        }
        let commands = registry.commandNames
        let variableNames = resolved.visibleNames.sorted()
        if inRightHandSide && command.arguments.isEmpty {
            report(.error("'\(command.name)' is neither a command nor a variable"
                          + Suggestions.didYouMean(command.name, in: commands + variableNames), at: command.nameRange))
            return
        }
        var message = "unknown command '\(command.name)'"
        var notes: [Diagnostic] = []
        if let match = Suggestions.closest(to: command.name, in: commands) {
            message += "; did you mean '\(match)'?"
        } else if let match = Suggestions.closest(to: command.name, in: variableNames), command.arguments.isEmpty {
            message += "; did you mean the variable '\(match)'?"
        } else {
            notes.append(.note("type 'help' to list the commands"))
        }
        report(.error(message, at: command.nameRange, notes: notes))
        // Still check the arguments' expressions for undefined variables.
        for argument in command.arguments { _ = staticArgumentValue(argument.value) }
    }

    /// `help a b` / `a?`: the topic must exist (subtopics: subcommands).
    func checkHelpTopic(_ words: [(String, SourceRange)]) {
        guard let (name, range) = words.first else { return }
        guard let spec = registry.spec(named: name) else {
            report(.error("no help for '\(name)'" + Suggestions.didYouMean(name, in: registry.names), at: range,
                          notes: [.note("type 'help' to list the commands")]))
            return
        }
        if words.count > 1 {
            let (sub, subRange) = words[1]
            if spec.subcommand(named: sub) == nil {
                report(.error("'\(name)' has no subcommand '\(sub)'" + Suggestions.didYouMean(sub, in: spec.subcommands.map(\.name)),
                              at: subRange))
            }
        }
    }

    /// Arguments of a call against its spec, as the resolver bound them (recursing into a subcommand).
    func checkInvocation(_ arguments: [Argument], spec: CommandSpec, call: ResolvedCall, path: [String], command: Command) {
        let names = spec.subcommands.map(\.name)
        switch call {
        case .missingSubcommand:
            report(.error("'\(path.joined(separator: " "))' needs a subcommand: \(names.joined(separator: ", "))",
                          at: command.nameRange))
            for argument in arguments { _ = staticArgumentValue(argument.value) }
        case .subcommand(let sub, let index, let subCall):
            var remaining = arguments
            remaining.remove(at: index)
            checkInvocation(remaining, spec: sub, call: subCall, path: path + [sub.name], command: command)
        case .computedSubcommand(let index):
            let first = arguments[index]
            // Known now only when the value is: a literal text (one naming a subcommand was resolved).
            if case .known(.string(let name), _) = staticArgumentValue(first.value), spec.subcommand(named: name) == nil {
                report(.error("'\(path.joined(separator: " "))' has no subcommand '\(name)'" + Suggestions.didYouMean(name, in: names),
                              at: first.value.range, notes: [.note("subcommands: \(names.joined(separator: ", "))")]))
                for argument in arguments where argument.range.start != first.range.start {
                    _ = staticArgumentValue(argument.value)
                }
                return
            }
            // Chosen at run time: only the keys can be judged now.
            let allKeys = Set(spec.subcommands.flatMap { $0.namedArguments.map(\.name) })
            for argument in arguments where argument.label != nil && !allKeys.contains(argument.label!) {
                report(.error("unknown argument '\(argument.label!)' for '\(path.joined(separator: " "))'"
                              + Suggestions.didYouMean(argument.label!, in: allKeys.sorted()), at: argument.labelRange))
            }
            for argument in arguments { _ = staticArgumentValue(argument.value) }
        case .arguments(let match, let choices):
            for problem in match.problems { report(problem) }
            if path == ["help"] {
                // Topics are checked as names, not as values.
                var words: [(String, SourceRange)] = []
                for (_, argument) in match.matched {
                    if case .known(.string(let text), _) = staticArgumentValue(argument.value) {
                        words.append((text, argument.value.range))
                    } else {
                        return
                    }
                }
                checkHelpTopic(words)
                return
            }
            for (argSpec, argument) in match.matched {
                checkValue(argument.value, against: argSpec, choices: choices)
            }
            if let variadic = spec.variadic {
                for argument in match.rest { checkValue(argument.value, against: variadic, choices: choices) }
            } else {
                for argument in match.rest { _ = staticArgumentValue(argument.value) }
            }
        }
    }

    /// One argument value against its spec: literal type, range and choice; undefined variables.
    func checkValue(_ expression: ExpressionNode, against argSpec: ArgSpec, choices: [SourceRange: ChoiceWord]) {
        // `let fqat = …` then `train fqat`: the choice word wins over the variable (as at run time); say so.
        if let choice = choices[expression.range] {
            if choice.shadowsVariable {
                report(.warning("'\(choice.word)' is the choice '\(choice.word)' here, not the variable", at: expression.range,
                                notes: [.note("write $\(choice.word) for the variable")]))
            }
            return
        }
        let staticValue = staticArgumentValue(expression)
        guard case .known(let value, let bareWords) = staticValue else { return }
        do {
            _ = try argSpec.kind.coerce(value)
        } catch let problem as ArgumentProblem {
            var notes = problem.notes.map { Diagnostic.note($0) }
            if let (word, range) = bareWords.first, !argSpec.kind.acceptsText {
                let hint = Suggestions.closest(to: Interpreter.firstSegment(word), in: visibleNames(at: range).sorted())
                notes.append(.note("'\(word)' is not a variable" + (hint.map { "; did you mean '\($0)'?" } ?? "")))
            }
            report(.error("argument '\(argSpec.name)' \(problem.message)", at: expression.range, notes: notes))
            return
        } catch {
            preconditionFailure("coerce threw \(error)")
        }
        // A word meant as a variable but misspelt silently becomes text where text is accepted.
        if !argSpec.kind.takesWords {
            for (word, range) in bareWords {
                let first = Interpreter.firstSegment(word)
                guard Interpreter.isVariablePath(word),
                      let match = Suggestions.closest(to: first, in: visibleNames(at: range).sorted()) else { continue }
                report(.warning("'\(word)' is not a variable, so it is read as the text \"\(word)\"", at: range,
                                notes: [.note("did you mean '\(match)'? (quote the text to silence this warning)")]))
            }
        }
    }

    // MARK: Expressions

    /// A value where an argument stands: unbound bare words are text.
    func staticArgumentValue(_ expression: ExpressionNode) -> StaticValue {
        switch expression {
        case .word(let word, let range):
            if Interpreter.isVariablePath(word), mayBeBound(at: range) { return .unknown }
            return .known(.string(word), bareWords: [(word, range)])
        case .list(let items, _):
            var values: [Value] = []
            var words: [(String, SourceRange)] = []
            var allKnown = true
            for item in items {
                if case .known(let value, let itemWords) = staticArgumentValue(item) {
                    values.append(value)
                    words += itemWords
                } else {
                    allKnown = false
                }
            }
            return allKnown ? .known(.list(values), bareWords: words) : .unknown
        default:
            return checkExpression(expression)
        }
    }

    /// An expression where only values stand: every word must be a bound variable.
    @discardableResult
    func checkExpression(_ expression: ExpressionNode) -> StaticValue {
        switch expression {
        case .integer(let i, _): return .known(.int(i), bareWords: [])
        case .number(let d, _): return .known(.number(d), bareWords: [])
        case .string(let s, _): return .known(.string(s), bareWords: [])
        case .bool(let b, _): return .known(.bool(b), bareWords: [])
        case .word(let name, let range), .variable(let name, let range):
            checkVariablePath(name, at: range)
            return .unknown
        case .scriptArgument(let index, let range):
            if let count = scriptArgumentCount, index > count {
                report(.error("script argument $\(index) is not given (the script got \(count) argument\(count == 1 ? "" : "s"))",
                              at: range))
            }
            return .unknown
        case .list(let items, _):
            let values = items.map { checkExpression($0).value }
            return values.contains { $0 == nil } ? .unknown : .known(.list(values.map { $0! }), bareWords: [])
        case .unary(let op, let operand, _):
            let value = checkExpression(operand).value
            switch (op, value) {
            case (.negate, .int(let i)?):
                guard i != Int.min else {
                    report(.error("integer overflow: -(\(i)) is beyond the largest integer \(Int.max)", at: expression.range))
                    return .unknown
                }
                return .known(.int(-i), bareWords: [])
            case (.negate, .number(let d)?): return .known(.number(-d), bareWords: [])
            default: return .unknown
            }
        case .binary(_, let left, let right, _):
            checkExpression(left)
            checkExpression(right)
            return .unknown
        case .field(let base, _, _):
            checkExpression(base)
            return .unknown
        case .index(let base, let index, _):
            checkExpression(base)
            checkExpression(index)
            return .unknown
        case .invalid:
            return .unknown
        }
    }

    func checkVariablePath(_ name: String, at range: SourceRange) {
        guard Interpreter.isVariablePath(name) else {
            let visible = visibleNames(at: range)
            let operatorHint = Checker.operatorHint(name, bound: { visible.contains($0) })
            report(.error("'\(name)' is not a variable name", at: range,
                          notes: [.note(operatorHint ?? "to use it as text, quote it: \"\(name)\"")]))
            return
        }
        if mayBeBound(at: range) { return }
        report(undefinedVariable(Interpreter.firstSegment(name), in: name, at: range, visible: visibleNames(at: range)))
    }

    /// `visible`: the names bound where the word stands.
    func undefinedVariable(_ first: String, in word: String, at range: SourceRange, visible: Set<String>) -> Diagnostic {
        var message = "undefined variable '\(first)'"
        var notes: [Diagnostic] = []
        if let match = Suggestions.closest(to: first, in: visible.sorted()) {
            message += "; did you mean '\(match)'?"
        } else if let hint = Checker.operatorHint(word, bound: { visible.contains($0) }) {
            notes.append(.note(hint))
        } else {
            notes.append(.note("to use it as text, quote it: \"\(word)\""))
        }
        return .error(message, at: range, notes: notes)
    }

    /// `n-m`, `n*2`, `a/b` glued into one word although `n` is a variable: suggest spaces.
    static func operatorHint(_ word: String, bound: (String) -> Bool) -> String? {
        guard let cut = word.firstIndex(where: { "-*/".contains($0) }) else { return nil }
        let prefix = String(word[..<cut])
        guard !prefix.isEmpty, bound(Interpreter.firstSegment(prefix)) else { return nil }
        let op = word[cut]
        let rest = word[word.index(after: cut)...]
        return "to compute, put spaces around '\(op)': '\(prefix) \(op) \(rest)'"
    }

    // MARK: source

    /// A `source` statement, from what the resolver found: a computed path (checking is relaxed
    /// after it), a cycle, a file too deep or unreadable, or the file's own statements.
    func checkSource(_ path: ExpressionNode, range: SourceRange) {
        _ = staticArgumentValue(path)
        switch resolution.sources[range] {
        case .computed(let firstRelaxation)?:
            if firstRelaxation {
                report(.warning("the file of this 'source' is computed, so it is checked only when it runs", at: path.range,
                                notes: [.note("undefined-variable checks are relaxed after this line")]))
            }
        case .cycle(let text, let chain)?:
            report(.error("'\(text)' is already being sourced (cycle: \(chain))", at: path.range))
        case .tooDeep(let reason)?:
            report(.error(reason, at: path.range))
        case .unreadable(let text, let reason, let lookedFor)?:
            report(.error("cannot source '\(text)': \(reason)", at: path.range,
                          notes: lookedFor.map { [.note("looked for '\($0)'")] } ?? []))
        case .parsed(let program, let parseDiagnostics)?:
            sourcedFrom.append(range)
            for diagnostic in parseDiagnostics { report(diagnostic) }
            check(program.statements)
            sourcedFrom.removeLast()
        case nil:
            break
        }
    }
}

/// Pairs a call's arguments with a spec's parameters (shared by the checker and the interpreter).
struct ArgumentMatcher {
    var matched: [(ArgSpec, Argument)] = []
    /// Values for the variadic positional (or extra values already reported as problems).
    var rest: [Argument] = []
    var problems: [Diagnostic] = []

    static func match(_ arguments: [Argument], spec: CommandSpec, path: [String], commandRange: SourceRange) -> ArgumentMatcher {
        var result = ArgumentMatcher()
        let name = path.joined(separator: " ")
        var given: [String: SourceRange] = [:]
        var nextPositional = 0
        func take(_ argSpec: ArgSpec, _ argument: Argument) {
            if let first = given[argSpec.name] {
                result.problems.append(.error("argument '\(argSpec.name)' is given twice", at: argument.range,
                                              notes: [.note("first given here", at: first)]))
                return
            }
            given[argSpec.name] = argument.range
            result.matched.append((argSpec, argument))
        }
        for argument in arguments {
            if let label = argument.label {
                guard let argSpec = spec.namedArguments.first(where: { $0.name == label }) else {
                    let names = spec.namedArguments.map(\.name)
                    var notes: [Diagnostic] = []
                    let suggestion = Suggestions.closest(to: label, in: names)
                    if suggestion == nil {
                        notes.append(.note(names.isEmpty ? "'\(name)' takes no named arguments"
                                                         : "arguments of '\(name)': \(names.joined(separator: ", "))"))
                    }
                    result.problems.append(.error("unknown argument '\(label)' for '\(name)'"
                                                  + (suggestion.map { "; did you mean '\($0)'?" } ?? ""),
                                                  at: argument.labelRange ?? argument.range, notes: notes))
                    result.rest.append(argument)
                    continue
                }
                take(argSpec, argument)
            } else if nextPositional < spec.positionals.count {
                take(spec.positionals[nextPositional], argument)
                nextPositional += 1
            } else if spec.variadic != nil {
                result.rest.append(argument)
            } else {
                let count = spec.positionals.count
                var message = count == 0 ? "'\(name)' takes no positional arguments"
                                         : "'\(name)' takes \(count) positional argument\(count == 1 ? "" : "s"); this one is extra"
                if case .word(let word, _) = argument.value, spec.keywords.contains(where: { $0.name == word }) {
                    message += "; did you mean '\(word)=…'?"
                }
                result.problems.append(.error(message, at: argument.range,
                                              notes: [.note("usage: \(Help.usage(spec, path: path))")]))
                result.rest.append(argument)
            }
        }
        for argSpec in spec.namedArguments where argSpec.required && given[argSpec.name] == nil {
            result.problems.append(.error("missing required argument '\(argSpec.name)' for '\(name)'", at: commandRange,
                                          notes: [.note("usage: \(Help.usage(spec, path: path))")]))
        }
        return result
    }
}

/// Where `source "x.fqs"` looks: relative to the directory of the file that sources it (like C's
/// `#include "…"`), the working directory for the REPL and `-c`; `~/` is the home directory.
public enum SourcePaths {
    /// Files sourced one inside another.
    public static let maximumDepth = 64
    /// Blocks (`if`, `for`) open around a `source`, counting those of the files that source it. Each
    /// file and each block is a level of recursion in the parser, resolver, checker and interpreter;
    /// without this a chain of 64 files, each sourcing the next inside 200 blocks (which one file
    /// may have), overflows the stack (a crash, not an error).
    public static let maximumEnclosingBlocks = 100

    /// Why a `source` cannot open another file where `files` files are open (the script counts) and
    /// `blocks` blocks are open around it; nil when it can.
    public static func nestingProblem(files: Int, blocks: Int) -> String? {
        if files >= maximumDepth { return "'source' nested more than \(maximumDepth) deep (does a file source itself?)" }
        if blocks > maximumEnclosingBlocks {
            return "'source' inside \(blocks) blocks (if/for), counting those of the files that source it; "
                + "the limit is \(maximumEnclosingBlocks): source the file from fewer levels of blocks"
        }
        return nil
    }

    public static func resolve(_ path: String, from source: Source?) -> String {
        var path = path
        path = HomePath.expand(path)
        if !path.hasPrefix("/"), let directory = source?.directory {
            path = directory == "." ? path : (directory as NSString).appendingPathComponent(path)
        }
        return path
    }

    /// An absolute, normalised form for comparing paths.
    public static func standardize(_ path: String) -> String {
        let absolute = path.hasPrefix("/") ? path : (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(path)
        return (absolute as NSString).standardizingPath
    }
}
