import XCTest
@testable import Plot
final class PlotModuleTests: XCTestCase { func testModuleLinks() { XCTAssertTrue(true) } }
