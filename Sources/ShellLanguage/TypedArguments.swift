// Typed command arguments: a command declares its arguments as the properties of a small struct, one
// property wrapper per argument (`@Positional`, `@Option`, `@Rest`), in the manner of
// swift-argument-parser's `@Argument`/`@Option`. The declaration is the single source of the argument's
// name (the property's name), type (the property's type, through `ArgumentValue`), default (the
// property's initial value) and help; `CommandSpec(name:…, arguments: Args.self) { args, inv in … }`
// derives the `ArgSpec`s that checking, help, completion and docs/commands.md read, and decodes every
// call into a fresh `Args`. Reading an argument is reading a property, so a misspelt name does not
// compile. See docs/architecture.md, "How to add a command".
import Foundation

/// A Swift type an argument can be decoded into (argument-parser's `ExpressibleByArgument`).
public protocol ArgumentValue {
    /// The kind that checks, coerces, documents and completes this type when the declaration names none.
    static var argumentKind: ArgKind { get }
    /// The value of an argument already coerced to a kind that refines `argumentKind`; nil if it does
    /// not fit (a bug in the declaration, reported as such).
    init?(argument: Value)
    /// This value in the language (a default in help and docs); nil for "absent".
    var argumentValue: Value? { get }
}

/// Choices backed by an enum: one declaration gives the words the checker accepts (with its "did you
/// mean" diagnostics), help's `a|b|c`, Tab completion and docs/commands.md. The raw values are the words.
public protocol ChoiceArgument: ArgumentValue, CaseIterable, RawRepresentable where RawValue == String {}

extension ChoiceArgument {
    public static var argumentKind: ArgKind { .choice(allCases.map(\.rawValue)) }
    public init?(argument: Value) {
        guard case .string(let word) = argument else { return nil }
        self.init(rawValue: word)
    }
    public var argumentValue: Value? { .string(rawValue) }
}

extension Int: ArgumentValue {
    public static var argumentKind: ArgKind { .int }
    public init?(argument: Value) {
        guard let i = argument.intValue else { return nil }
        self = i
    }
    public var argumentValue: Value? { .int(self) }
}

extension Double: ArgumentValue {
    public static var argumentKind: ArgKind { .number }
    public init?(argument: Value) {
        guard let d = argument.doubleValue else { return nil }
        self = d
    }
    public var argumentValue: Value? { .number(self) }
}

extension String: ArgumentValue {
    public static var argumentKind: ArgKind { .string }
    public init?(argument: Value) {
        guard case .string(let s) = argument else { return nil }
        self = s
    }
    public var argumentValue: Value? { .string(self) }
}

extension Bool: ArgumentValue {
    public static var argumentKind: ArgKind { .bool }
    public init?(argument: Value) {
        guard let b = argument.boolValue else { return nil }
        self = b
    }
    public var argumentValue: Value? { .bool(self) }
}

/// Any value, unconverted (`print`'s values, `option`'s default).
extension Value: ArgumentValue {
    public static var argumentKind: ArgKind { .any }
    public init?(argument: Value) { self = argument }
    public var argumentValue: Value? { self }
}

/// A list of values of one kind; a single value is accepted as a one-element list.
extension Array: ArgumentValue where Element: ArgumentValue {
    public static var argumentKind: ArgKind { .list(Element.argumentKind) }
    public init?(argument: Value) {
        var items: [Element] = []
        for item in argument.listValue ?? [argument] {
            guard let element = Element(argument: item) else { return nil }
            items.append(element)
        }
        self = items
    }
    public var argumentValue: Value? { .list(compactMap(\.argumentValue)) }
}

/// An argument that may be absent: an optional property is neither required nor defaulted.
extension Optional: ArgumentValue where Wrapped: ArgumentValue {
    public static var argumentKind: ArgKind { Wrapped.argumentKind }
    public init?(argument: Value) {
        guard let wrapped = Wrapped(argument: argument) else { return nil }
        self = .some(wrapped)
    }
    public var argumentValue: Value? { self?.argumentValue ?? nil }
}

/// Types whose value may stand for an absent argument (only `Optional`).
protocol AbsentArgument { static var absent: Self { get } }
extension Optional: AbsentArgument where Wrapped: ArgumentValue { static var absent: Self { nil } }

extension ArgKind {
    /// Whether every value this kind produces also fits `base` (a declaration may narrow its type's
    /// kind: a range on an int, a path or a fixed set of words for a string, a kind for list elements).
    func refines(_ base: ArgKind) -> Bool {
        switch (self, base) {
        case (_, .any): return true
        case (.int, .int), (.number, .number), (.bool, .bool): return true
        case (.string, .string), (.path, .string), (.pattern, .string), (.choice, .string): return true
        case (.choice(let words), .choice(let allowed)): return Set(words).isSubset(of: Set(allowed))
        case (.list(let element), .list(let baseElement)): return element.refines(baseElement)
        default: return false
        }
    }
}

