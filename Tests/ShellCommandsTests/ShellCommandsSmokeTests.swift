import XCTest
@testable import ShellCommands
final class ShellCommandsModuleTests: XCTestCase { func testModuleLinks() { XCTAssertTrue(true) } }
