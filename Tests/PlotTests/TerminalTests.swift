// The Swift terminal heatmap (exact text for the plain ramp), colour detection, sixel guessing, and how
// text targets are routed (heatmaps in Swift, line plots through gnuplot `dumb`).
import Foundation
import XCTest
@testable import Plot

final class TerminalHeatmapTests: XCTestCase {
    let small = HeatmapPlot(title: "Loss heatmap", grid: Grid(x: [-1, 0, 1], y: [-1, 1], z: [[0, 1, 2], [3, 4, 5]]))

    func testPlainRampExactText() {
        let heatmap = small.panels()[0].terminalHeatmap!
        XCTAssertEqual(heatmap.render(columns: 40, lines: 20, color: .none), """
        Loss heatmap
         1 |**%%@@|
        -1 |  ::==|
           +------+
            -1   1
            x: α (direction 1)   y: β (direction 2)
            0 [ :=+#@] 5  loss

        """)
    }

    func testLargeGridIsSampledToFitAndNaNShows() {
        // 40 x 30 grid into 30 columns x 15 lines: 10 shown rows; labels "1", "0.517", "0" (5 wide) leave
        // 30 - 5 - 3 = 22 cells.
        let x = Examples.linspace(0, 1, 40), y = Examples.linspace(0, 1, 30)
        var z = y.map { b in x.map { a in a + b } }
        z[29][0] = .nan  // top-left after flipping (largest y on top)
        let plot = HeatmapPlot(title: "big", grid: Grid(x: x, y: y, z: z))
        let text = plot.panels()[0].terminalHeatmap!.render(columns: 30, lines: 15, color: .none)
        let lines = text.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 1 + 10 + 4)
        // Top row: z = 1 + x over the colour range 0...2, so the shades run from the middle of the ramp up.
        XCTAssertEqual(lines[1], "    1 |?++++****####%%%%@@@@@|")
        XCTAssertEqual(lines[6], "0.448 |:::-----====++++*****#|")
        XCTAssertTrue(lines[1...10].allSatisfy { $0.count == 5 + 2 + 22 + 1 }, text)
        XCTAssertTrue(lines[10].hasPrefix("    0 |  "), text)
        XCTAssertEqual(lines[11], "      +" + String(repeating: "-", count: 22) + "+")
    }

    func testCategoricalRowsKeepTheEndOfLongNames() {
        let plot = DisorderHeatmapPlot(title: "D", factors: ["short", "a.very.long.layer.name.layer4.2.conv1.w_scale"],
                                       steps: [1, 2], disorder: [[0, 1], [0.5, 0.5]])
        let text = plot.panels()[0].terminalHeatmap!.render(columns: 60, lines: 20, color: .none)
        let lines = text.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines[1], String(repeating: " ", count: 19) + "short |  @@|")
        XCTAssertEqual(lines[2], "..layer4.2.conv1.w_scale |++++|")
        XCTAssertEqual(lines[4], String(repeating: " ", count: 26) + "1  2")
    }

    func testColourModesUseBackgroundEscapesAndStripToTheSameLayout() {
        let heatmap = small.panels()[0].terminalHeatmap!
        let truecolor = heatmap.render(columns: 40, lines: 20, color: .truecolor)
        let ansi = heatmap.render(columns: 40, lines: 20, color: .ansi256)
        // Lowest value: viridis start (68, 1, 84); in the 6x6x6 cube that is 16 + 36*1 + 6*0 + 2 = 54.
        XCTAssertTrue(truecolor.contains("\u{1B}[48;2;68;1;84m"), truecolor)
        XCTAssertTrue(ansi.contains("\u{1B}[48;5;54m"), ansi)
        XCTAssertTrue(truecolor.contains("\u{1B}[0m|"), "colour is reset before the frame")
        let plain = strippingTerminalEscapes(truecolor).split(separator: "\n").map { (line: Substring) in line.count }
        let ramp = heatmap.render(columns: 40, lines: 20, color: .none).split(separator: "\n").map { (line: Substring) in line.count }
        XCTAssertEqual(plain, ramp, "same geometry with and without colour")
    }

    func testStripsCSIOSCAndSixelSequences() {
        XCTAssertEqual(strippingTerminalEscapes("a\u{1B}[38;5;128mb\u{1B}[0mc"), "abc")
        XCTAssertEqual(strippingTerminalEscapes("x\u{1B}Pq\"1;1;2;2#0~~\u{1B}\\y"), "xy")
        XCTAssertEqual(strippingTerminalEscapes("t\u{1B}]0;title\u{07}u"), "tu")
    }

    func testSideBySidePadsByVisibleWidth() {
        let joined = sideBySide(["ab\n\u{1B}[1mc\u{1B}[0m\n", "x\ny\nz\n"], gap: 2)
        XCTAssertEqual(strippingTerminalEscapes(joined), "ab  x\nc   y\n    z\n")
    }
}