/// A decoded argument's name, for errors and source ranges that point at it (`args.$path`); taken
/// from the declaration, so it cannot be misspelt either.
public struct ArgumentName: Hashable, Sendable, CustomStringConvertible {
    public let name: String
    public var description: String { name }
}

/// Where an argument stands in the command line.
enum ArgumentRole { case positional, keyword, variadic }

/// Filled in when a call is decoded. A class, so that the copy of a wrapper that `Mirror` hands out
/// fills the same storage as the property of the struct being decoded.
final class ArgumentStorage<T> {
    var value: T?
    var name = ""
}

/// What `CommandArguments` reads from each wrapper through `Mirror`.
protocol ArgumentDeclaration {
    var role: ArgumentRole { get }
    func spec(named name: String) -> ArgSpec
    func decode(_ invocation: Invocation, named name: String)
}

/// Shared by `@Positional` and `@Option`: kind, help, default and the decoded value of one argument.
struct SingleArgument<T: ArgumentValue> {
    let kind: ArgKind
    let help: String
    let defaultValue: Value?
    let completion: CompletionSource?
    let storage = ArgumentStorage<T>()

    init(kind: ArgKind?, help: String, default value: T?, completion: CompletionSource?, wrapper: String) {
        let kind = kind ?? T.argumentKind
        precondition(kind.refines(T.argumentKind),
                     "@\(wrapper) of type \(T.self) declares kind \(kind.helpDescription), which does not fit \(T.argumentKind.helpDescription)")
        self.kind = kind
        self.help = help
        self.defaultValue = value?.argumentValue ?? nil
        self.completion = completion
    }

    func spec(named name: String) -> ArgSpec {
        ArgSpec(name, kind, required: defaultValue == nil && !(T.self is AbsentArgument.Type),
                default: defaultValue, help: help, completion: completion)
    }

    func decode(_ invocation: Invocation, named name: String) {
        storage.name = name
        if let given = invocation.arguments[name] {
            guard let value = T(argument: given) else {
                preconditionFailure("argument '\(name)' of '\(invocation.commandPath.joined(separator: " "))' is not a \(T.self): \(given)")
            }
            storage.value = value
        } else if let absent = T.self as? AbsentArgument.Type {
            storage.value = (absent.absent as! T)
        } else {
            preconditionFailure("argument '\(name)' of '\(invocation.commandPath.joined(separator: " "))' has no value and no default")
        }
    }

    var value: T {
        guard let value = storage.value else { preconditionFailure("an argument was read before its command decoded it") }
        return value
    }

    var name: ArgumentName { ArgumentName(name: storage.name) }
}

/// A positional argument, in declaration order: `@Positional(help: "…") var method: TrainingMethod`.
/// A non-optional property without an initial value is required.
@propertyWrapper
public struct Positional<T: ArgumentValue>: ArgumentDeclaration {
    let argument: SingleArgument<T>
    /// With a default: `@Positional(.int(0...255), help: "…") var status = 0`.
    public init(wrappedValue: T, _ kind: ArgKind? = nil, help: String, completion: CompletionSource? = nil) {
        argument = SingleArgument(kind: kind, help: help, default: wrappedValue, completion: completion, wrapper: "Positional")
    }
    /// Required (or, for an optional type, possibly absent).
    public init(_ kind: ArgKind? = nil, help: String, completion: CompletionSource? = nil) {
        argument = SingleArgument(kind: kind, help: help, default: nil, completion: completion, wrapper: "Positional")
    }
    public var wrappedValue: T { argument.value }
    /// The argument's name, for `inv.error(…, argument: args.$name)`.
    public var projectedValue: ArgumentName { argument.name }
    var role: ArgumentRole { .positional }
    func spec(named name: String) -> ArgSpec { argument.spec(named: name) }
    func decode(_ invocation: Invocation, named name: String) { argument.decode(invocation, named: name) }
}

/// A `name=value` argument: `@Option(.int(2...8), help: "…") var bits = 4`.
@propertyWrapper
public struct Option<T: ArgumentValue>: ArgumentDeclaration {
    let argument: SingleArgument<T>
    public init(wrappedValue: T, _ kind: ArgKind? = nil, help: String, completion: CompletionSource? = nil) {
        argument = SingleArgument(kind: kind, help: help, default: wrappedValue, completion: completion, wrapper: "Option")
    }
    public init(_ kind: ArgKind? = nil, help: String, completion: CompletionSource? = nil) {
        argument = SingleArgument(kind: kind, help: help, default: nil, completion: completion, wrapper: "Option")
    }
    public var wrappedValue: T { argument.value }
    public var projectedValue: ArgumentName { argument.name }
    var role: ArgumentRole { .keyword }
    func spec(named name: String) -> ArgSpec { argument.spec(named: name) }
    func decode(_ invocation: Invocation, named name: String) { argument.decode(invocation, named: name) }
}

