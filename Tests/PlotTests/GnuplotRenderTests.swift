// Real gnuplot renders, run only where /usr/bin/gnuplot (or gnuplot on PATH) exists.
import Foundation
import XCTest
@testable import Plot

final class GnuplotRenderTests: XCTestCase {
    static let pngSignature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    var folder: String!

    override func setUpWithError() throws {
        folder = (NSTemporaryDirectory() as NSString).appendingPathComponent("fqat-plot-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: folder)
    }

    func gnuplot() throws -> GnuplotProcess {
        let process = GnuplotProcess()
        try XCTSkipIf(process.executable == nil, "gnuplot is not installed")
        return process
    }

    func assertPNG(_ path: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        XCTAssertGreaterThan(data.count, 1000, "\(path) is only \(data.count) bytes", file: file, line: line)
        XCTAssertEqual(Array(data.prefix(8)), Self.pngSignature, "\(path) is not a PNG", file: file, line: line)
    }

    /// One PNG of each kind.
    func testEveryKindRendersToPNG() throws {
        let plotter = try gnuplot()
        for (name, spec) in Examples.all() {
            let path = "\(folder!)/\(name).png"
            let result = try plotter.render(spec, to: .png(path: path, size: PixelSize(width: 640, height: 480)))
            XCTAssertEqual(result.outputPath, path)
            try assertPNG(path)
            XCTAssertTrue(FileManager.default.fileExists(atPath: result.dataFiles[0]), "\(name): no data file")
            XCTAssertEqual(result.messages, "", "\(name): gnuplot warned: \(result.messages)")
        }
    }

    func testSVGAndNastyTitlesRender() throws {
        let plotter = try gnuplot()
        let plot = LinePlot(title: #"a "quoted" \ title; with 'apostrophes' & layer_1^2 {x}"#, xLabel: "step\nnext line",
                            yLabel: "loss", series: [LineSeries(name: #"run "a", seed 0"#, x: [0, 1, 2], y: [1, 0.5, 0.25])])
        let path = "\(folder!)/nasty dir/fig.svg"
        let result = try plotter.render(plot, to: .svg(path: path))
        let svg = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertTrue(svg.hasPrefix("<?xml"), String(svg.prefix(100)))
        XCTAssertTrue(svg.contains("quoted"), "title text is in the SVG")
        XCTAssertEqual(result.dataFiles, ["\(folder!)/nasty dir/fig.csv"])
    }

    /// Issue 17 S1: gnuplot runs backquoted text in double-quoted strings as a shell command. No title,
    /// label, series name or file name may run one; the text still shows literally in the figure.
    func testBackquotesInTextNeverRunACommand() throws {
        let plotter = try gnuplot()
        let witness = "\(folder!)/PWNED"
        let payload = "x`touch \(witness)`y"
        let plot = LinePlot(title: "title " + payload, xLabel: "step " + payload, yLabel: "it's " + payload,
                            series: [LineSeries(name: "series " + payload, x: [0, 1, 2], y: [1, 0.5, 0.25])],
                            xTics: [(label: "tic " + payload, value: 1)])
        let path = "\(folder!)/dir `touch \(witness)2` 'q'/fig.svg"
        let result = try plotter.render(plot, to: .svg(path: path))
        XCTAssertFalse(FileManager.default.fileExists(atPath: witness), "a backquoted command ran")
        XCTAssertFalse(FileManager.default.fileExists(atPath: witness + "2"), "a backquoted command in a path ran")
        XCTAssertEqual(result.outputPath, path)
        let svg = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertTrue(svg.contains("`touch"), "the backquoted text is shown literally")
        XCTAssertEqual(result.messages, "", "gnuplot warned: \(result.messages)")
    }

    func testEmptyLinePlotRenders() throws {
        let path = "\(folder!)/empty.png"
        _ = try gnuplot().render(LinePlot(title: "nothing yet", xLabel: "step", yLabel: "loss", series: []), to: .png(path: path))
        try assertPNG(path)
    }

    func testDumbTerminalDrawsLinePlotsAsText() throws {
        let result = try gnuplot().render(Examples.linePlot(), to: .text(columns: 70, lines: 20, color: .none),
                                          dataStem: "\(folder!)/line")
        let lines = result.terminalOutput.split(separator: "\n").map(String.init)
        XCTAssertFalse(result.terminalOutput.hasPrefix("\u{0C}"))
        XCTAssertTrue(lines.count >= 15 && lines.count <= 20, result.terminalOutput)
        XCTAssertTrue(lines.allSatisfy { $0.count <= 70 }, result.terminalOutput)
        XCTAssertTrue(result.terminalOutput.contains("Two series"), result.terminalOutput)
        XCTAssertTrue(result.terminalOutput.contains("train"), result.terminalOutput)
    }

    func testMixedFigureOnTextTerminal() throws {
        let result = try gnuplot().render(Examples.frozenSet(), to: .text(columns: 90, lines: 24, color: .none),
                                          dataStem: "\(folder!)/frozen")
        XCTAssertTrue(result.terminalOutput.contains("layer4.2.conv1.w_scale |"), result.terminalOutput)
        XCTAssertTrue(result.terminalOutput.contains("number of frozen scale factors"), result.terminalOutput)
    }

    func testSixelStreamStartsWithDeviceControlString() throws {
        let result = try gnuplot().render(Examples.linePlot(), to: .sixel(size: PixelSize(width: 200, height: 120)),
                                          dataStem: "\(folder!)/sixel")
        XCTAssertTrue(result.terminalOutput.hasPrefix("\u{1B}Pq"), String(result.terminalOutput.prefix(20).debugDescription))
    }

    func testGnuplotErrorNamesTheLine() throws {
        let plotter = try gnuplot()
        let script = "set terminal dumb\nset xlabel \"ok\"\nset bogus 3\nplot x\n"
        XCTAssertThrowsError(try plotter.render(script: script, dataFiles: [])) { error in
            guard case .gnuplotFailed(let message, let line, let offending, let status)? = error as? PlotError else {
                return XCTFail("unexpected \(error)")
            }
            XCTAssertEqual(line, 3)
            XCTAssertEqual(offending, "set bogus 3")
            XCTAssertTrue(message.contains("unrecognized option"), message)
            XCTAssertNotEqual(status, 0)
            XCTAssertTrue("\(error)".contains("at script line 3: set bogus 3"), "\(error)")
        }
        // A missing data file is reported with gnuplot's words and the plot line.
        let missing = "set terminal dumb\nplot \"\(folder!)/none.csv\" using 1:2\n"
        XCTAssertThrowsError(try plotter.render(script: missing, dataFiles: [])) { error in
            guard case .gnuplotFailed(_, let line, _, _)? = error as? PlotError else { return XCTFail("unexpected \(error)") }
            XCTAssertEqual(line, 2)
        }
    }

    func testMissingGnuplotStillWritesTheData() throws {
        var plotter = GnuplotProcess()
        plotter.executable = nil
        let stem = "\(folder!)/nogp/fig"
        XCTAssertThrowsError(try plotter.render(Examples.contour(), to: .png(path: "\(stem).png"))) { error in
            XCTAssertEqual(error as? PlotError, .gnuplotMissing(dataFiles: ["\(stem).csv"]))
            XCTAssertTrue("\(error)".contains("apt-get install gnuplot-nox"), "\(error)")
        }
        let csv = try String(contentsOfFile: "\(stem).csv", encoding: .utf8)
        XCTAssertTrue(csv.hasPrefix("x,y,z\n"))
    }

    func testLocateFindsGnuplotOnPath() throws {
        let fake = "\(folder!)/bin"
        try FileManager.default.createDirectory(atPath: fake, withIntermediateDirectories: true)
        XCTAssertTrue(FileManager.default.createFile(atPath: "\(fake)/gnuplot", contents: Data("#!/bin/sh\n".utf8),
                                       attributes: [.posixPermissions: 0o755]))
        let found = GnuplotProcess.locate(environment: ["PATH": "/nonexistent:\(fake)"])
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/gnuplot") {
            XCTAssertEqual(found, "/usr/bin/gnuplot", "the Debian path wins")
        } else {
            XCTAssertEqual(found, "\(fake)/gnuplot")
        }
    }

    /// Renders the documentation images (docs/img) when FQAT_PLOT_DOCS_IMG names the folder.
    func testRenderDocumentationImages() throws {
        guard let target = ProcessInfo.processInfo.environment["FQAT_PLOT_DOCS_IMG"] else {
            throw XCTSkip("set FQAT_PLOT_DOCS_IMG=<folder> to render the documentation images")
        }
        let plotter = try gnuplot()
        for (name, spec) in Examples.all() {
            let path = "\(target)/\(name).png"
            let size = spec.suggestedSize
            let scaled = PixelSize(width: size.width * 7 / 10, height: size.height * 7 / 10)
            _ = try plotter.render(spec, to: .png(path: path, size: scaled, font: "Sans,9"),
                                   dataStem: "\(folder!)/\(name)")
            try assertPNG(path)
        }
    }
}
