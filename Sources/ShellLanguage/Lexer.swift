// Lexer: source text -> tokens with ranges (phase 1 of 4: Lexer, Parser, Checker, Interpreter).
//
// Words are generous because they double as unquoted text: inside a word `-` joins when a letter
// follows (`freeze-both`, `min-max`), `.` and `/` join when a letter, digit, `_` or `*` follows
// (`layer1.0.conv1`, `r.ood`, `runs/a.json`), and `*` joins anywhere after the first character
// (`layer1.*`); a word may also start with `~/`. The price: arithmetic between two names needs
// spaces (`n * 2`, `a - b`). Absolute paths and paths with other characters are quoted.
//
// A `-` directly followed by a digit lexes as part of a negative number literal when it starts an
// argument (after whitespace, a line start, `(`, `[`, `,`, `=`, `{` or `;`), so `print x -1` passes two
// arguments while `x - 1` and `x-1` subtract. The parser turns `x -1` back into a subtraction where
// only one expression can stand (`let y = x -1`).
import Foundation

public enum Keyword: String, CaseIterable, Sendable {
    case `let`, `for`, `in`, `if`, `else`, and, or, not, `true`, `false`
}

public enum TokenKind: Equatable {
    /// A bare word: a command name, keyword name, variable (with `.field` path) or unquoted text.
    case word(String)
    case integer(Int)
    case number(Double)
    case string(String)
    /// `$1`, `$2`, … (and `$0`, the script name).
    case scriptArgument(Int)
    /// `$name` or `$name.field`: always a variable, never text.
    case variable(String)
    case keyword(Keyword)
    case leftBracket, rightBracket, leftBrace, rightBrace, leftParen, rightParen
    case assign, comma, dot, question, semicolon, newline
    case equal, notEqual, less, lessEqual, greater, greaterEqual
    case plus, minus, star, slash
    case endOfFile
}

public struct Token: CustomStringConvertible {
    public let kind: TokenKind
    public let range: SourceRange
    /// Whitespace, a comment or a line start came right before this token.
    public let spaceBefore: Bool

    /// True for a number literal written with a leading minus (`-1`).
    var isNegativeLiteral: Bool {
        switch kind {
        case .integer, .number: return range.source.scalars[range.start] == "-"
        default: return false
        }
    }

    public var description: String { Token.describe(kind) }

    /// How a token is named in error messages.
    static func describe(_ kind: TokenKind) -> String {
        switch kind {
        case .word(let w): return "'\(w)'"
        case .integer(let i): return "number \(i)"
        case .number(let d): return "number \(Value.number(d).displayString)"
        case .string: return "string"
        case .scriptArgument(let n): return "'$\(n)'"
        case .variable(let v): return "'$\(v)'"
        case .keyword(let k): return "'\(k.rawValue)'"
        case .leftBracket: return "'['"
        case .rightBracket: return "']'"
        case .leftBrace: return "'{'"
        case .rightBrace: return "'}'"
        case .leftParen: return "'('"
        case .rightParen: return "')'"
        case .assign: return "'='"
        case .comma: return "','"
        case .dot: return "'.'"
        case .question: return "'?'"
        case .semicolon: return "';'"
        case .newline: return "end of line"
        case .equal: return "'=='"
        case .notEqual: return "'!='"
        case .less: return "'<'"
        case .lessEqual: return "'<='"
        case .greater: return "'>'"
        case .greaterEqual: return "'>='"
        case .plus: return "'+'"
        case .minus: return "'-'"
        case .star: return "'*'"
        case .slash: return "'/'"
        case .endOfFile: return "end of input"
        }
    }
}

public struct LexResult {
    public var tokens: [Token]
    public var diagnostics: [Diagnostic]
    /// The text ends inside a string, a `[ ]` list, a `{ }` block or after a `\` line continuation:
    /// a REPL should ask for another line rather than report an error.
    public var isIncomplete: Bool
}

