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

    /// Renders the documentation images (docs/img) when FQAT_PLOT_DOCS_IMG names the folder.
    func testRenderDocumentationImages() throws {
        guard let target = ProcessInfo.processInfo.environment["FQAT_PLOT_DOCS_IMG"] else {
            throw XCTSkip("set FQAT_PLOT_DOCS_IMG=<folder> to render the documentation images")
        }
        let plotter = try gnuplot()
        for (name, spec) in Examples.all() {
            let path = "\(target)/\(name).png"
            let size = spec.suggestedSize
            let scaled = PixelSize(width: size.width * 4 / 5, height: size.height * 4 / 5)
            _ = try plotter.render(spec, to: .png(path: path, size: scaled, font: "Sans,10"),
                                   dataStem: "\(folder!)/\(name)")
            try assertPNG(path)
        }
    }
}
