// RangeInitMethod's raw values are the words of `quantize init=` (ShellCommands takes the enum as
// it is); files written when minMax's raw value was "minMax" still decode.
import Foundation
import Quant
import XCTest

final class RangeInitWordsTests: XCTestCase {
    /// `quantize init=minmax` is RangeInitMethod's raw value; files written when it was "minMax" still load.
    func testRangeInitReadsTheShellWordAndTheEarlierRawValue() throws {
        XCTAssertEqual(String(decoding: try JSONEncoder().encode([RangeInitMethod.minMax]), as: UTF8.self), "[\"minmax\"]")
        XCTAssertEqual(try JSONDecoder().decode([RangeInitMethod].self, from: Data("[\"minMax\", \"minmax\", \"mse\"]".utf8)), [.minMax, .minMax, .mse])
        XCTAssertThrowsError(try JSONDecoder().decode([RangeInitMethod].self, from: Data("[\"max\"]".utf8)))
    }
}
