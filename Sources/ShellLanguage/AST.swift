// The syntax tree: Swift enums with a source range on every node (evaluated by a `switch` in the
// Interpreter, validated by a `switch` in the Checker).

/// A parsed script or REPL entry.
public struct Program {
    public var statements: [Statement]
    public var source: Source
}

public struct Block {
    public var statements: [Statement]
    /// From `{` to `}`.
    public var range: SourceRange
}

public indirect enum Statement {
    /// `name positional… key=value…`, `name?` (help), or a lone variable name (its value is shown).
    case command(Command)
    /// `let name = value`
    case letBinding(name: String, nameRange: SourceRange, value: RightHandSide, range: SourceRange)
    /// `name = value` (the variable must exist)
    case assignment(name: String, nameRange: SourceRange, value: RightHandSide, range: SourceRange)
    /// `for name in sequence { … }`
    case forLoop(variable: String, variableRange: SourceRange, sequence: ExpressionNode, body: Block, range: SourceRange)
    /// `if c { } else if c { } else { }`
    case conditional(branches: [ConditionalBranch], elseBody: Block?, range: SourceRange)
    /// `source "file.fqs"`
    case source(path: ExpressionNode, range: SourceRange)
    /// `time command…`
    case time(Command, range: SourceRange)
    /// A statement that is only an expression (`1 + 2`, `$x`, `r.ood * 100`): its value is shown.
    case expression(ExpressionNode)

    public var range: SourceRange {
        switch self {
        case .command(let command): return command.range
        case .expression(let expression): return expression.range
        case .letBinding(_, _, _, let range), .assignment(_, _, _, let range), .forLoop(_, _, _, _, let range),
             .conditional(_, _, let range), .source(_, let range), .time(_, let range):
            return range
        }
    }
}

public struct ConditionalBranch {
    public var condition: ExpressionNode
    public var body: Block
}

/// What `let x = …` binds: a command's result (`let r = eval split=test`) or an expression.
public enum RightHandSide {
    case command(Command)
    case expression(ExpressionNode)

    public var range: SourceRange {
        switch self {
        case .command(let command): return command.range
        case .expression(let expression): return expression.range
        }
    }
}

public struct Command {
    public var name: String
    public var nameRange: SourceRange
    public var arguments: [Argument]
    /// `name?`: show help instead of running.
    public var wantsHelp: Bool
    public var range: SourceRange
}

public struct Argument {
    /// The key of `key=value`; nil for a positional argument.
    public var label: String?
    public var labelRange: SourceRange?
    public var value: ExpressionNode
    public var range: SourceRange
}

public enum UnaryOperator: String, Sendable {
    case negate = "-", not
}

public enum BinaryOperator: String, Sendable {
    case add = "+", subtract = "-", multiply = "*", divide = "/"
    case equal = "==", notEqual = "!=", less = "<", lessEqual = "<=", greater = ">", greaterEqual = ">="
    case and, or
}

public indirect enum ExpressionNode {
    case integer(Int, SourceRange)
    case number(Double, SourceRange)
    case string(String, SourceRange)
    case bool(Bool, SourceRange)
    /// A bare word. If its first `.`-segment names a variable it reads that variable (and the fields
    /// after it); otherwise, where an argument stands, it is the text itself; elsewhere it is an
    /// undefined variable. See docs/language.md "Bare words".
    case word(String, SourceRange)
    /// `$name` / `$name.field`: always a variable.
    case variable(String, SourceRange)
    /// `$1`, `$2`, … (`$0` is the script name).
    case scriptArgument(Int, SourceRange)
    case list([ExpressionNode], SourceRange)
    case unary(UnaryOperator, ExpressionNode, SourceRange)
    case binary(BinaryOperator, ExpressionNode, ExpressionNode, SourceRange)
    /// `(expr).name`, `xs[0].name`
    case field(ExpressionNode, String, SourceRange)
    /// `xs[i]`
    case index(ExpressionNode, ExpressionNode, SourceRange)
    /// Stands in for an expression that failed to parse (the error is already reported).
    case invalid(SourceRange)

    public var range: SourceRange {
        switch self {
        case .integer(_, let r), .number(_, let r), .string(_, let r), .bool(_, let r), .word(_, let r),
             .variable(_, let r), .scriptArgument(_, let r), .list(_, let r), .unary(_, _, let r),
             .binary(_, _, _, let r), .field(_, _, let r), .index(_, _, let r), .invalid(let r):
            return r
        }
    }
}
