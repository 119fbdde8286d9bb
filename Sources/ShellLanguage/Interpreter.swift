// Interpreter (phase 4 of 4): evaluates a checked program with a `switch` over the AST, reading what
// each command is and how its call binds from the resolver's record (`Resolution`, Resolver.swift),
// calls `CommandSpec.run` with coerced arguments, binds results, and turns every failure into a located
// diagnostic and an exit status (0 ok, 65 static error, 66 unreadable script, 70 run-time error,
// 130 interrupted, `exit N` -> N).
import Foundation

/// Variables in nested block scopes; the outermost scope is the session's globals.
public final class Environment {
    var scopes: [[String: Value]] = [[:]]

    public init() {}

    /// The innermost binding of `name`.
    public func lookup(_ name: String) -> Value? {
        for scope in scopes.reversed() { if let value = scope[name] { return value } }
        return nil
    }

    /// Binds in the innermost scope (replacing a binding of the same name there).
    public func define(_ name: String, _ value: Value) { scopes[scopes.count - 1][name] = value }

    /// Rebinds the innermost existing binding; false if there is none.
    @discardableResult
    public func assign(_ name: String, _ value: Value) -> Bool {
        for index in scopes.indices.reversed() where scopes[index][name] != nil {
            scopes[index][name] = value
            return true
        }
        return false
    }

    /// Every bound name.
    public var names: Set<String> { scopes.reduce(into: Set<String>()) { $0.formUnion($1.keys) } }
    /// The global bindings (what a saved session would keep).
    public var globals: [String: Value] { scopes[0] }

    func push() { scopes.append([:]) }
    func pop() { scopes.removeLast() }
}

/// The script's command line: `$0` (name), `$1…`/`args` (positional) and `--name=value` options,
/// which become variables. Text reads as the literal it looks like (`4` int, `1e-3` number,
/// `true`/`false` bool, else string).
public struct ScriptArguments {
    public var scriptName: String
    public var positional: [Value]
    public var options: [(name: String, value: Value)]

    public init(scriptName: String = "", positional: [Value] = [], options: [(name: String, value: Value)] = []) {
        self.scriptName = scriptName
        self.positional = positional
        self.options = options
    }

    /// Why options cannot become variables: a keyword (`--let=1`) or the reserved `args` (`--args=7`
    /// would replace the positional arguments).
    public func optionProblems() -> [String] {
        options.compactMap { option in
            let name = option.name
            guard Keyword(rawValue: name) != nil || name == "args" else { return nil }
            return "option '--\(name)' names a reserved word; a script option cannot be called '\(name)' (choose another name)"
        }
    }

    /// `--name=value` -> option; `--flag` -> true; `--no-flag` -> false; `--` ends options; anything
    /// else (including `-1`) is positional.
    public static func parse(scriptName: String, _ argv: [String]) -> ScriptArguments {
        var result = ScriptArguments(scriptName: scriptName)
        var optionsEnded = false
        for argument in argv {
            if !optionsEnded, argument == "--" {
                optionsEnded = true
            } else if !optionsEnded, argument.hasPrefix("--"), argument.count > 2 {
                let body = argument.dropFirst(2)
                if let equals = body.firstIndex(of: "=") {
                    result.options.append((String(body[..<equals]), Value.parseLiteral(String(body[body.index(after: equals)...]))))
                } else if body.hasPrefix("no-") {
                    result.options.append((String(body.dropFirst(3)), .bool(false)))
                } else {
                    result.options.append((String(body), .bool(true)))
                }
            } else {
                result.positional.append(Value.parseLiteral(argument))
            }
        }
        return result
    }
}

/// The outcome of running a script or one REPL entry.
public struct RunResult {
    public var status: Int32
    /// Every diagnostic reported (already written to the error channel).
    public var diagnostics: [Diagnostic]
    /// `exit` ran: a REPL should end with `status`.
    public var exitRequested: Bool
    public var errors: [Diagnostic] { diagnostics.filter { $0.severity == .error } }
}

