// Issue 17: hostile inputs found by hand. Each test reproduces one report (S = security, L = lost work,
// C/R/H/W = crash or silent acceptance) and checks the clear error and that nothing was lost.
import Datasets
import Foundation
import NN
import Plot
@testable import ShellCommands
import ShellLanguage
import XCTest

final class HardeningTests: XCTestCase {
    /// A harness with a small trained run (resnet8 at width 0.5, 2 steps) on 60 images per domain.
    func trainedHarness(steps: Int = 2, extra: String = "") throws -> ShellHarness {
        let h = try ShellHarness()
        let status = h.run("data style-fmnist per_domain=60 batch=4; model new resnet8 width=0.5; \(extra) train erm steps=\(steps) eval_every=1 bn=train")
        XCTAssertEqual(status, 0, h.output.error)
        return h
    }

    // MARK: S2 — plot names and run labels stay inside <out>/plots and <out>

    func testPlotNamesAndLabelsCannotEscapeTheOutputFolder() throws {
        try XCTSkipUnless(fashionMNISTPresent, "Fashion-MNIST is not installed")
        let h = try trainedHarness(extra: "")
        XCTAssertEqual(h.run("train erm steps=1 eval_every=1 new=true label=\"../../../../esc`id`\"; plot curves name=\"../../../../x\"; plot curves"), 0, h.output.error)
        let out = h.session.settings.out
        let plots = (out as NSString).appendingPathComponent("plots")
        let outputs = h.plotter.scripts.flatMap { $0.split(separator: "\n") }.filter { $0.hasPrefix("set output '") }
            .map { String($0.dropFirst("set output '".count).dropLast()) }
        let written = h.plotter.dataFiles.joined().map(\.path) + outputs
        XCTAssertEqual(outputs.count, 2)
        for path in written {
            XCTAssertTrue(path.hasPrefix(plots + "/"), "\(path) is outside \(plots)")
            XCTAssertFalse((path as NSString).pathComponents.contains(".."), path)
        }
        XCTAssertTrue(h.output.error.contains("is not a plain file name"), h.output.error)
        // The records file of the run is inside <out> too.
        let records = try FileManager.default.contentsOfDirectory(atPath: out).filter { $0.hasSuffix(".jsonl") }
        XCTAssertTrue(records.contains { $0.hasPrefix(".._.._") }, "\(records)")
    }

    // MARK: L1, L3 — a session is one file; a failed load changes nothing

    func testSessionIsOneFileAndAFailedLoadKeepsTheCurrentSession() throws {
        try XCTSkipUnless(fashionMNISTPresent, "Fashion-MNIST is not installed")
        let saver = try trainedHarness()
        XCTAssertEqual(saver.run("save session \"s.fqsession\""), 0, saver.output.error)
        let saved = saver.directory.appendingPathComponent("s.fqsession")
        XCTAssertFalse(FileManager.default.fileExists(atPath: saved.path + ".run"), "a session must be one file")
        let file = try SafeTensors.read(contentsOf: saved)
        XCTAssertEqual(file.metadata["format"], "fqat-shell.session.v3")
        XCTAssertTrue(file.names.contains { $0.hasPrefix("run/") }, "the run is inside the session file")

        // Damaged copies: truncated; the run's state unreadable (the model part loads, the run does not).
        let data = try Data(contentsOf: saved)
        let truncated = saver.directory.appendingPathComponent("truncated.fqsession")
        try data.prefix(data.count / 2).write(to: truncated)
        var badRun = file
        badRun.metadata["fqat.run.state"] = "{\"step\": \"x\"}"
        let badRunPath = saver.directory.appendingPathComponent("badrun.fqsession")
        try SafeTensors.write(badRun.names.map { ($0, badRun.tensors[$0]!) }, metadata: badRun.metadata, to: badRunPath)

        let h = try ShellHarness()
        XCTAssertEqual(h.run("data style-fmnist per_domain=60 batch=4; model new resnet14 width=0.5; train erm steps=3 eval_every=3 bn=train; set out=\"kept\""), 0, h.output.error)
        for path in [truncated, badRunPath] {
            XCTAssertEqual(h.run("load session \"\(path.path)\""), 70, "\(path.lastPathComponent) loaded")
            XCTAssertEqual(h.session.network?.architecture, "resnet14", "a failed load replaced the model")
            XCTAssertEqual(h.session.run?.step, 3, "a failed load ended the run")
            XCTAssertEqual(h.session.settings.out, "kept", "a failed load changed the settings")
        }
        // A session in the older two-file layout (v1: `<path>.run` beside it) still loads.
        let legacy = saver.directory.appendingPathComponent("legacy.fqsession")
        try writeVersion1Session(from: file, to: legacy)
        let old = try ShellHarness()
        XCTAssertEqual(old.run("load session \"\(legacy.path)\""), 0, old.output.error)
        XCTAssertEqual(old.session.run?.step, 2)
        // `load model` takes the model part of a session file.
        let m = try ShellHarness()
        XCTAssertEqual(m.run("load model \"\(saved.path)\""), 0, m.output.error)
        XCTAssertEqual(m.session.network?.architecture, "resnet8")
        // The good session loads and continues.
        XCTAssertEqual(h.run("load session \"\(saved.path)\"; train erm steps=1"), 0, h.output.error)
        XCTAssertEqual(h.session.network?.architecture, "resnet8")
        XCTAssertEqual(h.session.run?.step, 3)
    }

