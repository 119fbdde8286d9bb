// The command model: one description per command that drives argument checking (static and at run
// time), `help`, `cmd?`, Tab completion and the generated docs/commands.md. Engine commands are
// registered by ShellCommands; the language's own built-ins live in Builtins.swift.
import Foundation

/// What values an argument accepts. Checking and run-time coercion share `coerce`, so a script that
/// passes the checker never meets a different rule when it runs.
public indirect enum ArgKind: Equatable {
    /// An integer, optionally within an inclusive range (use `Int.max` / `Int.min` for open ends).
    case int(ClosedRange<Int>?)
    /// A number (ints accepted), optionally within an inclusive range.
    case number(ClosedRange<Double>?)
    /// Text. Numbers and bools are accepted and converted to their printed form.
    case string
    case bool
    /// One of fixed words (`quantize lsq`, `policy=adaptive`).
    case choice([String])
    /// A list of values of one kind; a single value is accepted as a one-element list.
    case list(ArgKind)
    /// A file path: text, with a leading `~/` expanded. Completes file names.
    case path
    /// A glob over names (`layer1.*`): text.
    case pattern
    /// Any value, unconverted.
    case any

    public static var int: ArgKind { .int(nil) }
    public static var number: ArgKind { .number(nil) }
    /// An integer >= `min`.
    public static func int(min: Int) -> ArgKind { .int(min...Int.max) }
    /// A number >= `min`.
    public static func number(min: Double) -> ArgKind { .number(min...Double.infinity) }

    /// Converts a value to this kind or explains why not, in words that follow "argument 'x' …".
    public func coerce(_ value: Value) throws -> Value {
        switch self {
        case .any:
            return value
        case .int(let range):
            guard let i = value.intValue else { throw ArgumentProblem("expects an integer, got \(ArgKind.show(value))") }
            if let range, !range.contains(i) {
                throw ArgumentProblem("must be \(ArgKind.describe(range)), got \(i)")
            }
            return .int(i)
        case .number(let range):
            guard let d = value.doubleValue else { throw ArgumentProblem("expects a number, got \(ArgKind.show(value))") }
            if let range, !range.contains(d) {
                throw ArgumentProblem("must be \(ArgKind.describe(range)), got \(Value.number(d).description)")
            }
            return .number(d)
        case .bool:
            guard let b = value.boolValue else { throw ArgumentProblem("expects true or false, got \(ArgKind.show(value))") }
            return .bool(b)
        case .string, .pattern:
            return .string(try ArgKind.text(value))
        case .path:
            let text = try ArgKind.text(value)
            return .string(HomePath.expand(text))
        case .choice(let choices):
            let text: String
            switch value {
            case .string(let s): text = s
            case .int, .bool: text = value.description
            default: throw ArgumentProblem("expects one of \(choices.joined(separator: ", ")), got \(ArgKind.show(value))")
            }
            guard choices.contains(text) else {
                let suggestion = Suggestions.closest(to: text, in: choices)
                throw ArgumentProblem("has no choice '\(text)'" + (suggestion.map { "; did you mean '\($0)'?" } ?? ""),
                                      notes: ["choices: \(choices.joined(separator: ", "))"])
            }
            return .string(text)
        case .list(let element):
            let items = value.listValue ?? [value]
            return .list(try items.enumerated().map { index, item in
                do { return try element.coerce(item) } catch let problem as ArgumentProblem {
                    throw ArgumentProblem("element \(index + 1) " + problem.message, notes: problem.notes)
                }
            })
        }
    }

    static func text(_ value: Value) throws -> String {
        switch value {
        case .string(let s): return s
        case .int, .number, .bool: return value.description
        default: throw ArgumentProblem("expects text, got \(show(value))")
        }
    }

    /// `a list [1, 2]`, `the text "abc"`, `int 3`.
    static func show(_ value: Value) -> String {
        switch value {
        case .string(let s): return "the text \(Value.quote(s))"
        case .none: return "none"
        default: return "\(value.typeName) \(value.description)"
        }
    }

    static func describe(_ range: ClosedRange<Int>) -> String {
        if range.upperBound == Int.max { return "at least \(range.lowerBound)" }
        if range.lowerBound == Int.min { return "at most \(range.upperBound)" }
        return "between \(range.lowerBound) and \(range.upperBound)"
    }

    static func describe(_ range: ClosedRange<Double>) -> String {
        let low = Value.number(range.lowerBound).description, high = Value.number(range.upperBound).description
        if range.upperBound == .infinity { return "at least \(low)" }
        if range.lowerBound == -.infinity { return "at most \(high)" }
        return "between \(low) and \(high)"
    }

    /// The kind's name in help and usage lines: `int`, `number`, `string`, `bool`, `path`, `pattern`,
    /// `value`; a choice is its words (`erm|qat|fqat`), a list `list`.
    var kindName: String {
        switch self {
        case .int: return "int"
        case .number: return "number"
        case .string: return "string"
        case .bool: return "bool"
        case .choice(let choices): return choices.joined(separator: "|")
        case .list: return "list"
        case .path: return "path"
        case .pattern: return "pattern"
        case .any: return "value"
        }
    }

    /// Short type text for help: `int 1…8`, `number ≥ 0.0`, `erm|qat|fqat`, `list of int`.
    public var helpDescription: String {
        switch self {
        case .int(let range?):
            if range.upperBound == Int.max { return "int ≥ \(range.lowerBound)" }
            if range.lowerBound == Int.min { return "int ≤ \(range.upperBound)" }
            return "int \(range.lowerBound)…\(range.upperBound)"
        case .number(let range?):
            let low = Value.number(range.lowerBound).description, high = Value.number(range.upperBound).description
            if range.upperBound == .infinity { return "number ≥ \(low)" }
            if range.lowerBound == -.infinity { return "number ≤ \(high)" }
            return "number \(low)…\(high)"
        case .list(let element): return "list of \(element.helpDescription)"
        case .int(nil), .number(nil), .string, .bool, .choice, .path, .pattern, .any: return kindName
        }
    }

    /// The placeholder in usage lines: `<int>`, `erm|qat`, `[<int>, …]`.
    public var placeholder: String {
        switch self {
        case .bool: return "true|false"
        case .choice: return kindName
        case .list(let element): return "[\(element.placeholder), …]"
        case .int, .number, .string, .path, .pattern, .any: return "<\(kindName)>"
        }
    }

    /// Kinds for which an unbound bare word is plausible text (no "did you mean the variable" warning).
    var takesWords: Bool {
        switch self {
        case .choice, .path, .pattern: return true
        case .list(let element): return element.takesWords
        default: return false
        }
    }

    /// Kinds that accept text at all (an unbound bare word is not an immediate type error).
    var acceptsText: Bool {
        switch self {
        case .string, .choice, .path, .pattern, .any: return true
        case .list(let element): return element.acceptsText
        default: return false
        }
    }
}

