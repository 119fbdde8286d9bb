import XCTest
@testable import Training
final class TrainingModuleTests: XCTestCase { func testModuleLinks() { XCTAssertTrue(true) } }
