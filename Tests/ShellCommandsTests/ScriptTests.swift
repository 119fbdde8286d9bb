// Runs every Scripts/*.fqs through the real command registry at smoke size and checks its
// `# expect:` lines (each must appear, in order, as a substring of some later stdout line),
// `# expect-stderr:` lines (substrings of standard error, any order) and `# expect-exit:` status.
import Datasets
import Foundation
import NN
import Plot
import ShellCommands
import ShellLanguage
import XCTest

let scriptsDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Scripts")
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let fashionMNISTPresent = FileManager.default.fileExists(atPath: "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")

struct ScriptExpectations {
    var stdout: [String] = []
    var stderr: [String] = []
    var exit: Int32 = 0
    var arguments: [String] = []

    init(_ text: String) {
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let t = line.trimmingCharacters(in: .whitespaces)
            func value(_ key: String) -> String? {
                let p = "# \(key): "
                return t.hasPrefix(p) ? String(t.dropFirst(p.count)) : nil
            }
            if let v = value("expect") { stdout.append(v) }
            if let v = value("expect-stderr") { stderr.append(v) }
            if let v = value("expect-exit") { exit = Int32(v) ?? -1 }
            if let v = value("args") { arguments = v.split(separator: " ").map(String.init) }
        }
    }

    /// The first expectation that is not met, or nil.
    func firstFailure(stdout out: [String], stderr err: String, status: Int32) -> String? {
        var i = 0
        for e in stdout {
            while i < out.count && !out[i].contains(e) { i += 1 }
            if i == out.count { return "stdout has no line containing '\(e)' (in order)" }
            i += 1
        }
        for e in stderr where !err.contains(e) { return "stderr does not contain '\(e)'" }
        if status != exit { return "exit status \(status), expected \(exit)" }
        return nil
    }
}

/// A session whose output is captured, whose plots are recorded, in a temporary folder.
final class ShellHarness {
    let session = Session()
    let output = CapturingOutput()
    let plotter = RecordingPlotter()
    let interpreter: Interpreter
    let directory: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("fqat-shell-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        session.plotter = plotter
        session.settings.out = directory.appendingPathComponent("out").path
        session.settings.progress = .lines
        session.settings.plot = .png
        session.settings.threads = 2
        interpreter = Interpreter(registry: ShellCommands.makeRegistry(session: session), output: output)
        interpreter.echoCommandResults = false
    }

    func run(_ text: String, name: String = "<test>", arguments: [String] = []) -> Int32 {
        let cwd = FileManager.default.currentDirectoryPath
        precondition(FileManager.default.changeCurrentDirectoryPath(directory.path), "cannot enter \(directory.path)")
        defer { _ = FileManager.default.changeCurrentDirectoryPath(cwd) }
        return interpreter.runScript(Source(name: name, text: text), arguments: .parse(scriptName: name, arguments)).status
    }

    deinit { try? FileManager.default.removeItem(at: directory) }
}

final class ScriptTests: XCTestCase {
    func testExpectationRunnerCanFail() {
        let e = ScriptExpectations("# expect: hello\n# expect: world\n# expect-exit: 0")
        XCTAssertNil(e.firstFailure(stdout: ["say hello", "big world"], stderr: "", status: 0))
        XCTAssertNotNil(e.firstFailure(stdout: ["big world", "say hello"], stderr: "", status: 0), "order matters")
        XCTAssertNotNil(e.firstFailure(stdout: ["say hello", "big world"], stderr: "", status: 70))
    }

    func testScripts() throws {
        try XCTSkipUnless(fashionMNISTPresent, "Fashion-MNIST (dataset-fashion-mnist) is not installed")
        let files = try FileManager.default.contentsOfDirectory(atPath: scriptsDirectory.path).filter { $0.hasSuffix(".fqs") }.sorted()
        XCTAssertFalse(files.isEmpty)
        for file in files {
            let text = try String(contentsOf: scriptsDirectory.appendingPathComponent(file), encoding: .utf8)
            let expected = ScriptExpectations(text)
            let h = try ShellHarness()
            let status = h.run(text, name: file, arguments: expected.arguments)
            if let failure = expected.firstFailure(stdout: h.output.standardLines, stderr: h.output.error, status: status) {
                XCTFail("\(file): \(failure)\n--- stdout ---\n\(h.output.standard)\n--- stderr ---\n\(h.output.error)")
            }
        }
    }
}

