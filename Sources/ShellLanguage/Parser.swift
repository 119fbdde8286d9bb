// Parser: tokens -> AST (phase 2 of 4). Recursive descent with panic-mode recovery: an error inside
// a statement is recorded, the parser skips to the next statement boundary (a newline or `;` outside
// any `{ }` it skips over, or the `}` closing the enclosing block) and carries on, so one run reports
// every syntax error. The grammar (EBNF) is in docs/language.md.

public struct ParseResult {
    public var program: Program
    /// Lexer and parser errors, in source order.
    public var diagnostics: [Diagnostic]
    /// The input stopped inside a string, bracket or block (see `LexResult.isIncomplete`).
    public var isIncomplete: Bool
    public var hasErrors: Bool { diagnostics.contains { $0.severity == .error } }
}

public struct Parser {
    let source: Source
    let tokens: [Token]
    var current = 0
    var diagnostics: [Diagnostic] = []
    /// One entry per open `[` (true: newlines are skipped, so lists may span lines) or `(` (false:
    /// parentheses stay on one line). Empty at statement level.
    var newlineSkipping: [Bool] = []
    var lastConsumed: Token?
    /// Depth of the tree being built: brackets, parentheses, blocks, unary operators and each operator of
    /// a chain (`1 + 1 + …` is a tree as deep as it is long). Bounded so that no later recursive phase
    /// (checker, interpreter, printing, freeing the tree) can run out of stack.
    var depth = 0
    /// The nesting limit (Lua allows 200 C levels, CPython 200 parenthesis levels).
    public static let maxDepth = 200

    mutating func descend() throws {
        depth += 1
        if depth > Parser.maxDepth {
            throw errorHere("nesting too deep: more than \(Parser.maxDepth) levels of brackets, blocks or chained operators in one statement; split it into several statements with `let`")
        }
    }

    public static func parse(_ source: Source) -> ParseResult {
        let lexed = Lexer.tokenize(source)
        var parser = Parser(source: source, tokens: lexed.tokens)
        let statements = parser.parseStatements(untilBrace: false)
        let diagnostics = (lexed.diagnostics + parser.diagnostics).sorted {
            ($0.range?.start ?? 0) < ($1.range?.start ?? 0)
        }
        return ParseResult(program: Program(statements: statements, source: source),
                           diagnostics: diagnostics, isIncomplete: lexed.isIncomplete)
    }

    init(source: Source, tokens: [Token]) {
        self.source = source
        self.tokens = tokens
    }

    // MARK: Token helpers

    var token: Token { tokens[current] }
    var kind: TokenKind { tokens[current].kind }
    var next: Token { tokens[min(current + 1, tokens.count - 1)] }
    var atEnd: Bool { kind == .endOfFile }
    /// The range of the last consumed token (not of newlines skipped after it).
    var previousRange: SourceRange { lastConsumed?.range ?? tokens[0].range }

    @discardableResult
    mutating func advance() -> Token {
        let token = tokens[current]
        lastConsumed = token
        if !atEnd { current += 1 }
        skipNewlinesIfNested()
        return token
    }

    mutating func skipNewlinesIfNested() {
        if newlineSkipping.last == true { while kind == .newline { current += 1 } }
    }

    /// After consuming `[` or `(`.
    mutating func enterNesting(skippingNewlines: Bool) {
        newlineSkipping.append(skippingNewlines)
        skipNewlinesIfNested()
    }

    /// Before consuming the closing `]` or `)`.
    mutating func leaveNesting() { newlineSkipping.removeLast() }

    func check(_ kind: TokenKind) -> Bool { self.kind == kind }

    mutating func match(_ kind: TokenKind) -> Bool {
        guard check(kind) else { return false }
        advance()
        return true
    }

    /// Consumes a token of `kind` or throws "expected …, found …".
    @discardableResult
    mutating func expect(_ kind: TokenKind, _ what: String, notes: [Diagnostic] = []) throws -> Token {
        guard check(kind) else { throw errorHere("expected \(what), found \(token)", notes: notes) }
        return advance()
    }

    func errorHere(_ message: String, notes: [Diagnostic] = []) -> Diagnostic {
        // At the end of the input, point just past the last token rather than at an empty last line.
        if atEnd, let last = lastConsumed {
            return .error(message, at: SourceRange(source: source, start: last.range.end, end: last.range.end), notes: notes)
        }
        return .error(message, at: token.range, notes: notes)
    }