final class TerminalEnvironmentTests: XCTestCase {
    func testColourDetection() {
        XCTAssertEqual(TerminalColorMode.detect(environment: ["TERM": "xterm-256color"], isTerminal: true), .ansi256)
        XCTAssertEqual(TerminalColorMode.detect(environment: ["TERM": "xterm", "COLORTERM": "truecolor"], isTerminal: true), .truecolor)
        XCTAssertEqual(TerminalColorMode.detect(environment: ["TERM": "xterm", "COLORTERM": "24bit"], isTerminal: true), .truecolor)
        XCTAssertEqual(TerminalColorMode.detect(environment: ["TERM": "xterm-256color", "NO_COLOR": "1"], isTerminal: true), .none)
        XCTAssertEqual(TerminalColorMode.detect(environment: ["TERM": "xterm-256color", "NO_COLOR": ""], isTerminal: true), .ansi256,
                       "an empty NO_COLOR does not count (no-color.org)")
        XCTAssertEqual(TerminalColorMode.detect(environment: ["TERM": "xterm-256color"], isTerminal: false), .none)
        XCTAssertEqual(TerminalColorMode.detect(environment: ["TERM": "dumb"], isTerminal: true), .none)
    }

    func testSixelGuess() {
        XCTAssertTrue(SixelSupport.guess(environment: [:], explicitSetting: true))
        XCTAssertFalse(SixelSupport.guess(environment: ["TERM": "mlterm"], explicitSetting: false))
        XCTAssertTrue(SixelSupport.guess(environment: ["TERM": "mlterm"]))
        XCTAssertTrue(SixelSupport.guess(environment: ["TERM": "foot"]))
        XCTAssertTrue(SixelSupport.guess(environment: ["TERM": "xterm-256color", "TERM_PROGRAM": "WezTerm"]))
        XCTAssertTrue(SixelSupport.guess(environment: ["TERM": "xterm-256color", "KONSOLE_VERSION": "230805"]))
        XCTAssertFalse(SixelSupport.guess(environment: ["TERM": "xterm-256color", "KONSOLE_VERSION": "210800"]))
        XCTAssertFalse(SixelSupport.guess(environment: ["TERM": "xterm-256color"]))
        XCTAssertFalse(SixelSupport.guess(environment: ["TERM": "foot", "TMUX": "/tmp/tmux-0/default,1,0"]))
        XCTAssertFalse(SixelSupport.guess(environment: ["TERM": "screen-256color"]))
    }

    func testTerminalSizeFallsBackToEnvironment() {
        // Under `swift test` standard output is a pipe, so the ioctl fails and the environment decides.
        guard isatty(STDOUT_FILENO) == 0 else { return }
        XCTAssertEqual(TerminalSize.current(environment: ["COLUMNS": "100", "LINES": "40"]), TerminalSize(columns: 100, lines: 40))
        XCTAssertEqual(TerminalSize.current(environment: [:]), TerminalSize(columns: 80, lines: 24))
    }
}