public struct Lexer {
    let source: Source
    let scalars: [Unicode.Scalar]
    var position = 0
    var tokens: [Token] = []
    var diagnostics: [Diagnostic] = []
    /// Open `{` and `[`, for the REPL's "needs another line" question. (Parentheses stay on one line.)
    var openerDepth = 0
    var incomplete = false
    var spaceBefore = true

    public init(source: Source) {
        self.source = source
        self.scalars = source.scalars
    }

    public static func tokenize(_ source: Source) -> LexResult {
        var lexer = Lexer(source: source)
        return lexer.run()
    }

    mutating func run() -> LexResult {
        while true {
            skipTrivia()
            guard position < scalars.count else { break }
            lexToken()
        }
        if openerDepth > 0 { incomplete = true }
        tokens.append(Token(kind: .endOfFile, range: range(scalars.count, scalars.count), spaceBefore: true))
        return LexResult(tokens: tokens, diagnostics: diagnostics, isIncomplete: incomplete)
    }

    // MARK: Character classes

    static func isLetter(_ c: Unicode.Scalar) -> Bool {
        c == "_" || (c.isASCII ? (("a"..."z").contains(c) || ("A"..."Z").contains(c)) : c.properties.isAlphabetic)
    }
    static func isDigit(_ c: Unicode.Scalar) -> Bool { ("0"..."9").contains(c) }
    static func isWordCharacter(_ c: Unicode.Scalar) -> Bool { isLetter(c) || isDigit(c) }

    func peek(_ ahead: Int = 0) -> Unicode.Scalar? {
        let index = position + ahead
        return index < scalars.count ? scalars[index] : nil
    }

    func range(_ start: Int, _ end: Int) -> SourceRange { SourceRange(source: source, start: start, end: end) }

    mutating func add(_ kind: TokenKind, from start: Int) {
        tokens.append(Token(kind: kind, range: range(start, position), spaceBefore: spaceBefore))
        spaceBefore = false
    }

    mutating func error(_ message: String, _ start: Int, _ end: Int, notes: [Diagnostic] = []) {
        diagnostics.append(.error(message, at: range(start, max(end, start)), notes: notes))
    }

    // MARK: Trivia

    /// Skips spaces, tabs, carriage returns, comments and `\`-newline continuations.
    mutating func skipTrivia() {
        while let c = peek() {
            if c == " " || c == "\t" || c == "\r" {
                position += 1
                spaceBefore = true
            } else if c == "#" {
                while let d = peek(), d != "\n" { position += 1 }
                spaceBefore = true
            } else if c == "\\" {
                // A backslash before the end of the line joins the next line (trailing spaces allowed).
                var look = position + 1
                while look < scalars.count, scalars[look] == " " || scalars[look] == "\t" || scalars[look] == "\r" {
                    look += 1
                }
                if look == scalars.count {
                    incomplete = true
                    position = look
                } else if scalars[look] == "\n" {
                    position = look + 1
                } else {
                    return
                }
                spaceBefore = true
            } else {
                return
            }
        }
    }

    // MARK: Tokens

