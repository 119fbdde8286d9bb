import XCTest
@testable import ShellLanguage

/// A compact text form of the AST for assertions.
func sexpr(_ e: ExpressionNode) -> String {
    switch e {
    case .integer(let i, _): return "\(i)"
    case .number(let d, _): return Value.number(d).description
    case .string(let s, _): return Value.quote(s)
    case .bool(let b, _): return "\(b)"
    case .word(let w, _): return w
    case .variable(let v, _): return "$\(v)"
    case .scriptArgument(let n, _): return "$\(n)"
    case .list(let items, _): return "[" + items.map(sexpr).joined(separator: " ") + "]"
    case .unary(let op, let x, _): return "(\(op.rawValue) \(sexpr(x)))"
    case .binary(let op, let l, let r, _): return "(\(op.rawValue) \(sexpr(l)) \(sexpr(r)))"
    case .field(let b, let n, _): return "(. \(sexpr(b)) \(n))"
    case .index(let b, let i, _): return "(index \(sexpr(b)) \(sexpr(i)))"
    case .invalid: return "<invalid>"
    }
}

func sexpr(_ c: Command) -> String {
    let args = c.arguments.map { ($0.label.map { "\($0)=" } ?? "") + sexpr($0.value) }
    return "(" + ([c.name + (c.wantsHelp ? "?" : "")] + args).joined(separator: " ") + ")"
}

func sexpr(_ s: Statement) -> String {
    switch s {
    case .command(let c): return sexpr(c)
    case .expression(let e): return "(expr \(sexpr(e)))"
    case .letBinding(let n, _, let v, _): return "(let \(n) \(sexpr(v)))"
    case .assignment(let n, _, let v, _): return "(set \(n) \(sexpr(v)))"
    case .forLoop(let v, _, let seq, let body, _): return "(for \(v) \(sexpr(seq)) \(sexpr(body)))"
    case .conditional(let branches, let elseBody, _):
        let parts = branches.map { "\(sexpr($0.condition)) \(sexpr($0.body))" } + (elseBody.map { ["else " + sexpr($0)] } ?? [])
        return "(if " + parts.joined(separator: " ") + ")"
    case .source(let p, _): return "(source \(sexpr(p)))"
    case .time(let c, _): return "(time \(sexpr(c)))"
    }
}

func sexpr(_ v: RightHandSide) -> String {
    switch v {
    case .command(let c): return sexpr(c)
    case .expression(let e): return sexpr(e)
    }
}

func sexpr(_ b: Block) -> String { "{" + b.statements.map(sexpr).joined(separator: " ") + "}" }

