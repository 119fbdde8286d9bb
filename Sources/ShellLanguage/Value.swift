// Values of the command language and how they print.
//
// Printing rules (docs/language.md "Printing"):
// - numbers: integers as written; other numbers with up to 6 significant digits (`%g`), a whole
//   number keeps ".0" so it still reads as a number (`2.0`), plus `nan`, `inf`, `-inf`;
// - strings: raw at the top level, quoted inside lists and records;
// - lists and records inside other values: one line, `[1, 2]`, `{ood: 0.81, iid: 0.9}`;
// - a record printed on its own (`print r`, or a command result shown at the prompt): an aligned
//   two-column table of its fields, nested lists/records on one line.
import Foundation
import TextEscaping

public enum Value: Equatable, CustomStringConvertible {
    case none
    case bool(Bool)
    case int(Int)
    case number(Double)
    case string(String)
    case list([Value])
    case record(Record)

    // MARK: Type names and accessors

    /// The type's name as users see it in messages.
    public var typeName: String {
        switch self {
        case .none: return "none"
        case .bool: return "bool"
        case .int: return "int"
        case .number: return "number"
        case .string: return "string"
        case .list: return "list"
        case .record: return "record"
        }
    }

    /// An int, or a number with an integral value.
    public var intValue: Int? {
        switch self {
        case .int(let i): return i
        case .number(let d) where d.rounded() == d && abs(d) < 9.2e18: return Int(d)
        default: return nil
        }
    }
    /// A number or an int.
    public var doubleValue: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .number(let d): return d
        default: return nil
        }
    }
    public var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
    public var boolValue: Bool? { if case .bool(let b) = self { return b } else { return nil } }
    public var listValue: [Value]? { if case .list(let l) = self { return l } else { return nil } }
    public var recordValue: Record? { if case .record(let r) = self { return r } else { return nil } }
    public var isNone: Bool { self == .none }

    /// Field access for records (`r.ood`); nil when absent.
    public subscript(field: String) -> Value? { recordValue?[field] }

    // MARK: Printing

    /// How `print` shows a value on its own: strings raw, records as a table.
    public var displayString: String {
        switch self {
        case .string(let s): return s
        case .record(let r) where !r.isEmpty: return r.table()
        default: return description
        }
    }

    /// One line; strings quoted (the form inside lists and records).
    public var description: String {
        switch self {
        case .none: return "none"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .number(let d): return Value.format(d)
        case .string(let s): return Value.quote(s)
        case .list(let items): return "[" + items.map(\.description).joined(separator: ", ") + "]"
        case .record(let r): return r.description
        }
    }

    /// One line, but a top-level string stays raw (what `echo` prints).
    public var inlineString: String {
        if case .string(let s) = self { return s }
        return description
    }

    /// Up to 6 significant digits; whole numbers keep ".0".
    public static func format(_ d: Double) -> String {
        if d.isNaN { return "nan" }
        if d.isInfinite { return d > 0 ? "inf" : "-inf" }
        if d == d.rounded(), abs(d) < 1e15 {
            return String(format: "%.1f", d)
        }
        return String(format: "%.6g", d)
    }

    /// `s` as a string literal of the language (quotes, backslashes and control characters escaped).
    public static func quote(_ s: String) -> String {
        "\"" + escaped(s, replacing: ["\"": "\\\"", "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"]) + "\""
    }

    // MARK: Reading text

    /// Reads command-line text as the literal it looks like: `4` int, `1e-3`/`0.5` number,
    /// `true`/`false` bool, anything else a string (script arguments `$1` and `--name=value`).
    public static func parseLiteral(_ text: String) -> Value {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let i = Int(trimmed) { return .int(i) }
        // Only plain decimal notation: "nan", "inf" or "0x10" stay text.
        if trimmed.contains(where: \.isNumber), trimmed.allSatisfy({ "0123456789.eE+-".contains($0) }),
           let d = Double(trimmed) {
            return .number(d)
        }
        if trimmed == "true" { return .bool(true) }
        if trimmed == "false" { return .bool(false) }
        return .string(text)
    }
}

extension Value: ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral, ExpressibleByStringLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByNilLiteral {
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: Value...) { self = .list(elements) }
    public init(nilLiteral: ()) { self = .none }
}

/// An ordered set of named fields: a command's result (`let r = eval` then `r.ood`).
public struct Record: Equatable, CustomStringConvertible, ExpressibleByDictionaryLiteral {
    public private(set) var keys: [String] = []
    public private(set) var values: [Value] = []

    public init() {}
    public init(_ fields: [(String, Value)]) {
        for (key, value) in fields { self[key] = value }
    }
    public init(dictionaryLiteral elements: (String, Value)...) { self.init(elements) }

    public var fields: [(key: String, value: Value)] { Array(zip(keys, values)).map { (key: $0.0, value: $0.1) } }
    public var count: Int { keys.count }
    public var isEmpty: Bool { keys.isEmpty }

    /// Reading an absent field gives nil; writing a new field appends it, an existing one replaces it.
    public subscript(key: String) -> Value? {
        get { keys.firstIndex(of: key).map { values[$0] } }
        set {
            if let index = keys.firstIndex(of: key) {
                if let newValue { values[index] = newValue } else { keys.remove(at: index); values.remove(at: index) }
            } else if let newValue {
                keys.append(key)
                values.append(newValue)
            }
        }
    }

    /// `{a: 1, b: "x"}`
    public var description: String {
        "{" + zip(keys, values).map { "\($0): \($1.description)" }.joined(separator: ", ") + "}"
    }

    /// Two aligned columns: key, then the value (strings raw, nested values on one line).
    public func table() -> String {
        let width = keys.map(\.count).max() ?? 0
        return zip(keys, values).map { key, value in
            key.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + value.inlineString
        }.joined(separator: "\n")
    }
}
