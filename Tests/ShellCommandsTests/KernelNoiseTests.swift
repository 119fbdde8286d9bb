// `summary … across=`: how far the same runs move between record folders (one per BLAS kernel or
// backend), and the tie rule's default kernel noise checked against the committed quickstart records
// it was computed from (docs/data.md, "Kernel noise").
import Datasets
import Foundation
import ShellCommands
import XCTest

final class KernelNoiseTests: XCTestCase {
    /// Writes one single-evaluation run per (label, Val, Test) into `folder` (held-out domain 0, seed 0).
    private func write(_ runs: [(label: String, val: Double, test: Double)], to folder: URL) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for run in runs {
            let record = EvalRecord(step: 10, inAccuracy: [0: run.test, 1: 0.9], outAccuracy: [0: 0.1, 1: run.val], testDomains: [0],
                                    args: ["label": .string(run.label), "seed": .int(0)])
            try (record.jsonLine() + "\n").write(to: folder.appendingPathComponent("\(run.label).jsonl"), atomically: true, encoding: .utf8)
        }
    }

    func testSpreadAcrossFolders() throws {
        let h = try ShellHarness()
        // |Δ Test| in points: a–b x 4, y 2; a–c x 0, y 10; b–c x 4, y 12 → all pairs 32 / 6 = 5.33, max 12.
        // |Δ Val|: a–b 1, 1; a–c 0, 0; b–c 1, 1. "z" is only in a: shown, never compared.
        try write([("x", 0.80, 0.50), ("y", 0.80, 0.60), ("z", 0.70, 0.30)], to: h.directory.appendingPathComponent("a"))
        try write([("x", 0.81, 0.54), ("y", 0.79, 0.58)], to: h.directory.appendingPathComponent("b"))
        try write([("x", 0.80, 0.50), ("y", 0.80, 0.70)], to: h.directory.appendingPathComponent("c"))
        XCTAssertEqual(h.run("summary a across=[\"b\", \"c\"]"), 0, h.output.error)
        let lines = h.output.standardLines
        func row(_ prefix: String) -> [String]? {
            lines.first { $0.hasPrefix(prefix) }.map { $0.split(separator: " ").map(String.init) }
        }
        XCTAssertEqual(row("x (env0, seed 0)")?.suffix(9), ["80.0", "/", "50.0", "81.0", "/", "54.0", "80.0", "/", "50.0"], h.output.standard)
        XCTAssertEqual(row("z (env0, seed 0)")?.suffix(5), ["70.0", "/", "30.0", "—", "—"], h.output.standard)
        // folders, runs, mean |Δ Val|, mean |Δ Test|, max |Δ Test|
        XCTAssertEqual(row("a – b")?.suffix(4), ["2", "1.0", "3.0", "4.0"], h.output.standard)
        XCTAssertEqual(row("a – c")?.suffix(4), ["2", "0.0", "5.0", "10.0"], h.output.standard)
        XCTAssertEqual(row("b – c")?.suffix(4), ["2", "1.0", "8.0", "12.0"], h.output.standard)
        XCTAssertEqual(row("all pairs")?.suffix(4), ["6", "0.7", "5.3", "12.0"], h.output.standard)
        XCTAssertTrue(h.output.standard.contains("kernel noise these folders measure (mean |Δ Test| over all pairs): 5.3 points"),
                      h.output.standard)

        // Folders with no run in common say so instead of printing NaN.
        try write([("w", 0.8, 0.5)], to: h.directory.appendingPathComponent("d"))
        XCTAssertEqual(h.run("summary a across=[\"d\"]"), 0, h.output.error)
        XCTAssertTrue(h.output.standard.contains("no run (label, held-out domain, seed) is in two of the folders"), h.output.standard)
        XCTAssertFalse(h.output.standard.contains("nan"), h.output.standard)

        // A folder without records is refused by name.
        try FileManager.default.createDirectory(at: h.directory.appendingPathComponent("empty"), withIntermediateDirectories: true)
        XCTAssertEqual(h.run("summary a across=[\"b\", \"empty\"]"), 70)
        XCTAssertTrue(h.output.error.contains("no records (*.jsonl) under 'empty'"), h.output.error)
    }

    /// The default `kernel_noise=` is the mean |Δ OOD| over every pair of the four committed quickstart
    /// columns (Haswell, Prescott and Cooperlake OpenBLAS kernels, oneDNN), as `summary … across=` prints it.
    func testDefaultKernelNoiseIsWhatTheCommittedQuickstartRecordsMeasure() throws {
        let h = try ShellHarness()
        let folders = ["quickstart", "quickstart-prescott", "quickstart-cooperlake", "quickstart-onednn"]
            .map { repositoryRoot.appendingPathComponent("docs/results/\($0)").path }
        let list = folders.dropFirst().map { "\"\($0)\"" }.joined(separator: ", ")
        XCTAssertEqual(h.run("summary \"\(folders[0])\" across=[\(list)]"), 0, h.output.error)
        // 5 runs in each of the 6 pairs of columns.
        let all = try XCTUnwrap(h.output.standardLines.first { $0.hasPrefix("all pairs") }, h.output.standard)
        XCTAssertEqual(all.split(separator: " ").dropFirst(2).first, "30", all)
        XCTAssertTrue(h.output.standard.contains(String(format: "over all pairs): %.1f points", ShellCommands.kernelNoisePoints)),
                      "kernelNoisePoints (\(ShellCommands.kernelNoisePoints)) is not what the committed records measure:\n" + h.output.standard)
    }
}