/// Why a value does not fit an argument; the message follows "argument 'name' ".
public struct ArgumentProblem: Error {
    public var message: String
    public var notes: [String]
    public init(_ message: String, notes: [String] = []) {
        self.message = message
        self.notes = notes
    }
}

/// Where Tab completion takes an argument's values from.
public enum CompletionSource: Equatable {
    case none
    /// The kind's choices (`.choice`, `.bool`, lists of them).
    case choices
    /// File and directory names.
    case files
    /// Names supplied at completion time by the shell (`"layers"`, `"scales"`, `"domains"`,
    /// `"variables"`, `"commands"`, …); see `Completer.complete(line:cursor:dynamic:)`.
    case dynamic(String)
}

/// One argument of a command.
public struct ArgSpec {
    public var name: String
    public var kind: ArgKind
    public var required: Bool
    /// Used when the argument is not given; nil means "absent" (an optional property is nil).
    public var defaultValue: Value?
    public var help: String
    public var completion: CompletionSource

    public init(_ name: String, _ kind: ArgKind, required: Bool = false, default defaultValue: Value? = nil,
                help: String = "", completion: CompletionSource? = nil) {
        precondition(!(required && defaultValue != nil), "argument '\(name)' is required and has a default")
        if let defaultValue {
            // A default that its own kind rejects is a bug in the command table.
            precondition((try? kind.coerce(defaultValue)) != nil,
                         "default \(defaultValue) of argument '\(name)' does not fit \(kind.helpDescription)")
        }
        self.name = name
        self.kind = kind
        self.required = required
        self.defaultValue = defaultValue
        self.help = help
        self.completion = completion ?? ArgSpec.defaultCompletion(for: kind)
    }

    static func defaultCompletion(for kind: ArgKind) -> CompletionSource {
        switch kind {
        case .choice, .bool: return .choices
        case .path: return .files
        case .list(let element): return defaultCompletion(for: element)
        default: return .none
        }
    }
}

/// A command: its arguments, its documentation and what it does.
public struct CommandSpec {
    public var name: String
    /// One line, lower case, no final period: shown in `help` lists.
    public var summary: String
    /// Paragraphs shown by `help name`.
    public var discussion: String
    /// Heading under which `help` lists it ("data", "training", "shell", …).
    public var group: String
    public var positionals: [ArgSpec]
    /// Takes any number of further positional values of this kind (`print a b c`).
    public var variadic: ArgSpec?
    public var keywords: [ArgSpec]
    public var examples: [String]
    /// If not empty, the first positional word picks one of these (`data pacs root=…`), each with its
    /// own arguments; `run` of the chosen subcommand is called.
    public var subcommands: [CommandSpec]
    /// Replaces the generated usage line (language forms such as `for name in list { … }`).
    public var usageOverride: String?
    /// What the command does; nil for help-only topics (`let`, `for`, `if`) and parents of subcommands.
    public var run: ((Invocation) throws -> Value)?