public final class Interpreter {
    public let registry: CommandRegistry
    public var output: Output
    public let interrupt: Interrupt
    public let environment = Environment()
    public private(set) var scriptArguments = ScriptArguments()
    /// Show the value of a bare command or expression statement (`eval` prints its record). Results
    /// bound with `let` are never shown.
    public var echoResults = true
    /// Whether the results of command statements are echoed too (engine commands that render their
    /// own output turn this off; expression statements and a lone variable name still echo).
    public var echoCommandResults = true
    /// Called with the source text of each top-level statement of a script before it runs
    /// (notebook transcripts).
    public var topLevelStatementWillRun: ((String) -> Void)?
    /// Seconds on a monotonic clock (`time`); tests substitute a fixed clock.
    public var clock: () -> Double = { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
    /// Entries for the `history` command (the REPL installs its line reader's history).
    public var historyProvider: () -> [String] = { [] }
    /// Reads a sourced file (tests substitute an in-memory file system).
    public var readSource: (String) throws -> Source = { try Source.file(atPath: $0) }

    /// Files being run, outermost first (relative `source` paths; nesting limit).
    var sourceStack: [Source] = []
    /// The resolver's record of the program running (and of a sourced file while it runs): what
    /// each command's first word names, how its call binds, which words are choices. Set from the
    /// checker's pass before a program runs; never recomputed while it runs.
    var resolution = Resolution()

    public init(registry: CommandRegistry, output: Output = StandardOutput(), interrupt: Interrupt = .shared) {
        self.registry = registry
        self.output = output
        self.interrupt = interrupt
        environment.define("args", .list([]))
    }

    // MARK: Entry points

    /// Binds `$0`, `$1…`, `args` and one variable per `--name=value` option.
    public func bind(_ arguments: ScriptArguments) {
        scriptArguments = arguments
        environment.define("args", .list(arguments.positional))
        for option in arguments.options { environment.define(option.name, option.value) }
    }

    /// Reads, checks and runs a script file.
    public func runScript(atPath path: String, arguments: ScriptArguments) -> RunResult {
        let source: Source
        do {
            source = try Source.file(atPath: path)
        } catch {
            let diagnostic = Diagnostic.error("\(error)", at: nil)
            output.write(diagnostic.rendered(), to: .error)
            return RunResult(status: ExitStatus.noInput, diagnostics: [diagnostic], exitRequested: false)
        }
        return runScript(source, arguments: arguments)
    }

    /// Binds the arguments, then checks the whole script and runs it if it has no errors. An option
    /// whose name is a keyword, `args`, or not a variable name is refused before anything runs.
    public func runScript(_ source: Source, arguments: ScriptArguments) -> RunResult {
        let problems = arguments.optionProblems()
        if !problems.isEmpty {
            let diagnostics = problems.map { Diagnostic.error($0, at: nil) }
            for d in diagnostics { output.write(d.rendered(), to: .error) }
            return RunResult(status: ExitStatus.staticError, diagnostics: diagnostics, exitRequested: false)
        }
        bind(arguments)
        return run(source)
    }

    /// Parses and checks without running (`fqat-shell --check`); diagnostics are not written.
    public func check(_ source: Source) -> [Diagnostic] {
        let parsed = Parser.parse(source)
        return Diagnostic.sorted(parsed.diagnostics + makeChecker().check(parsed.program), main: source)
    }

    /// Parses, checks (against the variables bound now) and runs in the global scope. Every
    /// diagnostic is written to the error channel; variables bound before an error stay bound.
    @discardableResult
    public func run(_ source: Source) -> RunResult {
        let parsed = Parser.parse(source)
        let checker = makeChecker()
        let diagnostics = Diagnostic.sorted(parsed.diagnostics + checker.check(parsed.program), main: source)
        for diagnostic in diagnostics { output.write(diagnostic.rendered(), to: .error) }
        if diagnostics.contains(where: { $0.severity == .error }) {
            return RunResult(status: ExitStatus.staticError, diagnostics: diagnostics, exitRequested: false)
        }
        // A command may itself run a script (replaying a saved session): restore the outer stack
        // and the outer program's resolution.
        let outerStack = sourceStack, outerResolution = resolution
        sourceStack = [source]
        resolution = checker.resolution
        defer { sourceStack = outerStack; resolution = outerResolution }
        do {
            for statement in parsed.program.statements {
                try interrupt.check()
                topLevelStatementWillRun?(statement.range.text)
                try execute(statement)
            }
            return RunResult(status: ExitStatus.success, diagnostics: diagnostics, exitRequested: false)
        } catch let request as ExitRequest {
            return RunResult(status: request.status, diagnostics: diagnostics, exitRequested: true)
        } catch let error as RuntimeError {
            output.write(error.diagnostic.rendered(), to: .error)
            return RunResult(status: ExitStatus.runtimeError, diagnostics: diagnostics + [error.diagnostic], exitRequested: false)
        } catch let list as DiagnosticList {
            for diagnostic in list.diagnostics { output.write(diagnostic.rendered(), to: .error) }
            return RunResult(status: ExitStatus.staticError, diagnostics: diagnostics + list.diagnostics, exitRequested: false)
        } catch is Interrupted {
            interrupt.clear()
            output.errorLine("interrupted")
            return RunResult(status: ExitStatus.interrupted, diagnostics: diagnostics, exitRequested: false)
        } catch {
            preconditionFailure("unexpected error escaped the interpreter: \(error)")
        }
    }

    func makeChecker() -> Checker {
        let checker = Checker(registry: registry, variables: environment.names,
                              scriptArgumentCount: scriptArguments.positional.count)
        checker.readSource = readSource
        return checker
    }

    /// Runs a command from Swift (the integrator's `-c`, saved-session replay, tests) with values
    /// instead of source text; the result is returned, not shown.
    public func call(_ name: String, _ positional: [Value] = [], _ keywords: [(String, Value)] = []) throws -> Value {
        let text = ([name] + positional.map(\.description) + keywords.map { "\($0.0)=\($0.1.description)" }).joined(separator: " ")
        let source = Source(name: "<call>", text: text)
        let parsed = Parser.parse(source)
        let checker = makeChecker()
        let problems = parsed.diagnostics + checker.check(parsed.program)
        if problems.contains(where: { $0.severity == .error }) { throw DiagnosticList(problems) }
        guard case .command(let command)? = parsed.program.statements.first else { throw DiagnosticList(problems) }
        let outerResolution = resolution
        resolution = checker.resolution
        defer { resolution = outerResolution }
        return try executeCommand(command)
    }

    // MARK: Statements

    func execute(_ statements: [Statement]) throws {
        for statement in statements {
            try interrupt.check()
            try execute(statement)
        }
    }

    func execute(_ statement: Statement) throws {
        switch statement {
        case .command(let command):
            let value = try executeCommand(command)
            // A lone variable name (`r`, `r.ood`) is read like an expression statement: always shown.
            if echoCommandResults || readsVariable(command) { show(value) }
        case .expression(let expression):
            show(try evaluate(expression, argumentContext: false))
        case .letBinding(let name, _, let value, _):
            environment.define(name, try evaluate(value))
        case .assignment(let name, let nameRange, let value, _):
            let result = try evaluate(value)
            if !environment.assign(name, result) {
                throw RuntimeError("cannot assign to undefined variable '\(name)'", at: nameRange)
            }
        case .forLoop(let variable, _, let sequence, let body, _):
            let value = try evaluate(sequence, argumentContext: false)
            guard let items = value.listValue else {
                throw RuntimeError("'for' needs a list to loop over, got \(ArgKind.show(value))", at: sequence.range)
            }
            for item in items {
                try interrupt.check()
                try executeBlock(body, binding: (variable, item))
            }
        case .conditional(let branches, let elseBody, _):
            for branch in branches {
                let value = try evaluate(branch.condition, argumentContext: false)
                guard let condition = value.boolValue else {
                    throw RuntimeError("condition must be true or false, got \(ArgKind.show(value))", at: branch.condition.range)
                }
                if condition {
                    try executeBlock(branch.body, binding: nil)
                    return
                }
            }
            if let elseBody { try executeBlock(elseBody, binding: nil) }
        case .source(let path, _):
            try executeSource(path)
        case .time(let command, _):
            let start = clock()
            let value = try executeCommand(command)
            let elapsed = clock() - start
            if echoCommandResults { show(value) }
            output.line("time: " + Interpreter.formatDuration(elapsed))
        }
    }

    /// Whether the resolver found the command statement to be a lone variable name.
    func readsVariable(_ command: Command) -> Bool {
        if case .variable? = resolution.commands[command.nameRange]?.target { return true }
        return false
    }

    func show(_ value: Value) {
        if echoResults, value != .none { output.line(value.displayString) }
    }

    func executeBlock(_ block: Block, binding: (String, Value)?) throws {
        environment.push()
        defer { environment.pop() }
        if let (name, value) = binding { environment.define(name, value) }
        try execute(block.statements)
    }

    func evaluate(_ value: RightHandSide) throws -> Value {
        switch value {
        case .command(let command): return try executeCommand(command)
        case .expression(let expression): return try evaluate(expression, argumentContext: false)
        }
    }

    func executeSource(_ pathExpression: ExpressionNode) throws {
        let value = try evaluate(pathExpression, argumentContext: true)
        let text: String
        do {
            text = try ArgKind.path.coerce(value).stringValue ?? ""
        } catch let problem as ArgumentProblem {
            throw RuntimeError("'source' \(problem.message)", at: pathExpression.range)
        }
        if let problem = SourcePaths.nestingProblem(files: sourceStack.count, blocks: environment.scopes.count - 1) {
            throw RuntimeError(problem, at: pathExpression.range)
        }
        let file: Source
        do {
            file = try readSource(SourcePaths.resolve(text, from: sourceStack.last))
        } catch let error as SourceReadError {
            throw RuntimeError("cannot source '\(text)': \(error.reason)", at: pathExpression.range,
                               notes: [.note("looked for '\(error.path)'")])
        } catch {
            throw RuntimeError("cannot source '\(text)': \(error)", at: pathExpression.range)
        }
        let parsed = Parser.parse(file)
        let checker = makeChecker()
        checker.enclosingSources = sourceStack
        checker.enclosingBlocks = environment.scopes.count - 1
        let errors = Diagnostic.capped((parsed.diagnostics + checker.check(parsed.program)).filter { $0.severity == .error })
        if !errors.isEmpty { throw DiagnosticList(errors) }
        let outerResolution = resolution
        sourceStack.append(file)
        resolution = checker.resolution
        defer { sourceStack.removeLast(); resolution = outerResolution }
        try execute(parsed.program.statements)
    }

    // MARK: Commands

    func executeCommand(_ command: Command) throws -> Value {
        // What the name is was decided by the resolver before the program ran; it is not decided again.
        guard let resolved = resolution.commands[command.nameRange] else {
            throw RuntimeError("internal error: '\(command.name)' was not resolved before it ran; please report this", at: command.nameRange)
        }
        switch resolved.target {
        case .help:
            output.write(try helpText([command.name], at: command.nameRange), to: .standard)
            return .none
        case .command(let spec):
            guard let call = resolved.call else {
                throw RuntimeError("internal error: the call of '\(command.name)' was not resolved; please report this", at: command.nameRange)
            }
            return try invoke(spec, call: call, path: [command.name], arguments: command.arguments, command: command)
        case .variable:
            // Assumed only because a computed `source` might bind it: unbound now, it is no command either.
            if resolved.assumedBound, environment.lookup(Interpreter.firstSegment(command.name)) == nil {
                throw RuntimeError("unknown command '\(command.name)'", at: command.nameRange)
            }
            return try evaluate(.word(command.name, command.nameRange), argumentContext: false)
        case .statementForm:
            throw RuntimeError("'\(command.name)' is a statement and gives no value", at: command.nameRange)
        case .variableWithArguments:
            throw RuntimeError("'\(command.name)' is a variable, not a command", at: command.nameRange)
        case .topicOnly(let spec):
            throw RuntimeError("'\(spec.name)' is not a command; see 'help \(spec.name)'", at: command.nameRange)
        case .undefinedVariablePath, .unknown:
            throw RuntimeError("unknown command '\(command.name)'", at: command.nameRange)
        }
    }

    func helpText(_ topic: [String], at range: SourceRange?) throws -> String {
        guard let text = Help.text(for: topic, in: registry) else {
            throw RuntimeError("no help for '\(topic.joined(separator: " "))'"
                               + Suggestions.didYouMean(topic[0], in: registry.names), at: range)
        }
        return text
    }

    /// Runs a call as the resolver bound it: down the subcommand path to the matched arguments.
    func invoke(_ spec: CommandSpec, call: ResolvedCall, path: [String], arguments: [Argument], command: Command) throws -> Value {
        let name = path.joined(separator: " ")
        let match: ArgumentMatcher
        let choices: [SourceRange: ChoiceWord]
        switch call {
        case .missingSubcommand:
            throw RuntimeError("'\(name)' needs a subcommand: \(spec.subcommands.map(\.name).joined(separator: ", "))",
                               at: command.nameRange)
        case .subcommand(let sub, let index, let subCall):
            var remaining = arguments
            remaining.remove(at: index)
            return try invoke(sub, call: subCall, path: path + [sub.name], arguments: remaining, command: command)
        case .computedSubcommand(let index):
            // Named by a value known only now: resolved now, by the same rules.
            let first = arguments[index]
            let chosen = try evaluate(first.value, argumentContext: true)
            guard let subName = chosen.stringValue, let sub = spec.subcommand(named: subName) else {
                throw RuntimeError("'\(name)' has no subcommand \(ArgKind.show(chosen))"
                                   + Suggestions.didYouMean(chosen.stringValue ?? "", in: spec.subcommands.map(\.name)),
                                   at: first.value.range)
            }
            var remaining = arguments
            remaining.remove(at: index)
            let subCall = Resolver.call(of: sub, arguments: remaining, path: path + [subName], commandRange: command.nameRange,
                                        isBound: { environment.lookup($0) != nil })
            return try invoke(sub, call: subCall, path: path + [subName], arguments: remaining, command: command)
        case .arguments(let matched, let choiceWords):
            (match, choices) = (matched, choiceWords)
        }
        if let problem = match.problems.first {
            throw RuntimeError(problem.message, at: problem.range, notes: problem.notes)
        }
        var values: [String: Value] = [:]
        var ranges: [String: SourceRange] = [:]
        for (argSpec, argument) in match.matched {
            values[argSpec.name] = try coerce(argument.value, to: argSpec, choices: choices)
            ranges[argSpec.name] = argument.range
        }
        for argSpec in spec.namedArguments where values[argSpec.name] == nil {
            if let defaultValue = argSpec.defaultValue { values[argSpec.name] = try? argSpec.kind.coerce(defaultValue) }
        }
        var rest: [Value] = []
        if let variadic = spec.variadic {
            rest = try match.rest.map { try coerce($0.value, to: variadic, choices: choices) }
        }
        guard let run = spec.run else {
            throw RuntimeError("'\(name)' cannot run: it has no implementation", at: command.nameRange)
        }
        let invocation = Invocation(spec: spec, commandPath: path, arguments: values, rest: rest, range: command.range,
                                    argumentRanges: ranges, interpreter: self)
        do {
            return try run(invocation)
        } catch let error as Interrupted {
            throw error
        } catch let error as ExitRequest {
            throw error
        } catch let error as RuntimeError {
            throw error
        } catch let error as DiagnosticList {
            throw error
        } catch let error as CommandError {
            let range = error.argument.flatMap { ranges[$0] } ?? command.range
            throw RuntimeError(error.message, at: range, notes: error.notes.map { .note($0) })
        } catch {
            throw RuntimeError(Interpreter.describe(error), at: command.range)
        }
    }

    /// An argument's value for its parameter; a bare word the resolver found to be a choice is that choice.
    func coerce(_ expression: ExpressionNode, to argSpec: ArgSpec, choices: [SourceRange: ChoiceWord]) throws -> Value {
        if let choice = choices[expression.range] { return .string(choice.word) }
        let value = try evaluate(expression, argumentContext: true)
        do {
            return try argSpec.kind.coerce(value)
        } catch let problem as ArgumentProblem {
            throw RuntimeError("argument '\(argSpec.name)' \(problem.message)", at: expression.range,
                               notes: problem.notes.map { .note($0) })
        }
    }

    /// The text of a Swift error: `CustomStringConvertible` or `LocalizedError` if it has one.
    static func describe(_ error: Error) -> String {
        if let localized = error as? LocalizedError, let text = localized.errorDescription { return text }
        return String(describing: error)
    }

    static func formatDuration(_ seconds: Double) -> String {
        if seconds < 60 { return String(format: "%.3f s", seconds) }
        let minutes = Int(seconds / 60)
        return String(format: "%d min %.1f s (%.1f s)", minutes, seconds - Double(minutes * 60), seconds)
    }

    // MARK: Expressions

    /// A word can name a variable path (`r`, `r.ood`) if it has no `/` or `*`.
    static func isVariablePath(_ word: String) -> Bool { !word.contains("/") && !word.contains("*") }
    static func firstSegment(_ word: String) -> String {
        word.firstIndex(of: ".").map { String(word[..<$0]) } ?? word
    }

    /// In `argumentContext` an unbound bare word is its own text; elsewhere it must be a variable.
    func evaluate(_ expression: ExpressionNode, argumentContext: Bool) throws -> Value {
        switch expression {
        case .integer(let i, _): return .int(i)
        case .number(let d, _): return .number(d)
        case .string(let s, _): return .string(s)
        case .bool(let b, _): return .bool(b)
        case .word(let word, let range):
            if Interpreter.isVariablePath(word), let base = environment.lookup(Interpreter.firstSegment(word)) {
                return try access(base, path: word.split(separator: ".").dropFirst().map(String.init), range: range)
            }
            if argumentContext { return .string(word) }
            throw RuntimeError("undefined variable '\(Interpreter.firstSegment(word))'", at: range)
        case .variable(let name, let range):
            guard let base = environment.lookup(Interpreter.firstSegment(name)) else {
                throw RuntimeError("undefined variable '\(Interpreter.firstSegment(name))'", at: range)
            }
            return try access(base, path: name.split(separator: ".").dropFirst().map(String.init), range: range)
        case .scriptArgument(let index, let range):
            if index == 0 { return .string(scriptArguments.scriptName) }
            guard index <= scriptArguments.positional.count else {
                throw RuntimeError("script argument $\(index) is not given (the script got \(scriptArguments.positional.count))", at: range)
            }
            return scriptArguments.positional[index - 1]
        case .list(let items, let range):
            let result = Value.list(try items.map { try evaluate($0, argumentContext: argumentContext) })
            try Interpreter.checkSize(result, at: range)
            return result
        case .unary(let op, let operand, let range):
            let value = try evaluate(operand, argumentContext: false)
            switch (op, value) {
            case (.negate, .int(let i)):
                guard i != Int.min else { throw RuntimeError("integer overflow", at: range) }
                return .int(-i)
            case (.negate, .number(let d)): return .number(-d)
            case (.not, .bool(let b)): return .bool(!b)
            case (.negate, _): throw RuntimeError("cannot negate \(ArgKind.show(value))", at: range)
            case (.not, _): throw RuntimeError("'not' needs true or false, got \(ArgKind.show(value))", at: range)
            }
        case .binary(let op, let left, let right, let range):
            if op == .and || op == .or {
                let l = try evaluate(left, argumentContext: false)
                guard let lb = l.boolValue else {
                    throw RuntimeError("'\(op.rawValue)' needs true or false, got \(ArgKind.show(l))", at: left.range)
                }
                if op == .and && !lb { return .bool(false) }
                if op == .or && lb { return .bool(true) }
                let r = try evaluate(right, argumentContext: false)
                guard let rb = r.boolValue else {
                    throw RuntimeError("'\(op.rawValue)' needs true or false, got \(ArgKind.show(r))", at: right.range)
                }
                return .bool(rb)
            }
            let l = try evaluate(left, argumentContext: false), r = try evaluate(right, argumentContext: false)
            return try Interpreter.apply(op, l, r, range: range)
        case .field(let base, let name, let range):
            return try access(try evaluate(base, argumentContext: false), path: [name], range: range)
        case .index(let base, let index, let range):
            let container = try evaluate(base, argumentContext: false)
            let key = try evaluate(index, argumentContext: false)
            switch (container, key) {
            case (.list(let items), _):
                guard let i = key.intValue else { throw RuntimeError("a list index must be an integer, got \(ArgKind.show(key))", at: index.range) }
                return try element(items, i, range: index.range)
            case (.record, .string(let name)):
                return try access(container, path: [name], range: range)
            default:
                throw RuntimeError("cannot index \(ArgKind.show(container)) with \(ArgKind.show(key))", at: range)
            }
        case .invalid(let range):
            throw RuntimeError("cannot run an expression that failed to parse", at: range)
        }
    }

    func element(_ items: [Value], _ i: Int, range: SourceRange) throws -> Value {
        let position = i < 0 ? items.count + i : i
        guard items.indices.contains(position) else {
            throw RuntimeError("index \(i) is out of range for a list of \(items.count)", at: range)
        }
        return items[position]
    }

    /// `value.a.b`: record fields; on lists a number picks an element (0-based) and `count` the
    /// length; `count` of strings and records too.
    func access(_ value: Value, path: [String], range: SourceRange) throws -> Value {
        var current = value
        for name in path {
            switch current {
            case .record(let record):
                if let field = record[name] {
                    current = field
                } else if name == "count" {
                    current = .int(record.count)
                } else {
                    throw RuntimeError("record has no field '\(name)'" + Suggestions.didYouMean(name, in: record.keys), at: range,
                                       notes: [.note("fields: \(record.keys.joined(separator: ", "))")])
                }
            case .list(let items):
                if name == "count" {
                    current = .int(items.count)
                } else if let i = Int(name) {
                    current = try element(items, i, range: range)
                } else {
                    throw RuntimeError("a list has no field '\(name)' (lists have 'count' and element numbers)", at: range)
                }
            case .string(let s) where name == "count":
                current = .int(s.count)
            default:
                throw RuntimeError("\(ArgKind.show(current)) has no field '\(name)'", at: range)
            }
        }
        return current
    }

    /// Arithmetic and comparison. `+` joins strings (either side) and lists; `/` always gives a number.
    static func apply(_ op: BinaryOperator, _ l: Value, _ r: Value, range: SourceRange) throws -> Value {
        func mismatch() -> RuntimeError {
            RuntimeError("cannot apply '\(op.rawValue)' to \(ArgKind.show(l)) and \(ArgKind.show(r))", at: range)
        }
        switch op {
        case .equal: return .bool(equal(l, r))
        case .notEqual: return .bool(!equal(l, r))
        case .less, .lessEqual, .greater, .greaterEqual:
            let order: Int
            if let a = l.doubleValue, let b = r.doubleValue {
                order = a < b ? -1 : (a > b ? 1 : 0)
            } else if case .string(let a) = l, case .string(let b) = r {
                order = a < b ? -1 : (a > b ? 1 : 0)
            } else {
                throw mismatch()
            }
            switch op {
            case .less: return .bool(order < 0)
            case .lessEqual: return .bool(order <= 0)
            case .greater: return .bool(order > 0)
            default: return .bool(order >= 0)
            }
        case .add:
            if case .string = l { return .string(try Interpreter.boundedString(l, r, at: range)) }
            if case .string = r { return .string(try Interpreter.boundedString(l, r, at: range)) }
            if case .list(let a) = l, case .list(let b) = r {
                let result = Value.list(a + b)
                try Interpreter.checkSize(result, at: range)
                return result
            }
            fallthrough
        case .subtract, .multiply, .divide:
            if op != .divide, case .int(let a) = l, case .int(let b) = r {
                let (result, overflow): (Int, Bool)
                switch op {
                case .add: (result, overflow) = a.addingReportingOverflow(b)
                case .subtract: (result, overflow) = a.subtractingReportingOverflow(b)
                default: (result, overflow) = a.multipliedReportingOverflow(by: b)
                }
                if overflow { throw RuntimeError("integer overflow in '\(op.rawValue)'", at: range) }
                return .int(result)
            }
            guard let a = l.doubleValue, let b = r.doubleValue else { throw mismatch() }
            let result: Double
            switch op {
            case .add: result = a + b
            case .subtract: result = a - b
            case .multiply: result = a * b
            default:
                if b == 0 { throw RuntimeError("division by zero", at: range) }
                result = a / b
            }
            if !result.isFinite, a.isFinite, b.isFinite {
                throw RuntimeError("number overflow in '\(op.rawValue)': the result is beyond ±1.8e308", at: range)
            }
            return .number(result)
        case .and, .or:
            preconditionFailure("'and'/'or' short-circuit before apply")
        }
    }

    /// Numbers compare by value (`1 == 1.0`); everything else structurally.
    static func equal(_ l: Value, _ r: Value) -> Bool {
        if let a = l.doubleValue, let b = r.doubleValue { return a == b }
        switch (l, r) {
        case (.list(let a), .list(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { equal($0, $1) }
        default:
            return l == r
        }
    }
}

extension Interpreter {
    /// Largest string a script may build (characters, as UTF-8 bytes).
    public static let maxStringBytes = 16 << 20
    /// Most values a list may hold, counting the elements of nested lists.
    public static let maxListValues = 1 << 20

    static func boundedString(_ l: Value, _ r: Value, at range: SourceRange) throws -> String {
        try checkSize(l, at: range)
        try checkSize(r, at: range)
        let a = l.inlineString, b = r.inlineString
        if a.utf8.count + b.utf8.count > maxStringBytes {
            throw RuntimeError("string too long: \(a.utf8.count + b.utf8.count) bytes, the limit is \(maxStringBytes) (16 MiB)", at: range)
        }
        return a + b
    }

    /// Refuses a value holding more than `maxListValues` values in all (nested lists counted with their
    /// elements, however often the same list is repeated) or a string over `maxStringBytes`.
    static func checkSize(_ value: Value, at range: SourceRange) throws {
        var count = 0
        var stack = [value]
        while let v = stack.popLast() {
            count += 1
            if count > maxListValues {
                throw RuntimeError("list too large: more than \(maxListValues) values (nested lists counted in full)", at: range)
            }
            switch v {
            case .list(let items): stack.append(contentsOf: items)
            case .string(let text) where text.utf8.count > maxStringBytes:
                throw RuntimeError("string too long: \(text.utf8.count) bytes, the limit is \(maxStringBytes) (16 MiB)", at: range)
            default: break
            }
        }
    }
}
