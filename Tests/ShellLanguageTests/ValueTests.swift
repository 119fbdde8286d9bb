import XCTest
@testable import ShellLanguage

final class ValueTests: XCTestCase {
    func testNumberFormatting() {
        XCTAssertEqual(Value.number(2).description, "2.0")
        XCTAssertEqual(Value.number(0.1 + 0.2).description, "0.3")
        XCTAssertEqual(Value.number(1.0 / 3).description, "0.333333")
        XCTAssertEqual(Value.number(1e-5).description, "1e-05")
        XCTAssertEqual(Value.number(1e20).description, "1e+20")
        XCTAssertEqual(Value.number(-0.5).description, "-0.5")
        XCTAssertEqual(Value.number(.nan).description, "nan")
        XCTAssertEqual(Value.number(-.infinity).description, "-inf")
        XCTAssertEqual(Value.int(-7).description, "-7")
    }

    func testStringsListsRecords() {
        let record: Record = ["name": "resnet20", "ood": 0.8125, "bits": [2, 4], "inner": .record(["a": 1])]
        XCTAssertEqual(Value.string("a\"b\n").description, #""a\"b\n""#)
        XCTAssertEqual(Value.string("raw").displayString, "raw")
        XCTAssertEqual(Value.list([1, "x", .none, true]).description, #"[1, "x", none, true]"#)
        XCTAssertEqual(Value.record(record).description, #"{name: "resnet20", ood: 0.8125, bits: [2, 4], inner: {a: 1}}"#)
        XCTAssertEqual(Value.record(record).displayString, """
        name   resnet20
        ood    0.8125
        bits   [2, 4]
        inner  {a: 1}
        """)
        XCTAssertEqual(Value.record(Record()).displayString, "{}")
    }

    func testRecordKeepsOrderAndReplaces() {
        var record = Record()
        record["b"] = 1
        record["a"] = 2
        record["b"] = 3
        XCTAssertEqual(record.keys, ["b", "a"])
        XCTAssertEqual(record["b"], 3)
        record["b"] = nil
        XCTAssertEqual(record.keys, ["a"])
        XCTAssertNil(record["zz"])
    }

    func testAccessorsAndLiteralParsing() {
        XCTAssertEqual(Value.number(3).intValue, 3)
        XCTAssertNil(Value.number(3.5).intValue)
        XCTAssertEqual(Value.int(3).doubleValue, 3)
        XCTAssertEqual(Value.parseLiteral("4"), .int(4))
        XCTAssertEqual(Value.parseLiteral("1e-3"), .number(0.001))
        XCTAssertEqual(Value.parseLiteral("-0.5"), .number(-0.5))
        XCTAssertEqual(Value.parseLiteral("true"), .bool(true))
        XCTAssertEqual(Value.parseLiteral("nan"), .string("nan"))
        XCTAssertEqual(Value.parseLiteral("inf"), .string("inf"))
        XCTAssertEqual(Value.parseLiteral("run-1"), .string("run-1"))
    }

    func testArgKindCoercion() throws {
        XCTAssertEqual(try ArgKind.number.coerce(3), .number(3))
        XCTAssertEqual(try ArgKind.string.coerce(3), .string("3"))
        XCTAssertEqual(try ArgKind.list(.int).coerce(4), .list([4]), "a single value is a one-element list")
        XCTAssertEqual(try ArgKind.choice(["2", "4"]).coerce(4), .string("4"))
        XCTAssertEqual(try ArgKind.path.coerce("~/x").stringValue, NSHomeDirectory() + "/x")
        XCTAssertThrowsError(try ArgKind.bool.coerce("yes"))
        XCTAssertThrowsError(try ArgKind.int(1...3).coerce(4)) { error in
            XCTAssertEqual((error as? ArgumentProblem)?.message, "must be between 1 and 3, got 4")
        }
    }

    func testSuggestions() {
        XCTAssertEqual(Suggestions.distance("kitten", "sitting"), 3)
        XCTAssertEqual(Suggestions.distance("teh", "the"), 1, "a transposition costs 1")
        XCTAssertEqual(Suggestions.closest(to: "trian", in: ["train", "eval"]), "train")
        XCTAssertEqual(Suggestions.closest(to: "lands", in: ["landscape", "load"]), "landscape", "unique prefix")
        XCTAssertNil(Suggestions.closest(to: "xyz", in: ["train", "eval"]))
    }
}