    var atStatementEnd: Bool {
        switch kind {
        case .newline, .semicolon, .rightBrace, .endOfFile: return true
        default: return false
        }
    }

    mutating func skipSeparators() {
        while check(.newline) || check(.semicolon) { advance() }
    }

    func range(from start: SourceRange) -> SourceRange { start.union(previousRange) }

    // MARK: Recovery

    /// Skips to the next statement boundary: a separator outside skipped braces, or the `}` that closes
    /// the enclosing block (left for the block to consume), or the end.
    mutating func synchronize() {
        var depth = 0
        while !atEnd {
            switch kind {
            case .newline where depth == 0, .semicolon where depth == 0:
                return
            case .leftBrace:
                depth += 1
            case .rightBrace:
                if depth == 0 { return }
                depth -= 1
            default:
                break
            }
            advance()
        }
    }

    // MARK: Statements

    /// Statements up to the end (or, inside a block, up to its `}`).
    mutating func parseStatements(untilBrace: Bool) -> [Statement] {
        var statements: [Statement] = []
        skipSeparators()
        while !atEnd {
            if check(.rightBrace) {
                if untilBrace { break }
                diagnostics.append(errorHere("unexpected '}' without a matching '{'"))
                advance()
                skipSeparators()
                continue
            }
            let start = current
            do {
                statements.append(try parseStatement())
                try expectStatementEnd()
            } catch let diagnostic as Diagnostic {
                diagnostics.append(diagnostic)
                newlineSkipping = []
                synchronize()
                // Never loop without progress.
                if current == start, !atEnd, !check(.rightBrace) { advance() }
            } catch {
                preconditionFailure("parser threw a non-diagnostic error: \(error)")
            }
            skipSeparators()
        }
        return statements
    }

    mutating func expectStatementEnd() throws {
        guard atStatementEnd else {
            throw errorHere("expected end of statement (a new line or ';'), found \(token)")
        }
    }

    mutating func parseStatement() throws -> Statement {
        switch kind {
        case .keyword(let keyword) where next.kind == .question:
            // `for?`, `let?`: help on the language keyword.
            let nameToken = advance()
            advance()
            return .command(Command(name: keyword.rawValue, nameRange: nameToken.range, arguments: [],
                                    wantsHelp: true, range: range(from: nameToken.range)))
        case .keyword(.let): return try parseLet()
        case .keyword(.for): return try parseFor()
        case .keyword(.if): return try parseIf()
        case .keyword(.else):
            throw errorHere("'else' without a matching 'if'",
                            notes: [.note("at the prompt, write '} else {' on one line")])
        case .question:
            // A lone `?` is `help`.
            let questionToken = advance()
            return .command(Command(name: "help", nameRange: questionToken.range, arguments: [],
                                    wantsHelp: false, range: questionToken.range))
        case .word(let word):
            if next.kind == .assign { return try parseAssignment() }
            if word == "source", next.kind != .question { return try parseSource() }
            if word == "time", next.kind != .question { return try parseTime() }
            if startsExpression(afterWord: next) { return .expression(try parseExpression(argumentMode: false)) }
            return .command(try parseCommand())
        case .integer, .number, .string, .variable, .scriptArgument, .leftParen, .leftBracket, .minus,
             .keyword(.not), .keyword(.true), .keyword(.false):
            return .expression(try parseExpression(argumentMode: false))
        default:
            throw errorHere("expected a command, found \(token)")
        }
    }

    /// After a leading word, does an operator follow that makes the line an expression (`x + 1`, `xs[0]`)?
    func startsExpression(afterWord next: Token) -> Bool {
        switch next.kind {
        case .plus, .minus, .star, .slash, .equal, .notEqual, .less, .lessEqual, .greater, .greaterEqual,
             .keyword(.and), .keyword(.or):
            return true
        case .leftBracket, .dot:
            return !next.spaceBefore
        default:
            return false
        }
    }

    mutating func parseVariableName(after what: String) throws -> (String, SourceRange) {
        switch kind {
        case .word(let name):
            let nameToken = advance()
            if name.contains(where: { $0 == "." || $0 == "/" || $0 == "*" }) {
                throw Diagnostic.error("invalid variable name '\(name)': names may use letters, digits, '_' and '-'",
                                       at: nameToken.range)
            }
            return (name, nameToken.range)
        case .keyword(let keyword):
            throw errorHere("'\(keyword.rawValue)' is a keyword and cannot be a variable name")
        default:
            throw errorHere("expected a variable name after '\(what)', found \(token)")
        }
    }