/// Any number of further positional values of one type (`print a b c`): `@Rest(help: "…") var values: [Value]`.
@propertyWrapper
public struct Rest<Element: ArgumentValue>: ArgumentDeclaration {
    let kind: ArgKind
    let help: String
    let completion: CompletionSource?
    let storage = ArgumentStorage<[Element]>()
    public init(_ kind: ArgKind? = nil, help: String, completion: CompletionSource? = nil) {
        let kind = kind ?? Element.argumentKind
        precondition(kind.refines(Element.argumentKind), "@Rest of \(Element.self) declares kind \(kind.helpDescription)")
        self.kind = kind
        self.help = help
        self.completion = completion
    }
    public var wrappedValue: [Element] {
        guard let value = storage.value else { preconditionFailure("an argument was read before its command decoded it") }
        return value
    }
    var role: ArgumentRole { .variadic }
    func spec(named name: String) -> ArgSpec { ArgSpec(name, kind, help: help, completion: completion) }
    func decode(_ invocation: Invocation, named name: String) {
        storage.name = name
        storage.value = invocation.rest.map { item in
            guard let element = Element(argument: item) else {
                preconditionFailure("a value of '\(invocation.commandPath.joined(separator: " "))' is not a \(Element.self): \(item)")
            }
            return element
        }
    }
}

/// The arguments of one command, as properties declared with `@Positional`, `@Option` and `@Rest`.
/// Every property needs an initial value or a wrapper without one, so that `init()` exists.
public protocol CommandArguments {
    init()
}

/// A command without arguments.
public struct NoArguments: CommandArguments {
    public init() {}
}

/// Arguments shared by several commands, declared once in their own `CommandArguments` struct and
/// embedded with `@Group var shared: Shared` (argument-parser's `@OptionGroup`): its arguments take
/// the group's place in the command's order.
@propertyWrapper
public struct Group<Arguments: CommandArguments>: ArgumentGroupDeclaration {
    let arguments = Arguments()
    public init() {}
    public var wrappedValue: Arguments { arguments }
    var members: Any { arguments }
}

protocol ArgumentGroupDeclaration { var members: Any { get } }

extension CommandArguments {
    /// Each declared argument of `instance` (groups flattened) with its name: the property's, without
    /// the wrapper's underscore, in declaration order.
    static func declarations(of instance: Any) -> [(name: String, declaration: ArgumentDeclaration)] {
        Mirror(reflecting: instance).children.flatMap { child -> [(name: String, declaration: ArgumentDeclaration)] in
            if let group = child.value as? ArgumentGroupDeclaration { return declarations(of: group.members) }
            guard let declaration = child.value as? ArgumentDeclaration, let label = child.label else { return [] }
            return [(label.hasPrefix("_") ? String(label.dropFirst()) : label, declaration)]
        }
    }

    /// The specs the registry keeps for this command: positionals, keywords and the variadic rest.
    public static func argumentSpecs() -> (positionals: [ArgSpec], keywords: [ArgSpec], variadic: ArgSpec?) {
        var positionals: [ArgSpec] = [], keywords: [ArgSpec] = [], variadic: ArgSpec?
        for (name, declaration) in declarations(of: Self()) {
            let spec = declaration.spec(named: name)
            switch declaration.role {
            case .positional: positionals.append(spec)
            case .keyword: keywords.append(spec)
            case .variadic:
                precondition(variadic == nil, "\(Self.self) declares two @Rest arguments")
                variadic = spec
            }
        }
        return (positionals, keywords, variadic)
    }

    /// A fresh value holding this call's (checked, coerced, defaulted) arguments.
    public static func decode(_ invocation: Invocation) -> Self {
        let arguments = Self()
        for (name, declaration) in declarations(of: arguments) { declaration.decode(invocation, named: name) }
        return arguments
    }
}

extension CommandSpec {
    /// A command whose arguments are the properties of `arguments`; `run` receives them decoded.
    public init<Arguments: CommandArguments>(
        name: String, summary: String, discussion: String = "", group: String = "commands",
        arguments: Arguments.Type, examples: [String] = [], usage: String? = nil,
        run: @escaping (Arguments, Invocation) throws -> Value
    ) {
        let specs = Arguments.argumentSpecs()
        self.init(name: name, summary: summary, discussion: discussion, group: group,
                  positionals: specs.positionals, variadic: specs.variadic, keywords: specs.keywords,
                  examples: examples, usage: usage,
                  run: { invocation in try run(Arguments.decode(invocation), invocation) })
    }
}

extension Invocation {
    /// An error pointing at a decoded argument (`inv.error("no such file", argument: args.$path)`).
    public func error(_ message: String, argument: ArgumentName, notes: [String] = []) -> CommandError {
        CommandError(message, argument: argument.name, notes: notes)
    }

    /// Where the argument was written, if it was.
    public func range(of argument: ArgumentName) -> SourceRange? { argumentRanges[argument.name] }
}