    // MARK: C4, C5, W2 — a loaded session passes the same checks as typed commands

    func testLoadedSessionSettingsAreChecked() throws {
        try XCTSkipUnless(fashionMNISTPresent, "Fashion-MNIST is not installed")
        let saver = try trainedHarness()
        XCTAssertEqual(saver.run("save session \"s.fqsession\""), 0, saver.output.error)
        let saved = saver.directory.appendingPathComponent("s.fqsession")
        let file = try SafeTensors.read(contentsOf: saved)
        let cases: [(path: [String], value: Any, message: String)] = [
            (["settings", "seed"], -1, "settings.seed"), (["hyperparameters", "batchPerDomain"], 0, "hyperparameters.batchPerDomain"),
            (["settings", "threads"], 0, "settings.threads"), (["settings", "threads"], 100000, "settings.threads"),
            (["settings", "trialSeed"], -1, "settings.trialSeed"), (["quantization"], ["method": "lsq", "weightBits": 99, "activationBits": 4], "quantization.weightBits"),
            (["hyperparameters", "learningRate"], 5.0, "hyperparameters.lr"), (["backend"], "cuda", "backend 'cuda' is not one of"),
        ]
        for (index, c) in cases.enumerated() {
            var json = try JSONSerialization.jsonObject(with: Data(file.metadata["fqat.session"]!.utf8)) as! [String: Any]
            if c.path.count == 1 { json[c.path[0]] = c.value } else {
                var inner = json[c.path[0]] as! [String: Any]
                inner[c.path[1]] = c.value
                json[c.path[0]] = inner
            }
            var edited = file
            edited.metadata["fqat.session"] = String(decoding: try JSONSerialization.data(withJSONObject: json), as: UTF8.self)
            let path = saver.directory.appendingPathComponent("edited\(index).fqsession")
            try SafeTensors.write(edited.names.map { ($0, edited.tensors[$0]!) }, metadata: edited.metadata, to: path)
            let h = try ShellHarness()
            XCTAssertEqual(h.run("load session \"\(path.path)\""), 70, "\(c.path) = \(c.value) was accepted")
            XCTAssertTrue(h.output.error.contains(c.message) && h.output.error.contains("nothing was loaded"), h.output.error)
            XCTAssertNil(h.session.network)
        }
    }

    // MARK: C3, W1, W3 — model file metadata and step sizes are checked before use