    /// `let name = command… | expression`
    mutating func parseLet() throws -> Statement {
        let letToken = advance()
        let (name, nameRange) = try parseVariableName(after: "let")
        try expect(.assign, "'=' after 'let \(name)'")
        let value = try parseRightHandSide(recovering: true)
        return .letBinding(name: name, nameRange: nameRange, value: value, range: range(from: letToken.range))
    }

    /// `name = command… | expression`
    mutating func parseAssignment() throws -> Statement {
        let (name, nameRange) = try parseVariableName(after: "")
        advance()  // `=`
        let value = try parseRightHandSide(recovering: true)
        return .assignment(name: name, nameRange: nameRange, value: value, range: range(from: nameRange))
    }

    /// A command if it starts with a plain word not followed by an operator, else an expression. A lone
    /// word (`let y = x`) parses as a command and is resolved later: a registered command runs, otherwise
    /// it reads the variable. With `recovering`, a broken right-hand side still yields the binding (as an
    /// invalid expression) so later uses of the name do not cascade into "undefined variable" errors.
    mutating func parseRightHandSide(recovering: Bool) throws -> RightHandSide {
        let startToken = token
        do {
            if case .word(let word) = kind, !word.contains(where: { ".*/".contains($0) }), !startsExpression(afterWord: next) {
                return .command(try parseCommand())
            }
            return .expression(try parseExpression(argumentMode: false))
        } catch let diagnostic as Diagnostic where recovering {
            diagnostics.append(diagnostic)
            newlineSkipping = []
            synchronize()
            return .expression(.invalid(startToken.range))
        }
    }

    /// `name[?] (key=value | value)*`
    mutating func parseCommand() throws -> Command {
        guard case .word(let name) = kind else { throw errorHere("expected a command name, found \(token)") }
        let nameToken = advance()
        if match(.question) {
            return Command(name: name, nameRange: nameToken.range, arguments: [], wantsHelp: true,
                           range: range(from: nameToken.range))
        }
        var arguments: [Argument] = []
        while !atStatementEnd {
            arguments.append(try parseArgument())
        }
        return Command(name: name, nameRange: nameToken.range, arguments: arguments, wantsHelp: false,
                       range: range(from: nameToken.range))
    }

    mutating func parseArgument() throws -> Argument {
        // Keywords may name arguments (`freeze layer1.* for=100`).
        var labelName: String?
        if case .word(let label) = kind { labelName = label }
        if case .keyword(let keyword) = kind { labelName = keyword.rawValue }
        if let label = labelName, next.kind == .assign {
            let labelToken = advance()
            advance()  // `=`
            if atStatementEnd { throw errorHere("expected a value after '\(label)=', found \(token)") }
            let value = try parseExpression(argumentMode: true)
            return Argument(label: label, labelRange: labelToken.range, value: value,
                            range: labelToken.range.union(value.range))
        }
        let value = try parseExpression(argumentMode: true)
        return Argument(label: nil, labelRange: nil, value: value, range: value.range)
    }

    /// `for name in expression { … }`
    mutating func parseFor() throws -> Statement {
        let forToken = advance()
        let (name, nameRange) = try parseVariableName(after: "for")
        try expect(.keyword(.in), "'in' after 'for \(name)'")
        let sequence = try parseExpression(argumentMode: false)
        let body = try parseBlock(after: "the 'for' sequence")
        return .forLoop(variable: name, variableRange: nameRange, sequence: sequence, body: body,
                        range: range(from: forToken.range))
    }

    /// `if c { } (else if c { })* (else { })?` — `else` may start a new line after `}`.
    mutating func parseIf() throws -> Statement {
        let ifToken = advance()
        var branches: [ConditionalBranch] = []
        var elseBody: Block?
        let condition = try parseExpression(argumentMode: false)
        branches.append(ConditionalBranch(condition: condition, body: try parseBlock(after: "the 'if' condition")))
        while peekElse() {
            advance()  // `else`
            if match(.keyword(.if)) {
                let condition = try parseExpression(argumentMode: false)
                branches.append(ConditionalBranch(condition: condition, body: try parseBlock(after: "the 'else if' condition")))
            } else {
                elseBody = try parseBlock(after: "'else'")
                break
            }
        }
        return .conditional(branches: branches, elseBody: elseBody, range: range(from: ifToken.range))
    }

    /// Whether `else` follows, possibly after newlines (which are then consumed).
    mutating func peekElse() -> Bool {
        var look = current
        while tokens[look].kind == .newline { look += 1 }
        guard tokens[look].kind == .keyword(.else) else { return false }
        current = look
        return true
    }

