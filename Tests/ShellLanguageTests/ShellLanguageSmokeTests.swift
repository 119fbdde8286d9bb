import XCTest
@testable import ShellLanguage
final class ShellLanguageModuleTests: XCTestCase { func testModuleLinks() { XCTAssertTrue(true) } }
