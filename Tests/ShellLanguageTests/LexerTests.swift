import XCTest
@testable import ShellLanguage

final class LexerTests: XCTestCase {
    func kinds(_ text: String) -> [TokenKind] {
        Lexer.tokenize(Source(name: "t", text: text)).tokens.map(\.kind).filter { $0 != .endOfFile }
    }

    func testCommandWithKeywordArguments() {
        XCTAssertEqual(kinds("train fqat steps=2000 lr=1e-3 tau=-0.5 bits=4"), [
            .word("train"), .word("fqat"), .word("steps"), .assign, .integer(2000), .word("lr"), .assign, .number(0.001),
            .word("tau"), .assign, .number(-0.5), .word("bits"), .assign, .integer(4),
        ])
    }

    func testWordsJoinDotsHyphensSlashesAndStars() {
        XCTAssertEqual(kinds("layer1.0.conv1 freeze-both runs/a.json layer1.* r.ood _x2"), [
            .word("layer1.0.conv1"), .word("freeze-both"), .word("runs/a.json"), .word("layer1.*"), .word("r.ood"), .word("_x2"),
        ])
        // A hyphen before a digit does not join: `a-1` is a subtraction.
        XCTAssertEqual(kinds("a-1"), [.word("a"), .minus, .integer(1)])
        // Spaces make operators.
        XCTAssertEqual(kinds("n * 2 / a - b"), [.word("n"), .star, .integer(2), .slash, .word("a"), .minus, .word("b")])
    }

    func testNegativeLiteralOnlyWhereAnArgumentStarts() {
        XCTAssertEqual(kinds("x -1"), [.word("x"), .integer(-1)])
        XCTAssertEqual(kinds("x - 1"), [.word("x"), .minus, .integer(1)])
        XCTAssertEqual(kinds("[1,-2]"), [.leftBracket, .integer(1), .comma, .integer(-2), .rightBracket])
        XCTAssertEqual(kinds("(x)-1"), [.leftParen, .word("x"), .rightParen, .minus, .integer(1)])
    }

    func testNumbers() {
        XCTAssertEqual(kinds("4 10_000 0.5 1e-3 2.5E+2 7e2"), [
            .integer(4), .integer(10000), .number(0.5), .number(0.001), .number(250), .number(700),
        ])
        let result = Lexer.tokenize(Source(name: "t", text: "bits=4bit"))
        XCTAssertEqual(result.diagnostics.map(\.summary), ["1:6: invalid number '4bit'; quote it if it is text: \"4bit\""])
    }

    func testStringsAndEscapes() {
        XCTAssertEqual(kinds(#""a\"b\\c\n\t\u{41}\$""#), [.string("a\"b\\c\n\tA$")])
        XCTAssertEqual(kinds("\"two\nlines\""), [.string("two\nlines")])
        let bad = Lexer.tokenize(Source(name: "t", text: #"print "a\qb""#))
        XCTAssertEqual(bad.diagnostics.map(\.summary).first?.hasPrefix("1:9: unknown escape '\\q'"), true)
    }

    func testUnterminatedStringIsIncomplete() {
        let result = Lexer.tokenize(Source(name: "t", text: "print \"abc"))
        XCTAssertTrue(result.isIncomplete)
        XCTAssertEqual(result.diagnostics.map(\.summary), ["1:7: unterminated string"])
    }

    func testIncompleteBlocksListsAndContinuations() {
        XCTAssertTrue(Repl.needsMoreInput("for x in [1, 2] {"))
        XCTAssertTrue(Repl.needsMoreInput("let xs = [1,"))
        XCTAssertTrue(Repl.needsMoreInput("train fqat \\"))
        XCTAssertFalse(Repl.needsMoreInput("for x in [1, 2] { print x }"))
        XCTAssertFalse(Repl.needsMoreInput("print (1 +"), "parentheses stay on one line")
        XCTAssertFalse(Repl.needsMoreInput("print \"}\" # {"))
    }

    func testDollarForms() {
        XCTAssertEqual(kinds("$1 $12 $name $r.ood"), [.scriptArgument(1), .scriptArgument(12), .variable("name"), .variable("r.ood")])
        XCTAssertEqual(Lexer.tokenize(Source(name: "t", text: "$ x")).diagnostics.count, 1)
    }

    func testCommentsSeparatorsContinuationKeywords() {
        XCTAssertEqual(kinds("a # comment\nb; c \\\n d"), [.word("a"), .newline, .word("b"), .semicolon, .word("c"), .word("d")])
        XCTAssertEqual(kinds("let for in if else and or not true false"), Keyword.allCases.map { .keyword($0) })
        XCTAssertEqual(kinds("== != < <= > >= ? . ,"), [.equal, .notEqual, .less, .lessEqual, .greater, .greaterEqual, .question, .dot, .comma])
        XCTAssertEqual(kinds("train?"), [.word("train"), .question])
    }

    func testTokenRangesAreLineAndColumn() {
        let tokens = Lexer.tokenize(Source(name: "t", text: "a\n  bb=\"x y\"\n\tcc")).tokens
        let located = tokens.filter { $0.kind != .newline && $0.kind != .endOfFile }.map { "\($0.range.startLocation)-\($0.range.endLocation)" }
        XCTAssertEqual(located, ["1:1-1:2", "2:3-2:5", "2:5-2:6", "2:6-2:11", "3:2-3:4"])
    }

    func testUnexpectedCharacters() {
        let result = Lexer.tokenize(Source(name: "t", text: "a ! b 'c' @"))
        XCTAssertEqual(result.diagnostics.map(\.summary), [
            "1:3: unexpected '!'; write 'not' for negation",
            "1:7: strings use double quotes: \"…\"",
            "1:9: strings use double quotes: \"…\"",
            "1:11: unexpected character '@'",
        ])
    }
}

final class LexerShellWordTests: XCTestCase {
    /// Method names with `+`, globs that start with `*`, and grid ranges are single arguments.
    func testShellWords() {
        let output = CapturingOutput()
        let registry = CommandRegistry(includeBuiltins: true)
        let interpreter = Interpreter(registry: registry, output: output)
        let result = interpreter.run(Source(name: "t", text: "print qat+sagm *.a.s layer3.*conv1* -1:1:21 0:2:5\nlet n = 3\nprint n * 2"))
        XCTAssertEqual(result.status, 0, output.error)
        XCTAssertEqual(output.standardLines, ["qat+sagm *.a.s layer3.*conv1* -1:1:21 0:2:5", "6"])
    }
}

final class LexerPathWordTests: XCTestCase {
    func testPathsStartingWithSlashOrDotAreWords() {
        let output = CapturingOutput()
        let interpreter = Interpreter(registry: CommandRegistry(includeBuiltins: true), output: output)
        let result = interpreter.run(Source(name: "t", text: "print /tmp/a.safetensors ./runs/x.fqs ../fp.safetensors [/a/b, /c]\nlet n = 6\nprint n / 2"))
        XCTAssertEqual(result.status, 0, output.error)
        XCTAssertEqual(output.standardLines, ["/tmp/a.safetensors ./runs/x.fqs ../fp.safetensors [\"/a/b\", \"/c\"]", "3.0"])
    }
}