    mutating func parseBlock(after what: String) throws -> Block {
        let saved = depth
        defer { depth = saved }
        try descend()
        let open = try expect(.leftBrace, "'{' after \(what)")
        let statements = parseStatements(untilBrace: true)
        guard check(.rightBrace) else {
            throw errorHere("expected '}' to close the block", notes: [.note("the block opened here", at: open.range)])
        }
        let close = advance()
        return Block(statements: statements, range: open.range.union(close.range))
    }

    /// `source path`
    mutating func parseSource() throws -> Statement {
        let sourceToken = advance()
        if atStatementEnd { throw errorHere("expected a file path after 'source', found \(token)") }
        let path = try parseExpression(argumentMode: true)
        return .source(path: path, range: range(from: sourceToken.range))
    }

    /// `time command…`
    mutating func parseTime() throws -> Statement {
        let timeToken = advance()
        guard case .word = kind else { throw errorHere("expected a command after 'time', found \(token)") }
        let command = try parseCommand()
        return .time(command, range: range(from: timeToken.range))
    }

    // MARK: Expressions

    /// In `argumentMode` (a command argument), a negative literal after an operand starts the next
    /// argument (`print x -1` is two arguments); elsewhere it subtracts (`let y = x -1`).
    mutating func parseExpression(argumentMode: Bool) throws -> ExpressionNode {
        let saved = depth
        defer { depth = saved }
        try descend()
        return try parseOr(argumentMode)
    }

    /// A left-associative chain `operand (operator operand)*`. `nextOperator` consumes an operator
    /// token and returns its meaning, or returns nil, consuming nothing, where the chain ends. Each
    /// operator counts one level against `maxDepth`, as a nested bracket does.
    mutating func parseChain(_ mode: Bool, operand: (inout Parser, Bool) throws -> ExpressionNode,
                             nextOperator: (inout Parser) -> BinaryOperator?) throws -> ExpressionNode {
        let saved = depth
        defer { depth = saved }
        var left = try operand(&self, mode)
        while let op = nextOperator(&self) {
            try descend()
            let right = try operand(&self, mode)
            left = .binary(op, left, right, left.range.union(right.range))
        }
        return left
    }

    mutating func parseOr(_ mode: Bool) throws -> ExpressionNode {
        try parseChain(mode, operand: { try $0.parseAnd($1) }, nextOperator: { $0.match(.keyword(.or)) ? .or : nil })
    }

    mutating func parseAnd(_ mode: Bool) throws -> ExpressionNode {
        try parseChain(mode, operand: { try $0.parseNot($1) }, nextOperator: { $0.match(.keyword(.and)) ? .and : nil })
    }

    /// `prefix* operand`: each `prefix` token (counted against `maxDepth`) applies `op` to what follows.
    mutating func parsePrefix(_ mode: Bool, _ prefix: TokenKind, _ op: UnaryOperator,
                              operand: (inout Parser, Bool) throws -> ExpressionNode) throws -> ExpressionNode {
        guard check(prefix) else { return try operand(&self, mode) }
        let saved = depth
        defer { depth = saved }
        try descend()
        let prefixToken = advance()
        let inner = try parsePrefix(mode, prefix, op, operand: operand)
        return .unary(op, inner, prefixToken.range.union(inner.range))
    }

    mutating func parseNot(_ mode: Bool) throws -> ExpressionNode {
        try parsePrefix(mode, .keyword(.not), .not, operand: { try $0.parseComparison($1) })
    }

    static func comparison(_ kind: TokenKind) -> BinaryOperator? {
        switch kind {
        case .equal: return .equal
        case .notEqual: return .notEqual
        case .less: return .less
        case .lessEqual: return .lessEqual
        case .greater: return .greater
        case .greaterEqual: return .greaterEqual
        default: return nil
        }
    }

    mutating func parseComparison(_ mode: Bool) throws -> ExpressionNode {
        let left = try parseAdditive(mode)
        guard let op = Parser.comparison(kind) else { return left }
        advance()
        let right = try parseAdditive(mode)
        if Parser.comparison(kind) != nil {
            throw errorHere("comparisons cannot be chained; combine them with 'and'")
        }
        return .binary(op, left, right, left.range.union(right.range))
    }