final class ModelLoadTests: XCTestCase {
    /// `model load` with no model to load into: a `save model` file rebuilds itself; a plain state dict
    /// asks for `architecture=` (whose input channels and classes then come from the file); a mismatch
    /// names the tensors and the way out; nothing changes on any error.
    func testModelLoadWithoutACurrentModel() throws {
        try XCTSkipUnless(fashionMNISTPresent, "Fashion-MNIST (dataset-fashion-mnist) is not installed")
        let saver = try ShellHarness()
        XCTAssertEqual(saver.run("data style-fmnist per_domain=60 batch=4; model new resnet8 width=0.5; save model \"m.safetensors\""), 0,
                       saver.output.error)
        let saved = saver.directory.appendingPathComponent("m.safetensors")
        // The same weights without fqat-shell's metadata: a plain checkpoint (as torchvision's are).
        let file = try SafeTensors.read(contentsOf: saved)
        let plain = saver.directory.appendingPathComponent("plain.safetensors")
        try SafeTensors.write(file.names.map { ($0, file.tensors[$0]!) }, to: plain)

        let h = try ShellHarness()
        XCTAssertEqual(h.run("model load \"\(saved.path)\"; model show"), 0, h.output.error)
        XCTAssertTrue(h.output.standard.contains("loaded resnet8 from"), h.output.standard)
        XCTAssertTrue(h.output.standard.contains("resnet8: 19074 parameters, full precision"), h.output.standard)

        let missing = try ShellHarness()
        XCTAssertEqual(missing.run("model load \"nowhere.safetensors\""), 70)
        XCTAssertTrue(missing.output.error.contains("no such file 'nowhere.safetensors'"), missing.output.error)

        let bare = try ShellHarness()
        XCTAssertEqual(bare.run("model load \"\(plain.path)\""), 70)
        XCTAssertTrue(bare.output.error.contains("holds weights without an architecture") &&
                      bare.output.error.contains("architecture="), bare.output.error)
        XCTAssertNil(bare.session.network, "a failed load leaves no half-built model")
        XCTAssertEqual(bare.run("model load \"\(plain.path)\" architecture=resnet8"), 70)
        XCTAssertTrue(bare.output.error.contains("does not match the model (nothing was loaded)") &&
                      bare.output.error.contains("strict=false"), bare.output.error)
        XCTAssertNil(bare.session.network)
        // No data loaded: 1 input channel and 10 classes are read from conv1.weight and fc.weight.
        XCTAssertEqual(bare.run("model load \"\(plain.path)\" architecture=resnet8 width=0.5"), 0, bare.output.error)
        XCTAssertEqual(bare.session.network?.inChannels, 1)
        XCTAssertEqual(bare.session.network?.classes, 10)
    }
}