    func testHostileModelFilesAreRefused() throws {
        try XCTSkipUnless(fashionMNISTPresent, "Fashion-MNIST is not installed")
        let saver = try ShellHarness()
        XCTAssertEqual(saver.run("data style-fmnist per_domain=60 batch=4; model new resnet8 width=0.5; quantize lsq bits=4; save model \"q.safetensors\""), 0, saver.output.error)
        let file = try SafeTensors.read(contentsOf: saver.directory.appendingPathComponent("q.safetensors"))
        func variant(_ name: String, _ edit: (inout SafeTensorsFile) -> Void) throws -> String {
            var f = file
            edit(&f)
            let path = saver.directory.appendingPathComponent(name).path
            try SafeTensors.write(f.names.map { ($0, f.tensors[$0]!) }, metadata: f.metadata, to: URL(fileURLWithPath: path))
            return path
        }
        let scaleName = file.names.first { $0.hasSuffix(".w.s") }!
        var quantizers = try JSONSerialization.jsonObject(with: Data(file.metadata["fqat.quantizers"]!.utf8)) as! [[String: Any]]
        quantizers.append(quantizers[0])
        let duplicated = String(decoding: try JSONSerialization.data(withJSONObject: quantizers), as: UTF8.self)
        let cases: [(String, String)] = [
            (try variant("wide.safetensors") { $0.metadata["fqat.width"] = "10000" }, "fqat.width"),
            (try variant("classes.safetensors") { $0.metadata["fqat.classes"] = "4000000000000" }, "fqat.classes"),
            (try variant("zero.safetensors") { f in
                if case .float(var t) = f.tensors[scaleName]! { t.data[0] = 0; f.tensors[scaleName] = .float(t) } }, "step size"),
            (try variant("nan.safetensors") { f in
                if case .float(var t) = f.tensors[scaleName]! { t.data[0] = .nan; f.tensors[scaleName] = .float(t) } }, "step size"),
            (try variant("dup.safetensors") { $0.metadata["fqat.quantizers"] = duplicated }, "appears twice"),
            (try variant("setup.safetensors") { f in
                f.metadata["fqat.quantization.setup"] = f.metadata["fqat.quantization.setup"]!.replacingOccurrences(of: "\"weightBits\":4", with: "\"weightBits\":99")
            }, "quantization.weightBits"),
        ]
        for (path, message) in cases {
            let h = try ShellHarness()
            XCTAssertEqual(h.run("load model \"\(path)\""), 70, "\(path) loaded")
            XCTAssertTrue(h.output.error.contains(message), "\(path): \(h.output.error)")
            XCTAssertNil(h.session.network)
        }
    }

    // MARK: C7 — sizes that cannot fit are refused with an estimate

    func testModelsAndDataThatCannotFitAreRefused() throws {
        let h = try ShellHarness()
        XCTAssertEqual(h.run("model new resnet50 width=8 classes=100000"), 70)
        XCTAssertTrue(h.output.error.contains("parameters") && h.output.error.contains("smaller width="), h.output.error)
        XCTAssertNil(h.session.network)
        XCTAssertEqual(h.run("data style-fmnist size=1024 channels=3 per_domain=100000"), 70)
        XCTAssertTrue(h.output.error.contains("smaller size="), h.output.error)
        XCTAssertEqual(h.run("landscape plane x=-1:1:4000000000 y=-1:1:3"), 70)
        try XCTSkipUnless(fashionMNISTPresent, "Fashion-MNIST is not installed")
        XCTAssertEqual(h.run("data style-fmnist size=224 channels=3 per_domain=200; model new resnet50; eval batch=4096"), 70)
        XCTAssertTrue(h.output.error.contains("of activations") && h.output.error.contains("use batch="), h.output.error)
        // The training batch: 64 images of 3×224×224 from each of 3 training domains through a ResNet-50
        // need hundreds of GB of activations; refused before the step allocates them, with a batch that fits.
        h.output.clear()
        XCTAssertEqual(h.run("data style-fmnist size=224 channels=3 per_domain=200 batch=64; model new resnet50; train erm steps=1"), 70)
        XCTAssertTrue(h.output.error.contains("a training step takes 64 images from each of 3 training domains"), h.output.error)
        XCTAssertTrue(h.output.error.contains("of activations") && h.output.error.contains("`data … batch="), h.output.error)
        XCTAssertNil(h.session.run, "no run was started")
        XCTAssertEqual(h.run("data style-fmnist per_domain=60 batch=4; model new resnet8 width=0.5; train erm steps=1 eval_every=1000"), 0, h.output.error)
    }