    mutating func parseAdditive(_ mode: Bool) throws -> ExpressionNode {
        try parseChain(mode, operand: { try $0.parseMultiplicative($1) }, nextOperator: { parser in
            if parser.match(.plus) { return .add }
            if parser.match(.minus) { return .subtract }
            // `x -1` where only one expression can stand: a subtraction (the literal keeps its sign).
            if !mode, parser.token.isNegativeLiteral { return .add }
            return nil
        })
    }

    mutating func parseMultiplicative(_ mode: Bool) throws -> ExpressionNode {
        try parseChain(mode, operand: { try $0.parseUnary($1) }, nextOperator: { parser in
            parser.match(.star) ? .multiply : (parser.match(.slash) ? .divide : nil)
        })
    }

    mutating func parseUnary(_ mode: Bool) throws -> ExpressionNode {
        try parsePrefix(mode, .minus, .negate, operand: { try $0.parsePostfix($1) })
    }

    /// `primary ( [index] | .field )*` — only when glued to the operand (no space before `[` or `.`).
    mutating func parsePostfix(_ mode: Bool) throws -> ExpressionNode {
        var expression = try parsePrimary(mode)
        while true {
            if check(.leftBracket), !token.spaceBefore {
                advance()
                enterNesting(skippingNewlines: true)
                let index = try parseExpression(argumentMode: false)
                leaveNesting()
                try expect(.rightBracket, "']' after the index")
                expression = .index(expression, index, expression.range.union(previousRange))
            } else if check(.dot), !token.spaceBefore {
                advance()
                guard case .word(let path) = kind, !token.spaceBefore else {
                    throw errorHere("expected a field name after '.', found \(token)")
                }
                advance()
                for name in path.split(separator: ".") {
                    expression = .field(expression, String(name), expression.range.union(previousRange))
                }
            } else {
                return expression
            }
        }
    }

    mutating func parsePrimary(_ mode: Bool) throws -> ExpressionNode {
        let t = token
        switch t.kind {
        case .keyword(let keyword) where mode && ![.true, .false, .not].contains(keyword):
            // Where an argument stands a keyword is just a word (`help for`).
            advance()
            return .word(keyword.rawValue, t.range)
        case .integer(let value): advance(); return .integer(value, t.range)
        case .number(let value): advance(); return .number(value, t.range)
        case .string(let value): advance(); return .string(value, t.range)
        case .keyword(.true): advance(); return .bool(true, t.range)
        case .keyword(.false): advance(); return .bool(false, t.range)
        case .word(let word): advance(); return .word(word, t.range)
        case .variable(let name): advance(); return .variable(name, t.range)
        case .scriptArgument(let index): advance(); return .scriptArgument(index, t.range)
        case .leftParen:
            advance()
            enterNesting(skippingNewlines: false)
            let inner = try parseExpression(argumentMode: false)
            leaveNesting()
            try expect(.rightParen, "')'", notes: [.note("to match this '('", at: t.range)])
            return rangeReplaced(inner, t.range.union(previousRange))
        case .leftBracket:
            advance()
            enterNesting(skippingNewlines: true)
            var elements: [ExpressionNode] = []
            while !check(.rightBracket) {
                elements.append(try parseExpression(argumentMode: false))
                if !match(.comma) {
                    guard check(.rightBracket) else {
                        throw errorHere("expected ',' or ']' in the list, found \(token)",
                                        notes: [.note("the list starts here", at: t.range)])
                    }
                }
            }
            leaveNesting()
            advance()
            return .list(elements, t.range.union(previousRange))
        case .keyword(let keyword):
            throw errorHere("expected a value, found the keyword '\(keyword.rawValue)'")
        default:
            throw errorHere("expected a value, found \(t)")
        }
    }

    /// Parenthesised expressions keep their node but report the parenthesised range for literals
    /// and words (so an error under `(x)` underlines the parentheses' content as written).
    func rangeReplaced(_ expression: ExpressionNode, _ range: SourceRange) -> ExpressionNode {
        switch expression {
        case .integer(let v, _): return .integer(v, range)
        case .number(let v, _): return .number(v, range)
        case .string(let v, _): return .string(v, range)
        case .bool(let v, _): return .bool(v, range)
        case .list(let v, _): return .list(v, range)
        case .unary(let op, let e, _): return .unary(op, e, range)
        case .binary(let op, let l, let r, _): return .binary(op, l, r, range)
        case .word, .variable, .scriptArgument, .field, .index, .invalid:
            // A word in parentheses must be a variable, never text: mark it by making it `$name`.
            if case .word(let name, _) = expression { return .variable(name, range) }
            return expression
        }
    }
}
