import XCTest
@testable import Quant
final class QuantModuleTests: XCTestCase { func testModuleLinks() { XCTAssertTrue(true) } }