    public init(name: String, summary: String, discussion: String = "", group: String = "commands",
                positionals: [ArgSpec] = [], variadic: ArgSpec? = nil, keywords: [ArgSpec] = [],
                examples: [String] = [], subcommands: [CommandSpec] = [], usage: String? = nil,
                run: ((Invocation) throws -> Value)? = nil) {
        let names = (positionals + keywords + (variadic.map { [$0] } ?? [])).map(\.name)
        precondition(Set(names).count == names.count, "command '\(name)' declares an argument name twice: \(names)")
        self.name = name
        self.summary = summary
        self.discussion = discussion
        self.group = group
        self.positionals = positionals
        self.variadic = variadic
        self.keywords = keywords
        self.examples = examples
        self.subcommands = subcommands
        self.usageOverride = usage
        self.run = run
    }

    /// Positionals and keywords (every argument that can be written `name=value`).
    public var namedArguments: [ArgSpec] { positionals + keywords }

    public func argument(named name: String) -> ArgSpec? {
        namedArguments.first { $0.name == name } ?? (variadic?.name == name ? variadic : nil)
    }

    public func subcommand(named name: String) -> CommandSpec? { subcommands.first { $0.name == name } }
}

/// An error a command reports to the user. With `argument`, the message points at that argument.
public struct CommandError: Error, CustomStringConvertible {
    public var message: String
    public var argument: String?
    public var notes: [String]
    public init(_ message: String, argument: String? = nil, notes: [String] = []) {
        self.message = message
        self.argument = argument
        self.notes = notes
    }
    public var description: String { message }
}

/// One call of a command: the checked, defaulted argument values, and the shell around it. Commands
/// read their arguments through their `CommandArguments` struct (TypedArguments.swift), not by name.
public struct Invocation {
    public let spec: CommandSpec
    /// `train`, or `data pacs` for a subcommand.
    public let commandPath: [String]
    public let arguments: [String: Value]
    /// Values of the variadic positional, in order.
    public let rest: [Value]
    /// Where the command and each given argument were written (nil for calls made from Swift).
    public let range: SourceRange?
    public let argumentRanges: [String: SourceRange]
    public let interpreter: Interpreter

    public init(spec: CommandSpec, commandPath: [String], arguments: [String: Value], rest: [Value] = [],
                range: SourceRange? = nil, argumentRanges: [String: SourceRange] = [:], interpreter: Interpreter) {
        self.spec = spec
        self.commandPath = commandPath
        self.arguments = arguments
        self.rest = rest
        self.range = range
        self.argumentRanges = argumentRanges
        self.interpreter = interpreter
    }

    public var output: Output { interpreter.output }
    public var interrupt: Interrupt { interpreter.interrupt }

    /// Throws `Interrupted` if Ctrl-C was pressed; call at step boundaries of long work.
    public func checkInterrupt() throws { try interrupt.check() }

    /// Writes a line to standard output.
    public func print(_ text: String) { output.write(text + "\n", to: .standard) }
    /// Writes a line to standard error.
    public func warn(_ text: String) { output.write(text + "\n", to: .error) }

    /// An error pointing at the command; `error(_:argument:notes:)` (TypedArguments.swift) points at
    /// one of its arguments.
    public func error(_ message: String, notes: [String] = []) -> CommandError {
        CommandError(message, notes: notes)
    }
}

/// All commands the shell knows, in registration order. Built-ins come first unless disabled.
public final class CommandRegistry {
    public private(set) var commands: [CommandSpec] = []
    private var index: [String: Int] = [:]

    public init(includeBuiltins: Bool = true) {
        if includeBuiltins { register(Builtins.specs()) }
    }

    public func register(_ spec: CommandSpec) {
        precondition(index[spec.name] == nil, "command '\(spec.name)' registered twice")
        precondition(Keyword(rawValue: spec.name) == nil || spec.run == nil,
                     "'\(spec.name)' is a keyword; only a help topic may use that name")
        index[spec.name] = commands.count
        commands.append(spec)
    }

    public func register(_ specs: [CommandSpec]) { specs.forEach(register) }

    public func spec(named name: String) -> CommandSpec? { index[name].map { commands[$0] } }

    /// Names of everything with help (commands and language topics).
    public var names: [String] { commands.map(\.name) }

    /// Names of runnable commands (what may start a statement).
    public var commandNames: [String] {
        commands.filter { $0.run != nil || !$0.subcommands.isEmpty || Builtins.statementNames.contains($0.name) }.map(\.name)
    }

    /// Groups in order of first registration, the built-in "shell" and "language" groups last (help
    /// lists the engine's commands first).
    public var groups: [String] {
        var seen: [String] = []
        for command in commands where !seen.contains(command.group) { seen.append(command.group) }
        let builtin = ["shell", "language"]
        return seen.filter { !builtin.contains($0) } + builtin.filter { seen.contains($0) }
    }
}
