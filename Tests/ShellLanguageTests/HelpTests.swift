import XCTest
@testable import ShellLanguage

/// User-visible text is tested as text (argument-parser's AssertHelp style snapshots).
final class HelpTests: XCTestCase {
    let registry = makeRegistry()

    func testOverviewSnapshot() {
        XCTAssertEqual(registry.helpOverview(), """
        Commands (type 'help <command>' or '<command>?' for details):

        training:
          train     train the model with a recipe
          eval      evaluate every domain
          freeze    freeze scale factors

        model:
          quantize  insert quantizers

        data:
          data      choose the data

        test:
          count     increment and return a counter
          fail      fail with a message
          wait      do steps, polling for Ctrl-C

        shell:
          help      list the commands, or describe one
          print     print values
          echo      print words and values on one line
          exit      end the script or session with a status
          history   show the most recent input lines

        language:
          let       bind a variable to a value or a command's result
          for       repeat a block for each element of a list
          if        run a block when a condition holds
          source    run the commands of another script file here
          time      run a command and report its wall time
          syntax    how commands, values and words are written

        """)
    }

    func testCommandHelpSnapshot() {
        XCTAssertEqual(registry.helpText(for: ["train"]), """
        usage: train <method> [steps=<int>] [lr=<number>] [tau=<number>] [layers=[<pattern>, …]]

        train — train the model with a recipe

        Runs optimizer steps and returns the final accuracies.

        Arguments:
          method      erm|qat|sagm|fqat (required)
                      the recipe
          steps=      int ≥ 1 (default: 100)
                      optimizer steps
          lr=         number ≥ 0.0 (default: 0.01)
                      learning rate
          tau=        number 0.0…1.0 (optional)
                      freezing threshold
          layers=     list of pattern (optional)
                      layers to train

        Examples:
          train fqat steps=2000 tau=0.3

        """)
    }

    func testSubcommandAndKeywordHelp() {
        XCTAssertEqual(registry.helpText(for: ["data"]), """
        usage: data rotated|folder …

        data — choose the data

        Subcommands (type 'help data <subcommand>'):
          rotated  rotated Fashion-MNIST domains
          folder   DomainBed image folders

        """)
        XCTAssertEqual(registry.helpText(for: ["data", "rotated"])?.components(separatedBy: "\n").first,
                       "usage: data rotated [angles=[<int>, …]]")
        XCTAssertEqual(registry.helpText(for: ["quantize"])?.contains("init=       minmax|mse|lsq (default: lsq)"), true)
        XCTAssertEqual(registry.helpText(for: ["for"])?.components(separatedBy: "\n").first, "usage: for <name> in <list> { … }")
        XCTAssertNil(registry.helpText(for: ["nope"]))
        XCTAssertNil(registry.helpText(for: ["data", "nope"]))
    }

    func testQuestionMarkPrintsTheSameAsHelp() {
        let a = runScript("train?").output.standard
        let b = runScript("help train").output.standard
        XCTAssertEqual(a, b)
        XCTAssertEqual(a, registry.helpText(for: ["train"]))
        XCTAssertEqual(runScript("?").output.standard, registry.helpOverview())
        XCTAssertEqual(runScript("for?").output.standard, registry.helpText(for: ["for"]))
    }

    func testMarkdownReference() {
        let markdown = registry.markdownReference()
        XCTAssertTrue(markdown.hasPrefix("# Command reference\n"))
        XCTAssertTrue(markdown.contains("""
        ### quantize

        Insert quantizers.

        ```
        quantize <method> [bits=<int>] [keep=[<string>, …]] [init=minmax|mse|lsq]
        ```

        | argument | type | description |
        |---|---|---|
        | `method` | lsq\\|ewgs (required) | quantizer |
        | `bits=` | int 2…8 (default: 4) | bit width |
        | `keep=` | list of string (optional) | layers kept in full precision |
        | `init=` | minmax\\|mse\\|lsq (default: lsq) | range initialisation |

        """))
        XCTAssertTrue(markdown.contains("#### data folder\n"))
        // Every command appears once as a heading, in group order.
        let headings = markdown.components(separatedBy: "\n").filter { $0.hasPrefix("### ") }.map { String($0.dropFirst(4)) }
        XCTAssertEqual(headings, registry.groups.flatMap { group in registry.commands.filter { $0.group == group }.map(\.name) })
        XCTAssertEqual(markdown, registry.markdownReference(), "deterministic")
    }
}