    /// C7 for DomainBed folders: images are decoded on demand, so what must fit is each step's batch (and
    /// the decoded-image cache), checked when the folder is listed; and a landscape's evaluation images,
    /// which it decodes once and holds for the whole grid.
    func testFolderDataThatCannotFitIsRefused() throws {
        let h = try ShellHarness()
        let root = h.directory.appendingPathComponent("PACS")
        for domain in ["art", "photo", "sketch"] {
            for cls in ["dog", "horse"] {
                let folder = root.appendingPathComponent("\(domain)/\(cls)")
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
                for i in 0..<3 {
                    let bytes = Array("P6\n4 4\n255\n".utf8) + [UInt8](repeating: UInt8(40 * i), count: 48)
                    XCTAssertTrue(FileManager.default.createFile(atPath: folder.appendingPathComponent("\(i).ppm").path, contents: Data(bytes)))
                }
            }
        }
        // 4096 images of 3×1024×1024 from each of 2 training domains: about 103 GB per step.
        XCTAssertEqual(h.run("data folder root=\"\(root.path)\" test=sketch size=1024 batch=4096"), 70)
        XCTAssertTrue(h.output.error.contains("a training step holds 4096 images of 3×1024×1024 from each of 2 training domains"), h.output.error)
        XCTAssertTrue(h.output.error.contains("cache of decoded images") && h.output.error.contains("or a smaller size="), h.output.error)
        XCTAssertNil(h.session.dataset)
        XCTAssertEqual(h.run("data folder root=\"\(root.path)\" test=sketch size=32 batch=4"), 0, h.output.error)
        XCTAssertEqual(h.session.dataset?.domains.count, 3)
        // A landscape's images, against a budget: 1000 images of 3×224×224 (602 MB) do not fit in 100 MB.
        XCTAssertThrowsError(try ShellCommands.checkLandscapeImageMemory(images: 1000, imageShape: [3, 224, 224], budget: 100e6)) {
            XCTAssertTrue("\($0)".contains("use images=166 or less"), "\($0)")
        }
        XCTAssertNoThrow(try ShellCommands.checkLandscapeImageMemory(images: 100, imageShape: [3, 224, 224], budget: 100e6))
    }

    // MARK: L5 — records that cannot be written: an error, and the session stays

    func testUnwritableRecordsKeepTheSession() throws {
        try XCTSkipUnless(fashionMNISTPresent, "Fashion-MNIST is not installed")
        try XCTSkipUnless(FileManager.default.fileExists(atPath: "/dev/full"), "no /dev/full")
        let h = try trainedHarness()
        // The disk fills during a run: its records file now ends on the full device (ENOSPC on write).
        let records = (h.session.settings.out as NSString).appendingPathComponent("erm.jsonl")
        try FileManager.default.removeItem(atPath: records)
        try FileManager.default.createSymbolicLink(atPath: records, withDestinationPath: "/dev/full")
        XCTAssertEqual(h.run("train erm steps=3 eval_every=1 bn=train"), 70)
        XCTAssertTrue(h.output.error.contains("could not append a record") && h.output.error.contains("No space left on device"), h.output.error)
        XCTAssertEqual(h.session.run?.step, 3, "the run stopped at the step after the failed write and is kept")
        XCTAssertEqual(h.session.run?.records.count, 3, "the record that could not be written is kept with the run")
        XCTAssertNotNil(h.session.network)
        // An output folder that takes no files.
        XCTAssertEqual(h.run("set out=\"/proc/self\"; train erm steps=1 new=true label=proc"), 70)
        XCTAssertTrue(h.output.error.contains("cannot write records to '/proc/self/proc.jsonl'"), h.output.error)
        XCTAssertNotNil(h.session.run)
    }

    // MARK: C8 — records are input too