    mutating func lexToken() {
        let start = position
        let c = scalars[position]
        // `~/data/PACS`: a home-relative path is a word too.
        if Lexer.isLetter(c) || (c == "~" && peek(1) == "/") {
            let word = scanWord()
            if let keyword = Keyword(rawValue: word) { add(.keyword(keyword), from: start) } else { add(.word(word), from: start) }
            return
        }
        if Lexer.isDigit(c) {
            lexNumber(start: start, negative: false)
            return
        }
        // An absolute or relative path that starts an argument (`/data/PACS`, `./runs/a.fqs`,
        // `../fp.safetensors`): a word up to white space or a delimiter. Division never starts one.
        if (c == "/" || (c == "." && (peek(1) == "/" || (peek(1) == "." && peek(2) == "/")))), startsArgument(before: start),
           let next = peek(1), next != " " && next != "\t" && next != "\n" {
            position += 1
            while let d = peek(), !" \t\r\n,;[](){}\"=#".unicodeScalars.contains(d) { position += 1 }
            add(.word(source.slice(start, position)), from: start)
            return
        }
        // A glob that starts an argument (`freeze *.a.s`, `disorder *conv1*`): a word. A `*` followed
        // by a space stays multiplication (`n * 2`); a lone glob `*` is written "*".
        if c == "*", startsArgument(before: start), let next = peek(1), next == "." || next == "*" || Lexer.isLetter(next) {
            _ = scanWord()
            add(.word(source.slice(start, position)), from: start)
            return
        }
        position += 1
        switch c {
        case "\n":
            // Always a token: the parser skips newlines inside `[ ]` itself, so an unclosed bracket
            // cannot hide the statement boundaries error recovery needs.
            add(.newline, from: start)
            spaceBefore = true
        case "\"": lexString(start: start)
        case "$": lexDollar(start: start)
        case "[": open(); add(.leftBracket, from: start)
        case "]": close(); add(.rightBracket, from: start)
        case "(": add(.leftParen, from: start)
        case ")": add(.rightParen, from: start)
        case "{": open(); add(.leftBrace, from: start)
        case "}": close(); add(.rightBrace, from: start)
        case ",": add(.comma, from: start)
        case ";": add(.semicolon, from: start)
        case ".": add(.dot, from: start)
        case "?": add(.question, from: start)
        case "+": add(.plus, from: start)
        case "*": add(.star, from: start)
        case "/": add(.slash, from: start)
        case "-":
            if let next = peek(), Lexer.isDigit(next), startsArgument(before: start) {
                lexNumber(start: start, negative: true)
            } else {
                add(.minus, from: start)
            }
        case "=":
            if peek() == "=" { position += 1; add(.equal, from: start) } else { add(.assign, from: start) }
        case "!":
            if peek() == "=" {
                position += 1
                add(.notEqual, from: start)
            } else {
                error("unexpected '!'; write 'not' for negation", start, position)
            }
        case "<":
            if peek() == "=" { position += 1; add(.lessEqual, from: start) } else { add(.less, from: start) }
        case ">":
            if peek() == "=" { position += 1; add(.greaterEqual, from: start) } else { add(.greater, from: start) }
        case "'":
            error("strings use double quotes: \"…\"", start, position)
        default:
            error("unexpected character '\(c)'", start, position)
        }
    }

    mutating func open() { openerDepth += 1 }
    mutating func close() { openerDepth = max(0, openerDepth - 1) }

    /// Whether a `-` at `start` begins a new argument rather than following an operand.
    func startsArgument(before start: Int) -> Bool {
        guard start > 0 else { return true }
        let previous = scalars[start - 1]
        return [" ", "\t", "\n", "\r", "(", "[", ",", "=", "{", ";"].contains(previous)
    }

    /// Scans a word starting at a letter (see the file comment for the joining rules).
    mutating func scanWord() -> String {
        let start = position
        position += 1
        while let c = peek() {
            if Lexer.isWordCharacter(c) || c == "*" {
                position += 1
            } else if c == "-" || c == "+", let next = peek(1), Lexer.isLetter(next) {
                // `no-unfreeze`, `qat+sagm`: joined words (arithmetic between names needs spaces).
                position += 1
            } else if c == "." || c == "/", let next = peek(1), Lexer.isWordCharacter(next) || next == "*" {
                position += 1
            } else {
                break
            }
        }
        return source.slice(start, position)
    }