final class TextTargetTests: XCTestCase {
    func testHeatmapKindsAreDrawnInSwiftAndStillWriteTheirData() throws {
        let plotter = RecordingPlotter()
        let result = try plotter.render(Examples.surface(), to: .text(columns: 80, lines: 30, color: .none), dataStem: "/tmp/x/s")
        XCTAssertTrue(plotter.scripts.isEmpty, "no gnuplot for a surface on a text terminal")
        XCTAssertEqual(plotter.dataFiles.first?.map(\.path), ["/tmp/x/s.csv"])
        XCTAssertEqual(result.dataFiles, ["/tmp/x/s.csv"])
        XCTAssertTrue(result.terminalOutput.hasPrefix("Loss surface, 4-bit LSQ+SAGM\n"), result.terminalOutput)
        XCTAssertTrue(result.terminalOutput.contains("log(loss + 0.1)"), result.terminalOutput)
    }

    func testLinePlotsGoThroughGnuplotDumb() throws {
        let plotter = RecordingPlotter(result: PlotResult(terminalOutput: "\u{0C}\n  chart  \n\n"))
        let result = try plotter.render(Examples.linePlot(), to: .text(columns: 100, lines: 30, color: .ansi256), dataStem: "/tmp/x/l")
        assertHasLine(plotter.scripts[0], "set terminal dumb size 100,30 noenhanced ansi256")
        assertHasLine(plotter.scripts[0], "unset output")
        XCTAssertEqual(result.terminalOutput, "  chart\n", "form feed and blank edges removed")
        let mono = RecordingPlotter()
        _ = try mono.render(Examples.linePlot(), to: .text(columns: 60, lines: 20, color: .none), dataStem: "/tmp/x/l")
        assertHasLine(mono.scripts[0], "set terminal dumb size 60,20 noenhanced mono")
    }

    func testMixedFigureDrawsMapInSwiftAndCountThroughGnuplot() throws {
        let plotter = RecordingPlotter(result: PlotResult(terminalOutput: "COUNT PANEL\n"))
        let result = try plotter.render(Examples.frozenSet(), to: .text(columns: 100, lines: 30, color: .none), dataStem: "/tmp/x/f")
        XCTAssertEqual(plotter.scripts.count, 1, "only the count panel goes to gnuplot")
        assertHasLine(plotter.scripts[0], "set terminal dumb size 100,30 noenhanced mono")
        assertHasText(plotter.scripts[0], "plot '/tmp/x/f-2.csv' using")
        XCTAssertEqual(plotter.dataFiles[0].map(\.path), ["/tmp/x/f-1.csv", "/tmp/x/f-2.csv"], "all data written first")
        XCTAssertTrue(plotter.dataFiles[1].isEmpty, "the panel render does not rewrite data")
        let text = result.terminalOutput
        XCTAssertTrue(text.hasPrefix("Adaptive freezing, τ = 0.5, K = 100\n\n"), text)
        XCTAssertTrue(text.contains("layer4.2.conv1.w_scale |"), text)
        XCTAssertTrue(text.hasSuffix("COUNT PANEL\n"), text)
    }

    func testFigureColumnsSitSideBySide() throws {
        let plotter = RecordingPlotter()
        let result = try plotter.render(Examples.sideBySide(), to: .text(columns: 120, lines: 20, color: .none), dataStem: "/tmp/x/fig")
        let lines = result.terminalOutput.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        XCTAssertTrue(lines.contains { $0.hasPrefix("LSQ+SAGM, art") && $0.contains("FQAT, art") }, result.terminalOutput)
        XCTAssertTrue(lines.contains { $0.hasPrefix("LSQ+SAGM, sketch") && $0.contains("FQAT, sketch") }, result.terminalOutput)
        XCTAssertTrue(lines.allSatisfy { $0.count <= 120 }, "fits the terminal width")
    }
}