    func testSummaryOfHostileRecordsIsAnError() throws {
        let h = try ShellHarness()
        let folder = h.directory.appendingPathComponent("recs")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let line = #"{"args": {"seed": 1e300, "test_envs": [0], "label": "x"}, "env0_in_acc": 0.5, "env0_out_acc": 0.5, "env1_in_acc": 0.5, "env1_out_acc": 0.5, "step": 1}"#
        try (line + "\n").write(to: folder.appendingPathComponent("x.jsonl"), atomically: true, encoding: .utf8)
        XCTAssertEqual(h.run("summary \"\(folder.path)\""), 70)
        XCTAssertTrue(h.output.error.contains("args.seed"), h.output.error)
        let huge = #"{"args": {"seed": 0, "test_envs": [1e300]}, "env0_in_acc": 0.5, "env0_out_acc": 0.5, "step": 1e300}"#
        try (huge + "\n").write(to: folder.appendingPathComponent("x.jsonl"), atomically: true, encoding: .utf8)
        XCTAssertEqual(h.run("summary \"\(folder.path)\""), 70)
        XCTAssertTrue(h.output.error.contains("step"), h.output.error)
    }
}

/// The crash reproducers of issue 17, run through the built executable as a user would: each must end
/// with a clear error and exit status 65 or 70, never a signal.
final class HostileInputExecutableTests: XCTestCase {
    func run(_ arguments: [String], stdin: String? = nil, environment: [String: String] = [:], in dir: URL) throws -> (Termination, String) {
        let binary = repositoryRoot.appendingPathComponent(".build/debug/fqat-shell").path
        let child = try Subprocess(executable: binary, arguments: arguments, workingDirectory: dir.path,
                                   stdin: .null, stdout: .pipe, stderr: .standardOutput)
        var data = Data()
        let group = DispatchGroup()
        let output = child.output!
        let box = DataBox()
        DispatchQueue.global().async(group: group) { box.data = output.readDataToEndOfFile() }
        var ended = child.wait(timeout: 120)
        if ended == nil { child.send(signal: SIGKILL); ended = child.wait(); XCTFail("\(arguments) did not end in 120 s") }
        group.wait()
        data = box.data
        return (ended!, String(decoding: data, as: UTF8.self))
    }

