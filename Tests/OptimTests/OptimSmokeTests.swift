import XCTest
@testable import Optim
final class OptimModuleTests: XCTestCase { func testModuleLinks() { XCTAssertTrue(true) } }