final class ParserTests: XCTestCase {
    func parse(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> [String] {
        let result = Parser.parse(Source(name: "t.fqs", text: text))
        XCTAssertEqual(result.diagnostics.map(\.summary), [], file: file, line: line)
        return result.program.statements.map(sexpr)
    }

    func testCommands() {
        XCTAssertEqual(parse("train fqat steps=2000 layers=[a, b.c] tau=$1"),
                       ["(train fqat steps=2000 layers=[a b.c] tau=$1)"])
        XCTAssertEqual(parse("train?\n?\nfor?"), ["(train?)", "(help)", "(for?)"])
        XCTAssertEqual(parse("print x -1 x - 1 (x -1) -2"), ["(print x -1 (- x 1) (+ x -1) -2)"])
        XCTAssertEqual(parse("print r.ood * 100 xs[0].name"), ["(print (* r.ood 100) (. (index xs 0) name))"])
        XCTAssertEqual(parse("print xs [0]"), ["(print xs [0])"], "a space before '[' starts a new argument")
    }

    func testLetAssignmentAndRightHandSides() {
        XCTAssertEqual(parse("let r = eval split=test\nlet y = x\nlet z = x + 1\nlet o = r.ood\nz = eval\nlet w = $x -1"), [
            "(let r (eval split=test))", "(let y (x))", "(let z (+ x 1))", "(let o r.ood)", "(set z (eval))", "(let w (+ $x -1))",
        ])
    }

    func testPrecedence() {
        XCTAssertEqual(parse("1 + 2 * 3 - 4 / 2"), ["(expr (- (+ 1 (* 2 3)) (/ 4 2)))"])
        XCTAssertEqual(parse("not a == b and c < 1 or d"), ["(expr (or (and (not (== a b)) (< c 1)) d))"])
        XCTAssertEqual(parse("-x * 2"), ["(expr (* (- x) 2))"])
    }

    func testBlocks() {
        XCTAssertEqual(parse("for b in [3, 4] {\n  quantize lsq bits=b\n  train fqat\n}"),
                       ["(for b [3 4] {(quantize lsq bits=b) (train fqat)})"])
        XCTAssertEqual(parse("if a { x } else if b { y } else { z }"), ["(if a {(x)} b {(y)} else {(z)})"])
        XCTAssertEqual(parse("if a {\n x\n}\nelse {\n y\n}\nprint 1"), ["(if a {(x)} else {(y)})", "(print 1)"])
        XCTAssertEqual(parse("for x in xs { }; time train fqat; source \"a.fqs\""),
                       ["(for x xs {})", "(time (train fqat))", "(source \"a.fqs\")"])
    }

    func testListsSpanLines() {
        XCTAssertEqual(parse("let xs = [\n  1,\n  2,  # two\n]\nprint xs"), ["(let xs [1 2])", "(print xs)"])
    }

    func testRangesOfNodes() {
        let result = Parser.parse(Source(name: "t", text: "x = 1\n  train fqat steps=4"))
        let command = result.program.statements[1]
        XCTAssertEqual(command.range.startLocation, SourceLocation(line: 2, column: 3))
        XCTAssertEqual(command.range.endLocation, SourceLocation(line: 2, column: 21))
        guard case .command(let c) = command else { return XCTFail() }
        XCTAssertEqual(c.arguments[1].range.text, "steps=4")
        XCTAssertEqual(c.arguments[1].labelRange?.text, "steps")
    }

    /// Panic-mode recovery: every broken statement is reported once, with its exact place, and the
    /// good statements around them still parse.
    func testRecoveryReportsEveryError() {
        let text = """
        print 1
        let = 3
        train fqat steps=
        print 2
        if x { print 3 ) }
        for y in [1, 2 {
          print y
        }
        print (4 +
        print 5 }
        print 6
        """
        let result = Parser.parse(Source(name: "r.fqs", text: text))
        XCTAssertEqual(result.diagnostics.map(\.summary), [
            "2:5: expected a variable name after 'let', found '='",
            "3:18: expected a value after 'steps=', found end of line",
            "5:16: expected a value, found ')'",
            "6:16: expected ',' or ']' in the list, found '{'",
            "9:11: expected a value, found end of line",
            "10:9: unexpected '}' without a matching '{'",
        ])
        // The good statements around the errors survive (line 10's `print 5` parses before its stray `}`).
        XCTAssertEqual(result.program.statements.map(sexpr), ["(print 1)", "(print 2)", "(if x {})", "(print 5)", "(print 6)"])
    }

    func testRenderedCaretText() {
        let result = Parser.parse(Source(name: "r.fqs", text: "print 1\n\ttrain fqat steps=[1, 2\n"))
        XCTAssertEqual(result.diagnostics.first?.rendered(), """
        r.fqs:2:24: error: expected ',' or ']' in the list, found end of input
        \ttrain fqat steps=[1, 2
        \t                      ^
        r.fqs:2:19: note: the list starts here
        \ttrain fqat steps=[1, 2
        \t                 ^

        """)
    }

    func testUnclosedBlockPointsAtItsBrace() {
        let result = Parser.parse(Source(name: "b.fqs", text: "for x in [1] {\n  print x\n"))
        XCTAssertEqual(result.diagnostics.map(\.summary), ["3:1: expected '}' to close the block"])
        XCTAssertEqual(result.diagnostics.first?.notes.first?.summary, "1:14: the block opened here")
        XCTAssertTrue(result.isIncomplete)
    }

    /// The examples in docs/language.md are real syntax.
    func testLanguageDocumentationExamplesParse() throws {
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/language.md")
        let text = try String(contentsOf: docs, encoding: .utf8)
        let blocks = text.components(separatedBy: "```fqs\n").dropFirst().map { $0.components(separatedBy: "```")[0] }
        XCTAssertFalse(blocks.isEmpty)
        for block in blocks {
            XCTAssertEqual(Parser.parse(Source(name: "doc", text: block)).diagnostics.map(\.summary), [], block)
        }
    }

    func testElseWithoutIfAndKeywordNames() {
        let result = Parser.parse(Source(name: "e", text: "else { }\nlet for = 1\nlet a.b = 2\n1 < 2 < 3"))
        XCTAssertEqual(result.diagnostics.map(\.summary), [
            "1:1: 'else' without a matching 'if'",
            "2:5: 'for' is a keyword and cannot be a variable name",
            "3:5: invalid variable name 'a.b': names may use letters, digits, '_' and '-'",
            "4:7: comparisons cannot be chained; combine them with 'and'",
        ])
    }
}