    /// Numbers: `4`, `10_000`, `0.5`, `1e-3`, `2.5E+4`, and negative literals (the `-` already consumed).
    mutating func lexNumber(start: Int, negative: Bool) {
        var isInteger = true
        func digits() { while let c = peek(), Lexer.isDigit(c) || (c == "_" && peek(1).map(Lexer.isDigit) == true) { position += 1 } }
        digits()
        if peek() == ".", let next = peek(1), Lexer.isDigit(next) {
            isInteger = false
            position += 1
            digits()
        }
        if let e = peek(), e == "e" || e == "E" {
            var look = 1
            if let sign = peek(1), sign == "+" || sign == "-" { look = 2 }
            if let d = peek(look), Lexer.isDigit(d) {
                isInteger = false
                position += look
                digits()
            }
        }
        // A range such as `-1:1:21` (min:max:count) is text.
        if peek() == ":", let next = peek(1), Lexer.isDigit(next) || next == "-" {
            while let c = peek(), Lexer.isDigit(c) || c == "." || c == ":" || c == "-" || c == "e" { position += 1 }
            add(.string(source.slice(start, position)), from: start)
            return
        }
        // A number glued to letters (`4bit`) is almost certainly meant as text.
        if let c = peek(), Lexer.isLetter(c) {
            while let c = peek(), Lexer.isWordCharacter(c) || c == "." || c == "-" { position += 1 }
            let text = source.slice(start, position)
            error("invalid number '\(text)'; quote it if it is text: \"\(text)\"", start, position)
            add(.string(text), from: start)
            return
        }
        let text = source.slice(start, position).replacingOccurrences(of: "_", with: "")
        if isInteger, let value = Int(text) {
            add(.integer(value), from: start)
        } else if let value = Double(text), value.isFinite {
            add(.number(value), from: start)
        } else {
            error("number '\(text)' is too large (numbers must be within ±1.8e308)", start, position)
            add(.integer(0), from: start)
        }
    }

    /// `"…"` with escapes `\n \t \r \\ \" \$ \u{…}`; may span lines.
    mutating func lexString(start: Int) {
        var value = String.UnicodeScalarView()
        while true {
            guard let c = peek() else {
                incomplete = true
                error("unterminated string", start, start + 1,
                      notes: [.note("add a closing '\"'")])
                add(.string(String(value)), from: start)
                return
            }
            position += 1
            if c == "\"" { break }
            if c != "\\" {
                value.append(c)
                continue
            }
            let escapeStart = position - 1
            guard let e = peek() else { continue }
            position += 1
            switch e {
            case "n": value.append("\n")
            case "t": value.append("\t")
            case "r": value.append("\r")
            case "\\": value.append("\\")
            case "\"": value.append("\"")
            case "$": value.append("$")
            case "0": value.append("\0")
            case "\n": break  // a backslash-newline inside a string joins the lines
            case "u":
                if peek() == "{", let close = scalars[position..<min(position + 10, scalars.count)].firstIndex(of: "}"),
                   let code = UInt32(source.slice(position + 1, close), radix: 16), let scalar = Unicode.Scalar(code) {
                    value.append(scalar)
                    position = close + 1
                } else {
                    error("invalid unicode escape; write \\u{hex}", escapeStart, position)
                }
            default:
                error("unknown escape '\\\(e)' in string; valid escapes: \\n \\t \\r \\\\ \\\" \\$ \\u{…}", escapeStart, position)
                value.append(e)
            }
        }
        add(.string(String(value)), from: start)
    }

    /// `$1` (script argument) or `$name` (variable).
    mutating func lexDollar(start: Int) {
        if let c = peek(), Lexer.isDigit(c) {
            while let d = peek(), Lexer.isDigit(d) { position += 1 }
            let digits = source.slice(start + 1, position)
            guard let index = Int(digits), index <= 1_000_000 else {
                error("script argument '$\(digits)' is out of range (at most $1000000)", start, position)
                add(.scriptArgument(0), from: start)
                return
            }
            add(.scriptArgument(index), from: start)
        } else if let c = peek(), Lexer.isLetter(c) {
            let name = scanWord()
            add(.variable(name), from: start)
        } else {
            error("'$' must be followed by a number ($1) or a variable name ($name)", start, position)
        }
    }
}
