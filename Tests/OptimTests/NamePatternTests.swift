import XCTest
@testable import Optim

final class NamePatternTests: XCTestCase {
    func match(_ pattern: String, _ name: String) throws -> Bool { try NamePattern(pattern).matches(name) }

    func testGlob() throws {
        XCTAssertTrue(try match("layer3.*.a.s", "layer3.0.conv1.a.s"))
        XCTAssertTrue(try match("layer3.*.a.s", "layer3.5.downsample.0.a.s"))
        XCTAssertFalse(try match("layer3.*.a.s", "layer3.0.conv1.w.s"))
        XCTAssertFalse(try match("layer3.*.a.s", "layer30.conv1.a.s"))
        XCTAssertFalse(try match("layer3.*.a.s", "xlayer3.0.conv1.a.s"), "anchored at the start")
        XCTAssertFalse(try match("layer3.*.a.s", "layer3.0.conv1.a.s2"), "anchored at the end")
        XCTAssertTrue(try match("*", "anything.at.all"))
        XCTAssertTrue(try match("*", ""))
        XCTAssertTrue(try match("**.s", "a.b.s"))
        XCTAssertTrue(try match("layer?.0.*", "layer2.0.conv1.w.s"))
        XCTAssertFalse(try match("layer?.0.*", "layer.0.conv1.w.s"))
        XCTAssertTrue(try match("layer[1-2].*", "layer2.1.a.s"))
        XCTAssertFalse(try match("layer[1-2].*", "layer3.1.a.s"))
        XCTAssertTrue(try match("layer[!1].*", "layer3.1.a.s"))
        XCTAssertFalse(try match("layer[^13].*", "layer3.1.a.s"))
        XCTAssertTrue(try match("a\\*b", "a*b"))
        XCTAssertFalse(try match("a\\*b", "axb"))
        XCTAssertTrue(try match("*a*a*b", "aaaaaab"), "backtracking")
        XCTAssertFalse(try match("*a*a*b", "aaaaaa"))
        XCTAssertTrue(try NamePattern("conv1.w.s").isExactName)
        XCTAssertFalse(try NamePattern("conv1.*").isExactName)
        XCTAssertTrue(try match("Layer1", "Layer1"))
        XCTAssertFalse(try match("layer1", "Layer1"), "case-sensitive")
    }

    func testMalformedPatterns() throws {
        XCTAssertThrowsError(try NamePattern("layer[12")) { XCTAssertEqual($0 as? NamePatternError, .unclosedSet(pattern: "layer[12")) }
        XCTAssertThrowsError(try NamePattern("abc\\")) { XCTAssertEqual($0 as? NamePatternError, .trailingEscape(pattern: "abc\\")) }
        XCTAssertThrowsError(try NamePattern("[3-1]")) { XCTAssertTrue("\($0)".contains("reversed")) }
        let p = try NamePattern("layer3.*.a.s")
        XCTAssertEqual(try jsonRoundTrip(p), p)
    }
}