final class SummaryTests: XCTestCase {
    /// Records written by hand: two methods, two held-out domains, two seeds, one evaluation each, so
    /// the selected accuracies are known and the table's means, std and paired differences can be
    /// computed by hand.
    func testSummaryMeansAndPairedDifferences() throws {
        let h = try ShellHarness()
        // Test accuracy (held-out in split) and Val (mean out accuracy of the training domains).
        let table: [(label: String, domain: Int, seed: Int, test: Double, val: Double)] = [
            ("a", 0, 0, 0.50, 0.80), ("a", 0, 1, 0.54, 0.82), ("a", 1, 0, 0.40, 0.70), ("a", 1, 1, 0.44, 0.72),
            ("b", 0, 0, 0.48, 0.80), ("b", 0, 1, 0.50, 0.81), ("b", 1, 0, 0.40, 0.71), ("b", 1, 1, 0.40, 0.72),
        ]
        for row in table {
            let other = 1 - row.domain
            let record = EvalRecord(step: 10, inAccuracy: [row.domain: row.test, other: 0.9], outAccuracy: [row.domain: 0.1, other: row.val],
                                    testDomains: [row.domain], args: ["label": .string(row.label), "seed": .int(row.seed)])
            let dir = h.directory.appendingPathComponent("recs/seed\(row.seed)/d\(row.domain)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try (record.jsonLine() + "\n").write(to: dir.appendingPathComponent("\(row.label).jsonl"), atomically: true, encoding: .utf8)
        }
        XCTAssertEqual(h.run("summary recs versus=\"b\""), 0, h.output.error)
        let out = h.output.standard
        // a on domain 0: Test 52.0 ± 2.8 (std of 50, 54), Val 81.0 ± 1.4.
        XCTAssertTrue(out.contains("81.0 ± 1.4 / 52.0 ± 2.8"), out)
        // Paired a − b: Test differences +2, +4, 0, +4 → mean +2.5, sd 1.915, s.e. 0.96;
        // Val differences 0, +1, −1, 0 → mean 0.0, s.e. 0.41.
        XCTAssertTrue(out.contains("paired against b"), out)
        let row = try XCTUnwrap(h.output.standardLines.first { $0.hasPrefix("a ") && $0.contains("4") && $0.contains("+2.5") }, out)
        XCTAssertTrue(row.contains("+2.5 ± 1.0"), row)
        XCTAssertTrue(row.contains("+0.0 ± 0.4"), row)

        // +2.5 is within t(0.975, 3) × 0.96 = 3.05 (no noise: one evaluation per run), so a tie.
        XCTAssertTrue(row.hasSuffix("tie"), row)

        XCTAssertEqual(h.run("summary recs versus=\"c\""), 70)
        XCTAssertTrue(h.output.error.contains("no run labelled 'c'; the labels are a, b"), h.output.error)
    }

    /// The `OOD verdict` column: a paired Test difference is a tie unless it exceeds both its 95%
    /// t-interval half-width and the larger selection noise of the two runs.
    func testPairedVerdictWeighsNoiseAndStandardError() throws {
        let h = try ShellHarness()
        // (label, Test offset from the baseline in points, noise in points): "up" and "down" have one
        // evaluation per run (no noise); "noisy" has three, whose neighbours differ by 5 points from
        // the selected one, so its constant +1 is within the noise.
        let runs: [(label: String, offset: Double, jitter: Double?)] = [
            ("base", 0, nil), ("up", 3, nil), ("down", -3, nil), ("noisy", 1, 5), ("scatter", 0, nil),
        ]
        for seed in 0..<3 {
            for run in runs {
                // "scatter" differs by −4, +5, −1: mean 0 — a tie by its standard error alone.
                let offset = run.label == "scatter" ? [-4.0, 5, -1][seed] : run.offset
                let test = 0.5 + Double(seed) * 0.02 + offset / 100
                var lines: [String] = []
                if let j = run.jitter {
                    for (step, val, t) in [(10, 0.7, test - j / 100), (20, 0.8, test), (30, 0.7, test - j / 100)] {
                        lines.append(EvalRecord(step: step, inAccuracy: [0: t, 1: 0.9], outAccuracy: [0: 0.1, 1: val], testDomains: [0],
                                                    args: ["label": .string(run.label), "seed": .int(seed)]).jsonLine())
                    }
                } else {
                    lines.append(EvalRecord(step: 10, inAccuracy: [0: test, 1: 0.9], outAccuracy: [0: 0.1, 1: 0.8], testDomains: [0],
                                                args: ["label": .string(run.label), "seed": .int(seed)]).jsonLine())
                }
                let dir = h.directory.appendingPathComponent("recs/seed\(seed)")
                try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
                try (lines.joined(separator: "\n") + "\n").write(to: dir.appendingPathComponent("\(run.label).jsonl"), atomically: true, encoding: .utf8)
            }
        }
        // Without kernel noise: the standard error and the selection noise alone.
        XCTAssertEqual(h.run("summary recs versus=\"base\" kernel_noise=0"), 0, h.output.error)
        // The last paired table printed: its header line and a run's verdict.
        func pairedTable() -> ArraySlice<String> {
            let lines = h.output.standardLines
            return lines[(lines.lastIndex { $0.hasPrefix("paired against base") } ?? lines.endIndex)...]
        }
        func verdict(_ label: String) -> String? {
            pairedTable().first { $0.hasPrefix(label + " ") }?.split(separator: " ").last.map(String.init)
        }
        XCTAssertEqual(verdict("up"), "ahead", h.output.standard)
        XCTAssertEqual(verdict("down"), "behind", h.output.standard)
        XCTAssertEqual(verdict("noisy"), "tie", h.output.standard)
        XCTAssertEqual(verdict("scatter"), "tie", h.output.standard)
        XCTAssertEqual(pairedTable().first?.hasSuffix("kernel noise 0.0)"), true, h.output.standard)

        // A kernel noise of 6 points (one pair's difference moved that far by summation order alone)
        // counts 6 / √3 = 3.46 over the 3 pairs: the constant ±3 differences become ties. At 5 points
        // (2.89) they stand.
        XCTAssertEqual(h.run("summary recs versus=\"base\" kernel_noise=6"), 0, h.output.error)
        XCTAssertEqual(verdict("up"), "tie", h.output.standard)
        XCTAssertEqual(verdict("down"), "tie", h.output.standard)
        XCTAssertEqual(pairedTable().first?.hasSuffix("kernel noise 6.0)"), true, h.output.standard)
        XCTAssertEqual(h.run("summary recs versus=\"base\" kernel_noise=5"), 0, h.output.error)
        XCTAssertEqual(verdict("up"), "ahead", h.output.standard)
        XCTAssertEqual(verdict("down"), "behind", h.output.standard)
        // By default the measured constant applies and is printed.
        XCTAssertEqual(h.run("summary recs versus=\"base\""), 0, h.output.error)
        XCTAssertEqual(pairedTable().first?.hasSuffix(String(format: "kernel noise %.1f)", ShellCommands.kernelNoisePoints)), true,
                       h.output.standard)
        XCTAssertGreaterThan(ShellCommands.kernelNoisePoints, 0, "the measured default")
        XCTAssertEqual(h.run("summary recs versus=\"base\" kernel_noise=-1"), 65, "a negative noise is refused")
        XCTAssertTrue(h.output.error.contains("kernel_noise"), h.output.error)

        XCTAssertEqual(ShellCommands.verdict([0.02], noise: nil, kernelNoise: 0.01), .ahead, "one pair, judged by kernel noise alone")
        XCTAssertEqual(ShellCommands.verdict([-0.02], noise: nil, kernelNoise: 0.01), .behind)
        XCTAssertEqual(ShellCommands.verdict([0.02], noise: nil, kernelNoise: 0.03), .tie)
        XCTAssertEqual(ShellCommands.verdict([0.02], noise: 0.01, kernelNoise: 0.03), .tie, "the larger of noise and kernel noise")
        XCTAssertEqual(ShellCommands.verdict([0.04], noise: 0.03, kernelNoise: 0.01), .ahead)
        // Over 4 identical pairs the standard error is 0 and the kernel noise counts 0.03 / 2.
        XCTAssertEqual(ShellCommands.verdict([0.02, 0.02, 0.02, 0.02], noise: nil, kernelNoise: 0.03), .ahead)
        XCTAssertEqual(ShellCommands.verdict([0.02, 0.02, 0.02, 0.02], noise: nil, kernelNoise: 0.05), .tie)

        XCTAssertEqual(ShellCommands.verdict([0.02], noise: nil), .unknown)
        XCTAssertEqual(ShellCommands.verdict([0.02], noise: 0.01), .ahead)
        XCTAssertEqual(ShellCommands.verdict([0.02, 0.04], noise: 0.05), .tie)
        // Mean 0.03, s.e. 0.01: two standard errors would call it; with one degree of freedom the 95%
        // half-width is 12.7 standard errors.
        XCTAssertEqual(ShellCommands.verdict([0.02, 0.04], noise: nil), .tie)
        XCTAssertEqual(ShellCommands.verdict([0.02, 0.04, 0.02, 0.04, 0.02, 0.04, 0.02, 0.04], noise: nil), .ahead)
        XCTAssertEqual(ShellCommands.studentT975(degreesOfFreedom: 1), 12.706)
        XCTAssertEqual(ShellCommands.studentT975(degreesOfFreedom: 7), 2.365)
        // Past the table the approximation joins it smoothly (exact t(0.975, 40) = 2.021, ∞: 1.960).
        XCTAssertEqual(ShellCommands.studentT975(degreesOfFreedom: 40), 2.021, accuracy: 0.003)
        XCTAssertEqual(ShellCommands.studentT975(degreesOfFreedom: 1000), 1.962, accuracy: 0.003)
    }

    /// `plot bits from=`: per seed the mean over held-out domains, then mean ± std over seeds; the FP
    /// line is fp-control's mean; labels that are not <method>-<b>bit are left out.
    func testPlotBitsFromRecords() throws {
        let h = try ShellHarness()
        let rows: [(label: String, domain: Int, seed: Int, test: Double)] = [
            ("lsq-3bit", 0, 0, 0.40), ("lsq-3bit", 1, 0, 0.50), ("lsq-3bit", 0, 1, 0.44), ("lsq-3bit", 1, 1, 0.54),
            ("lsq-4bit", 0, 0, 0.50), ("lsq-4bit", 1, 0, 0.60),
            ("fp-control", 0, 0, 0.70), ("fp-control", 1, 0, 0.50), ("notes", 0, 0, 0.99),
        ]
        for row in rows {
            let other = 1 - row.domain
            let record = EvalRecord(step: 10, inAccuracy: [row.domain: row.test, other: 0.9], outAccuracy: [row.domain: 0.1, other: 0.8],
                                    testDomains: [row.domain], args: ["label": .string(row.label), "seed": .int(row.seed)])
            let dir = h.directory.appendingPathComponent("recs/seed\(row.seed)/d\(row.domain)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try (record.jsonLine() + "\n").write(to: dir.appendingPathComponent("\(row.label).jsonl"), atomically: true, encoding: .utf8)
        }
        XCTAssertEqual(h.run("plot bits from=\"recs\" format=png"), 0, h.output.error)
        let data = try XCTUnwrap(h.plotter.dataFiles.last).map(\.contents).joined(separator: "\n")
        // lsq at 3 bits: seed 0 → 45, seed 1 → 49: mean 47, std 2.83; at 4 bits: 55 (one seed, no spread).
        XCTAssertTrue(data.contains("47") && data.contains("2.828"), data)
        XCTAssertTrue(data.contains("55"), data)
        XCTAssertTrue(data.contains("60"), "the FP line at fp-control's mean (70 + 50) / 2: \(data)")
        XCTAssertFalse(data.contains("99"), "an unlabelled run is not a bit width: \(data)")

        XCTAssertEqual(h.run("plot curves from=\"recs\""), 70)
        XCTAssertTrue(h.output.error.contains("from= applies to `plot bits` and `plot sensitivity`"), h.output.error)
    }

    /// `plot sensitivity from= x= by=`: values from each record's hparams, per seed the mean over
    /// held-out domains, then mean ± std over seeds; ERM runs and labels outside `runs=` left out;
    /// `metric=frozen` reads the last record's frozen count.
    func testPlotSensitivityFromRecords() throws {
        let h = try ShellHarness()
        let rows: [(label: String, algorithm: String, tau: Double, K: Int, domain: Int, seed: Int, test: Double, frozen: Double)] = [
            ("f-a", "fqat", 0.3, 10, 0, 0, 0.40, 2), ("f-a", "fqat", 0.3, 10, 1, 0, 0.50, 4),
            ("f-a", "fqat", 0.3, 10, 0, 1, 0.44, 6), ("f-a", "fqat", 0.3, 10, 1, 1, 0.54, 8),
            ("f-b", "fqat", 0.7, 10, 0, 0, 0.61, 37), ("f-c", "fqat", 0.3, 50, 0, 0, 0.33, 1),
            ("fp-erm", "erm", 0.5, 10, 0, 0, 0.99, 0), ("other", "fqat", 0.5, 10, 0, 0, 0.77, 0),
        ]
        for row in rows {
            let other = 1 - row.domain
            let record = EvalRecord(step: 10, inAccuracy: [row.domain: row.test, other: 0.9], outAccuracy: [row.domain: 0.1, other: 0.8],
                                    testDomains: [row.domain], metrics: row.algorithm == "erm" ? [:] : ["frozen_scales": row.frozen],
                                    args: ["label": .string(row.label), "seed": .int(row.seed), "algorithm": .string(row.algorithm)],
                                    hparams: ["tau": .double(row.tau), "K": .double(Double(row.K))])
            let dir = h.directory.appendingPathComponent("recs/seed\(row.seed)/d\(row.domain)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try (record.jsonLine() + "\n").write(to: dir.appendingPathComponent("\(row.label).jsonl"), atomically: true, encoding: .utf8)
        }
        XCTAssertEqual(h.run("plot sensitivity from=\"recs\" x=tau by=K runs=\"f-*\" format=png"), 0, h.output.error)
        let data = try XCTUnwrap(h.plotter.dataFiles.last).map(\.contents).joined(separator: "\n")
        // K 10, τ 0.3: seed 0 → 45, seed 1 → 49: mean 47, std 2.83; τ 0.7: 61. K 50, τ 0.3: 33. Not
        // the ERM run (99) nor the label outside runs= (77).
        XCTAssertEqual(data.split(separator: "\n").map(String.init), [
            "series_index,x,y,y_error,series", "0,0.3,47,2.8284271247461903,K = 10", "0,0.7,61,0,K = 10", "1,0.3,33,0,K = 50"])

        XCTAssertEqual(h.run("plot sensitivity from=\"recs\" x=tau runs=\"f-a\" metric=frozen format=png"), 0, h.output.error)
        let frozen = try XCTUnwrap(h.plotter.dataFiles.last).map(\.contents).joined(separator: "\n")
        // Per seed (2 + 4) / 2 = 3 and (6 + 8) / 2 = 7: mean 5, std 2.83.
        XCTAssertEqual(frozen.split(separator: "\n").last.map(String.init), "0,0.3,5,2.8284271247461903,frozen")

        XCTAssertEqual(h.run("plot sensitivity from=\"recs\" x=taux"), 70)
        XCTAssertTrue(h.output.error.contains("no hyperparameter 'taux'; they have: K, tau"), h.output.error)
        XCTAssertEqual(h.run("plot sensitivity x=tau"), 70)
        XCTAssertTrue(h.output.error.contains("give from=<folder>"), h.output.error)
        XCTAssertEqual(h.run("plot sensitivity from=\"recs\""), 70)
        XCTAssertTrue(h.output.error.contains("needs x=<hyperparameter>"), h.output.error)
    }
}

final class RecordsFileTests: XCTestCase {
    /// A new run with the label of earlier records moves them aside (`<file>.1`, `.2`, …, which
    /// `summary` does not read) instead of appending to them; a continued run appends.
    func testNewRunSetsEarlierRecordsAside() throws {
        try XCTSkipUnless(fashionMNISTPresent, "Fashion-MNIST (dataset-fashion-mnist) is not installed")
        let h = try ShellHarness()
        XCTAssertEqual(h.run("""
            data style-fmnist per_domain=60 batch=4 test=fog
            model new resnet8 width=0.5
            train erm steps=2 eval_every=1 label=x
            train erm steps=1
            train erm steps=2 eval_every=1 new=true label=x
            train erm steps=3 eval_every=1 new=true label=x
            """), 0, h.output.error)
        let out = h.directory.appendingPathComponent("out")
        func lines(_ name: String) throws -> Int {
            try String(contentsOf: out.appendingPathComponent(name), encoding: .utf8).split(separator: "\n").count
        }
        XCTAssertEqual(try lines("x.jsonl.1"), 3, "the first run: 2 evaluations, then 1 more when continued")
        XCTAssertEqual(try lines("x.jsonl.2"), 2)
        XCTAssertEqual(try lines("x.jsonl"), 3)
        XCTAssertTrue(h.output.standard.contains("earlier records in \(out.path)/x.jsonl moved to \(out.path)/x.jsonl.2"), h.output.standard)
        // `summary` reads only the newest run's records: its row is that run's selection.
        let selected = try XCTUnwrap(h.output.standardLines.last { $0.contains("selected step") })
        let numbers = selected.split(separator: " ").filter { $0.hasSuffix("%") }.map { String($0.dropLast()) }
        XCTAssertEqual(numbers.count, 2, selected)
        XCTAssertEqual(h.run("summary \"\(out.path)\""), 0, h.output.error)
        let row = try XCTUnwrap(h.output.standardLines.last { $0.hasPrefix("x ") })
        XCTAssertTrue(row.contains("\(numbers[0]) / \(numbers[1])"), "\(row) against \(selected)")
        XCTAssertTrue(row.hasSuffix(" 1"), "one run (seed) counted: \(row)")
    }
}

final class LandscapeFigureTests: XCTestCase {
    func assertHasText(_ script: String, _ text: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertTrue(script.contains(text), "no text \(text) in\n\(script)", file: file, line: line)
    }
    func assertHasLine(_ script: String, _ text: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertTrue(script.split(separator: "\n").contains { $0 == text }, "no line \(text) in\n\(script)", file: file, line: line)
    }

    /// `landscape … style=surface`: by default the quantized models share one z range and the FP model
    /// has its own (an FP surface's corners flattened the quantized ones in the Fig. 7 analogue); every
    /// panel carries its flatness numbers; `zrange=` and `zscale=log` change that.
    func testSurfacePanelsGroupZRangesAndCarryFlatness() throws {
        let h = try ShellHarness()
        XCTAssertEqual(h.run("""
            data style-fmnist per_domain=60 batch=4 test=fog
            model new resnet8 width=0.5
            save model "fp.safetensors"
            quantize lsq bits=4 calib=1
            save model "q4.safetensors"
            load model "fp.safetensors"
            quantize lsq bits=2 calib=1
            save model "q2.safetensors"
            landscape plane x=-1:1:3 y=-1:1:3 split=ood images=20 models=["fp.safetensors", "q4.safetensors", "q2.safetensors"] style=surface name="l"
            """), 0, h.output.error)
        func zRanges(_ script: String) -> [String] {
            script.split(separator: "\n").filter { $0.hasPrefix("set zrange") }.map(String.init)
        }
        let grouped = try XCTUnwrap(h.plotter.scripts.last)
        assertHasText(grouped, "quantized models share one z range, FP its own")
        let ranges = zRanges(grouped)
        XCTAssertEqual(ranges.count, 3, grouped)
        XCTAssertEqual(ranges[1], ranges[2], "the two quantized panels share a range")
        XCTAssertNotEqual(ranges[0], ranges[1], "the FP panel has its own")
        for label in ["fp", "q4", "q2"] { assertHasText(grouped, "set title '\(label) (OOD)'.\"\\n\".'centre ") }
        assertHasText(grouped, "| max ΔL r=0.25 –, r=0.5 –, r=1 ")
        assertHasText(grouped, "set contour base")

        // From the cache: one range for all on a log axis, then each panel its own, without contours.
        /// The three models' surface from the cache with extra options; returns the gnuplot script.
        func cachedSurface(_ options: String) throws -> String {
            XCTAssertEqual(h.run("""
                landscape plane x=-1:1:3 y=-1:1:3 split=ood images=20 models=["fp.safetensors", "q4.safetensors", "q2.safetensors"] style=surface \(options) name="l"
                """), 0, h.output.error)
            return try XCTUnwrap(h.plotter.scripts.last)
        }
        let shared = try cachedSurface("zrange=shared zscale=log")
        XCTAssertEqual(Set(zRanges(shared)).count, 1, shared)
        assertHasLine(shared, "set logscale z")
        assertHasText(shared, "one z range for all panels")
        let own = try cachedSurface("zrange=panel contours=false")
        XCTAssertEqual(Set(zRanges(own)).count, 3, own)
        XCTAssertFalse(own.contains("set contour"), own)
        XCTAssertEqual(h.run("landscape plane x=-1:1:3 y=-1:1:3 images=20 style=surface zscale=cubic"), 65)
        XCTAssertTrue(h.output.error.contains("zscale"), h.output.error)
    }
}

final class RunIndependenceTests: XCTestCase {
    /// A run's records depend on its checkpoint, seed and settings, not on the runs an earlier part of
    /// the session made: FQAT after QAT and QAT+SAGM from the same checkpoint (as the quickstart runs
    /// it) writes the same records, frozen counts included, as FQAT alone in a fresh session. Guards
    /// against state (sampler, disorder tracker, freeze set, optimizer, quantizer ranges) carrying over.
    func testAnFQATRunDoesNotDependOnTheRunsBeforeIt() throws {
        try XCTSkipUnless(fashionMNISTPresent, "Fashion-MNIST (dataset-fashion-mnist) is not installed")
        func script(_ methods: String, checkpoint: String, trainFirst: Bool) -> String {
            """
            set seed=0
            data style-fmnist test=fog per_domain=60 batch=8
            \(trainFirst ? "model new resnet8 width=0.5\ntrain erm steps=3 lr=1e-3 bn=train eval_every=3 label=fp-erm\nsave model \"\(checkpoint)\"" : "")
            for method in \(methods) {
                load model "\(checkpoint)"
                quantize lsq bits=4 init=mse calib=2
                train method steps=12 lr=1e-4 scale_lr=1e-4 bn=frozen tau=0.5 K=3 eval_every=4
            }
            """
        }
        let all = try ShellHarness(), alone = try ShellHarness()
        let checkpoint = all.directory.appendingPathComponent("fp.safetensors").path
        XCTAssertEqual(all.run(script(#"["qat", "qat+sagm", "fqat"]"#, checkpoint: checkpoint, trainFirst: true)), 0, all.output.error)
        XCTAssertEqual(alone.run(script(#"["fqat"]"#, checkpoint: checkpoint, trainFirst: false)), 0, alone.output.error)
        func records(_ h: ShellHarness) throws -> [[String: Any]] {
            let text = try String(contentsOf: h.directory.appendingPathComponent("out/fqat-lsq-4bit.jsonl"), encoding: .utf8)
            return try text.split(separator: "\n").map {
                var r = try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
                r["provenance"] = nil  // names the harness's own folder
                r["args"] = nil
                return r
            }
        }
        let a = try records(all), b = try records(alone)
        XCTAssertEqual(a.count, 3)
        XCTAssertEqual(a.count, b.count)
        XCTAssertTrue(a.contains { ($0["frozen_scales"] as? Int ?? 0) > 0 }, "the run must freeze something for the check to mean anything")
        for (x, y) in zip(a, b) {
            XCTAssertEqual(NSDictionary(dictionary: x), NSDictionary(dictionary: y))
        }
    }
}
