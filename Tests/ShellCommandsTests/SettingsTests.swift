// `set progress=` and `set plot=` are enums (ProgressSetting, PlotSetting): their words are the
// checker's choices and the session file's values, and an edited file with another word is refused
// with the setting, the word and the choices.
import Foundation
import ShellCommands
import ShellLanguage
import XCTest

final class SettingsTests: XCTestCase {
    func testSettingsRoundTripAsWordsAndRefuseOtherWords() throws {
        var settings = Session().settings
        settings.progress = .lines
        settings.plot = .none
        let json = String(decoding: try JSONEncoder().encode(settings), as: UTF8.self)
        XCTAssertTrue(json.contains("\"progress\":\"lines\""), json)
        XCTAssertTrue(json.contains("\"plot\":\"none\""), json)
        XCTAssertEqual(try JSONDecoder().decode(Settings.self, from: Data(json.utf8)), settings)

        let edited = json.replacingOccurrences(of: "\"progress\":\"lines\"", with: "\"progress\":\"fast\"")
        XCTAssertThrowsError(try JSONDecoder().decode(Settings.self, from: Data(edited.utf8))) { error in
            XCTAssertTrue("\(error)".contains("settings.progress 'fast' is not one of auto, bar, lines, off"), "\(error)")
        }
    }

    func testSetTakesTheEnumsWords() throws {
        let session = Session()
        let output = CapturingOutput()
        let interpreter = Interpreter(registry: ShellCommands.makeRegistry(session: session), output: output)
        XCTAssertEqual(interpreter.run(Source(name: "t", text: "set progress=off plot=svg")).status, 0, output.error)
        XCTAssertEqual(session.settings.progress, .off)
        XCTAssertEqual(session.settings.plot, .svg)
        XCTAssertNotEqual(interpreter.run(Source(name: "t", text: "set plot=pgn")).status, 0)
        XCTAssertTrue(output.error.contains("argument 'plot' has no choice 'pgn'; did you mean 'png'?"), output.error)
        XCTAssertEqual(session.settings.plot, .svg)
    }
}