    func testCrashReproducersEndWithClearErrors() throws {
        let binary = repositoryRoot.appendingPathComponent(".build/debug/fqat-shell").path
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: binary), "fqat-shell is not built")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fqat-hostile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let cases: [(name: String, script: String, status: Int32, message: String)] = [
            ("C1", "let x = - -9223372036854775808", 65, "integer overflow"),
            ("C2 brackets", "let x = " + String(repeating: "[", count: 2000) + String(repeating: "]", count: 2000), 65, "nesting too deep"),
            ("C2 parens", "let x = " + String(repeating: "(", count: 2000) + "1" + String(repeating: ")", count: 2000), 65, "nesting too deep"),
            ("C2 ifs", String(repeating: "if true {\n", count: 5000) + String(repeating: "}\n", count: 5000), 65, "nesting too deep"),
            ("C2 sum", "let x = 1" + String(repeating: " + 1", count: 50000), 65, "nesting too deep"),
            ("C2 minus", "let x = " + String(repeating: "- ", count: 100000) + "1", 65, "nesting too deep"),
            ("S3 dollar", "print $99999999999999999999999", 65, "out of range"),
            ("S3 inf", "print 1e999", 65, "too large"),
            ("S3 overflow", "let a = 1e300\nprint a * a * a", 70, "number overflow"),
            ("R1 string", "let s = \"xxxxxxxxxxxxxxxx\"\nfor i in [" + (1...40).map(String.init).joined(separator: ",") + "] {\n s = s + s\n}", 70, "string too long"),
            ("R1 list", "let l = [1, 2, 3, 4]\nfor i in [" + (1...40).map(String.init).joined(separator: ",") + "] {\n l = l + l\n}", 70, "list too large"),
            ("R1 nested", "let l = [1]\nfor i in [" + (1...60).map(String.init).joined(separator: ",") + "] {\n l = [l, l]\n}", 70, "list too large"),
        ]
        for c in cases {
            let path = dir.appendingPathComponent("\(c.name.replacingOccurrences(of: " ", with: "_")).fqs")
            try c.script.write(to: path, atomically: true, encoding: .utf8)
            let (ended, text) = try run([path.path], in: dir)
            XCTAssertEqual(ended, .exited(c.status), "\(c.name): \(text.prefix(2000))")
            XCTAssertTrue(text.contains(c.message), "\(c.name): \(text.prefix(2000))")
        }
        // H1: 5,000 bad escapes on one line print a few lines, not megabytes.
        let escapes = dir.appendingPathComponent("h1.fqs")
        try ("print \"" + String(repeating: "\\u{", count: 5000) + "\"\n").write(to: escapes, atomically: true, encoding: .utf8)
        let (ended, text) = try run([escapes.path], in: dir)
        XCTAssertEqual(ended, .exited(65))
        XCTAssertLessThan(text.utf8.count, 10_000, "diagnostics are capped")
        XCTAssertTrue(text.contains("more problems not shown"), String(text.prefix(2000)))
        // S3: reserved names as script options.
        let plain = dir.appendingPathComponent("plain.fqs")
        try "print args".write(to: plain, atomically: true, encoding: .utf8)
        for option in ["--let=1", "--args=7"] {
            let (ended, text) = try run([plain.path, option], in: dir)
            XCTAssertEqual(ended, .exited(65), "\(option): \(text)")
            XCTAssertTrue(text.contains("reserved word"), text)
        }
    }

    /// C7 through the executable: a training batch and a folder's batches that cannot fit end with the
    /// estimate and exit 70, not an abort in the allocator.
    func testBatchesThatCannotFitEndWithClearErrors() throws {
        let binary = repositoryRoot.appendingPathComponent(".build/debug/fqat-shell").path
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: binary), "fqat-shell is not built")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fqat-oversized-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        for domain in ["a", "b"] {
            for cls in ["x", "y"] {
                let folder = dir.appendingPathComponent("F/\(domain)/\(cls)")
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
                let bytes = Array("P6\n2 2\n255\n".utf8) + [UInt8](repeating: 9, count: 12)
                XCTAssertTrue(FileManager.default.createFile(atPath: folder.appendingPathComponent("0.ppm").path, contents: Data(bytes)))
            }
        }
        let (folderEnded, folderText) = try run(["-c", "data folder root=F size=1024 batch=4096"], in: dir)
        XCTAssertEqual(folderEnded, .exited(70), folderText)
        XCTAssertTrue(folderText.contains("a training step holds 4096 images of 3×1024×1024") && folderText.contains("use batch="), folderText)
        try XCTSkipUnless(fashionMNISTPresent, "Fashion-MNIST is not installed")
        let (ended, text) = try run(["-c", "set progress=off; data style-fmnist size=224 channels=3 per_domain=200 batch=64; model new resnet50; train erm steps=1"], in: dir)
        XCTAssertEqual(ended, .exited(70), text)
        XCTAssertTrue(text.contains("of activations") && text.contains("`data … batch="), text)
    }
}

/// The fuzzing corpora (seeds, and every input a fuzzer found that once crashed) replayed through the
/// harnesses: none may crash (docs/reliability.md, scripts/fuzz.sh).
final class FuzzCorpusTests: XCTestCase {
    func testCorporaReplayWithoutACrash() throws {
        let binary = repositoryRoot.appendingPathComponent(".build/debug/fqat-fuzz").path
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: binary), "fqat-fuzz is not built")
        for harness in ["language", "safetensors", "session", "idx", "image"] {
            let corpus = repositoryRoot.appendingPathComponent("Tests/Fuzz/\(harness)").path
            let count = try FileManager.default.contentsOfDirectory(atPath: corpus).filter { !$0.hasPrefix(".") }.count
            XCTAssertGreaterThan(count, 0, "\(harness): empty corpus")
            let result = try Subprocess.run(executable: binary, arguments: [harness, corpus], mergeErrors: true)
            let text = String(decoding: result.output, as: UTF8.self)
            XCTAssertEqual(result.termination, .exited(0), "\(harness): \(text)")
            XCTAssertTrue(text.contains("fqat-fuzz \(harness): \(count) inputs, no crash"), text)
        }
    }
}

private final class DataBox: @unchecked Sendable {
    var data = Data()
}
