// Issue 18: every saved field has one owner and one Codable type. `save session` → `load session` →
// `save session` gives the same bytes for every setting, hyperparameter, quantization option, data
// choice, run label and frozen set; older session files (v2 one-file, v1 two-file) load with defaults
// for what they did not save; and the small bugs around saved state stay fixed.
import Datasets
import Foundation
import NN
@testable import ShellCommands
import ShellLanguage
import TensorCore
import XCTest

final class SessionStateTests: XCTestCase {
    static let sessionsDirectory = scriptsDirectory.appendingPathComponent("sessions")

    /// Runs `setup` in a fresh shell, saves, loads the file into another fresh shell, saves again, and
    /// checks the two files are the same bytes. Returns the shell that loaded the session.
    @discardableResult
    func assertRoundTrip(_ setup: String, file: StaticString = #filePath, line: UInt = #line) throws -> ShellHarness {
        let saver = try ShellHarness()
        XCTAssertEqual(saver.run(setup + "; save session \"first.fqsession\""), 0, saver.output.error, file: file, line: line)
        let first = saver.directory.appendingPathComponent("first.fqsession")
        let loader = try ShellHarness()
        XCTAssertEqual(loader.run("load session \"\(first.path)\"; save session \"second.fqsession\""), 0, loader.output.error,
                       file: file, line: line)
        let a = try Data(contentsOf: first), b = try Data(contentsOf: loader.directory.appendingPathComponent("second.fqsession"))
        XCTAssertEqual(a.count, b.count, "sizes differ", file: file, line: line)
        if a != b {
            let sa = try SafeTensors.read(contentsOf: first)
            let sb = try SafeTensors.read(contentsOf: loader.directory.appendingPathComponent("second.fqsession"))
            for key in Set(sa.metadata.keys).union(sb.metadata.keys) where sa.metadata[key] != sb.metadata[key] {
                XCTFail("metadata \(key) differs:\n\(sa.metadata[key] ?? "nil")\n\(sb.metadata[key] ?? "nil")", file: file, line: line)
            }
            XCTFail("save → load → save is not byte-identical", file: file, line: line)
        }
        return loader
    }

    /// The session JSON of a saved file.
    func sessionJSON(_ url: URL) throws -> [String: Any] {
        let file = try SafeTensors.read(contentsOf: url)
        return try JSONSerialization.jsonObject(with: Data(file.metadata["fqat.session"]!.utf8)) as! [String: Any]
    }

    func testEverySettingHyperparameterQuantizationOptionLabelAndFrozenSetRoundTrips() throws {
        try XCTSkipUnless(fashionMNISTPresent, "Fashion-MNIST is not installed")
        let backend = Backend.current
        defer { try? Backend.select(backend) }
        let label = "q, \\\"x\\\"\\nnew line"
        let loader = try assertRoundTrip("""
            set seed=7 threads=1 progress=bar plot=svg trial_seed=2 out="o2" backend=openblas
            data style-fmnist test=[fog, noise] per_domain=40 batch=4 size=16 channels=3 seed=5
            model new resnet8 width=0.125 shortcut=B
            train erm steps=2 lr=0.002 wd=0.0001 scale_lr=0.0002 rho=0.07 alpha=0.002 tau=0.4 K=7 eval_every=2 eval=selection bn=train dropout=0.1 label="fp, first"
            quantize ewgs wbits=3 abits=5 init=minmax calib=1 granularity=tensor narrow=true keep=[layer2.0.conv1] override=["layer1.*:4/6", "layer3.*:2"] delta=0.02
            train fqat steps=1 eval_every=1 bn=frozen label="\(label)"
            freeze layer1.*.w.s steps=5
            unfreeze layer3.*.a.s
            """)
        let s = loader.session
        XCTAssertEqual(s.settings.seed, 7)
        XCTAssertEqual(s.settings.threads, 1)
        XCTAssertEqual(s.settings.progress, .bar)
        XCTAssertEqual(s.settings.plot, .svg)
        XCTAssertEqual(s.settings.trialSeed, 2)
        XCTAssertEqual(s.settings.out, "o2")
        XCTAssertEqual(Backend.current, .openblas)
        let h = s.hyperparameters
        XCTAssertEqual([h.learningRate, h.weightDecay, h.scaleLearningRate, h.rho, h.alpha, h.dropout], [0.002, 0.0001, 0.0002, 0.07, 0.002, 0.1])
        XCTAssertEqual(h.tau, 0.4)
        XCTAssertEqual([h.window, h.evalEvery, h.batchPerDomain], [7, 1, 4])
        XCTAssertFalse(h.evaluateTrainingInSplits)
        XCTAssertTrue(h.frozenBatchNorm)
        let q = try XCTUnwrap(s.model?.quantization)
        XCTAssertEqual(q.config.method, .ewgs)
        XCTAssertEqual([q.config.weightBits, q.config.activationBits], [3, 5])
        XCTAssertEqual(q.config.weightGranularity, .perTensor)
        XCTAssertEqual(q.config.weightRange, .narrowSigned)
        XCTAssertEqual(q.config.keepFullPrecision, ["layer2.0.conv1"])
        XCTAssertEqual(q.config.bitOverrides.map(\.pattern), ["layer1.*", "layer3.*"])
        XCTAssertEqual(q.config.bitOverrides.map(\.activationBits), [6, 2])
        XCTAssertEqual(q.config.ewgsDelta, 0.02)
        XCTAssertEqual(q.rangeInit, .minMax)
        XCTAssertEqual(q.calibrationBatches, 1)
        let d = try XCTUnwrap(s.dataChoice)
        XCTAssertEqual(d.testDomains, ["fog", "noise"])
        let options = d.descriptor.benchmarkOptions
        XCTAssertEqual([options.perDomain, options.imageSize, options.channels], [40, 16, 3])
        XCTAssertEqual(options.seed, 5)
        XCTAssertEqual(s.modelWidth, 0.125)
        XCTAssertEqual(s.runLabel, "q, \"x\"\nnew line")
        XCTAssertEqual(s.results.map(\.label), ["fp, first", "q, \"x\"\nnew line"])
        XCTAssertEqual(s.modelProvenance["weights"], .string("random init (seed 7)"))
        let frozen = try XCTUnwrap(s.run).stepper.controller.frozen
        XCTAssertTrue(frozen.contains(true), "the manual freeze was saved with the run")
        // A continued `train` keeps the label, so it appends to the same records file.
        XCTAssertEqual(loader.run("train fqat steps=1"), 0, loader.output.error)
        XCTAssertTrue(loader.output.standard.contains("continuing at step 1"), loader.output.standard)
        XCTAssertEqual(s.runLabel, "q, \"x\"\nnew line")
    }

    func testModelFileKeepsTheQuantizationSetup() throws {
        try XCTSkipUnless(fashionMNISTPresent, "Fashion-MNIST is not installed")
        let saver = try ShellHarness()
        XCTAssertEqual(saver.run("data style-fmnist per_domain=40 batch=4 size=16; model new resnet8 width=0.125; quantize ewgs bits=3 init=lsq calib=1 granularity=tensor delta=0.05; save model \"q.safetensors\""), 0, saver.output.error)
        let h = try ShellHarness()
        XCTAssertEqual(h.run("load model \"\(saver.directory.appendingPathComponent("q.safetensors").path)\""), 0, h.output.error)
        XCTAssertEqual(h.session.model?.quantization, saver.session.model?.quantization)
        XCTAssertEqual(h.session.model?.quantization?.config.weightGranularity, .perTensor)
        XCTAssertEqual(h.session.model?.quantization?.rangeInit, .lsq)
    }

    func testSessionWithoutDataOrRunRoundTripsAndLoadsWithoutData() throws {
        try XCTSkipUnless(fashionMNISTPresent, "Fashion-MNIST is not installed")
        try assertRoundTrip("set seed=3; model new resnet8 width=0.125 in_channels=1 classes=10; policy tau=0.2 K=9")
        try assertRoundTrip("set seed=1")
        // Freezes given before a quantized run exists wait with the session.
        let pending = try assertRoundTrip("data style-fmnist per_domain=40 batch=4 size=16; model new resnet8 width=0.125; quantize lsq bits=3 calib=1; freeze layer1.* steps=4; unfreeze layer2.*")
        XCTAssertEqual(pending.session.pendingFreezes, [PendingFreeze(freeze: true, pattern: "layer1.*", steps: 4),
                                                         PendingFreeze(freeze: false, pattern: "layer2.*", steps: nil)])
        // Loading a session saved without data leaves no data (and no run), whatever was loaded before.
        let saver = try ShellHarness()
        XCTAssertEqual(saver.run("model new resnet8 width=0.125 in_channels=1 classes=10; save session \"nodata.fqsession\""), 0, saver.output.error)
        let h = try ShellHarness()
        XCTAssertEqual(h.run("data style-fmnist per_domain=40 batch=4 size=16; model new resnet14 width=0.125; train erm steps=1 eval_every=1 bn=train"), 0, h.output.error)
        XCTAssertEqual(h.run("load session \"\(saver.directory.appendingPathComponent("nodata.fqsession").path)\""), 0, h.output.error)
        XCTAssertNil(h.session.dataset, "the saved session had no data")
        XCTAssertNil(h.session.run)
        XCTAssertEqual(h.session.network?.architecture, "resnet8")
        XCTAssertTrue(h.session.results.isEmpty)
    }

    func testFolderDataRoundTrips() throws {
        let h = try ShellHarness()
        let root = h.directory.appendingPathComponent("PGMs")
        // 3 domains × 2 classes × 6 tiny PGM images.
        for domain in ["a", "b", "c"] {
            for cls in ["x", "y"] {
                let dir = root.appendingPathComponent("\(domain)/\(cls)")
                try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
                for i in 0..<6 {
                    let pixels = (0..<64).map { UInt8(truncatingIfNeeded: $0 * (i + 1) + (cls == "x" ? 0 : 128)) }
                    try (Data("P5\n8 8\n255\n".utf8) + Data(pixels)).write(to: dir.appendingPathComponent("\(i).pgm"))
                }
            }
        }
        let loader = try assertRoundTrip("data folder root=\"\(root.path)\" size=8 test=b batch=2; model new resnet8 width=0.125; train erm steps=1 eval_every=1 bn=train")
        let d = try XCTUnwrap(loader.session.dataChoice)
        XCTAssertEqual(d.descriptor.kind, .folder)
        XCTAssertEqual(d.descriptor.path, root.path)
        XCTAssertEqual(d.testDomains, ["b"])
        XCTAssertEqual(loader.session.dataset?.imageShape, [3, 8, 8])
        XCTAssertEqual(loader.session.run?.step, 1)
    }

    // MARK: Migrations

    func testVersion2SessionLoadsWithDefaultsForWhatItDidNotSave() throws {
        try XCTSkipUnless(fashionMNISTPresent, "Fashion-MNIST is not installed")
        // Written by the v2 code: style-fmnist test=fog per_domain=40 batch=4 size=16 seed=5, resnet8 width
        // 0.125, `quantize lsq bits=4 granularity=tensor init=lsq narrow=true delta=0.01 calib=1 override=…`,
        // then `train qat steps=2 label="q-run"` at seed 3 (out o).
        let h = try ShellHarness()
        let v2 = h.directory.appendingPathComponent("v2.fqsession")
        try FileManager.default.copyItem(at: Self.sessionsDirectory.appendingPathComponent("v2-run.fqsession"), to: v2)
        XCTAssertEqual(h.run("load session \"\(v2.path)\""), 0, h.output.error)
        let s = h.session
        XCTAssertEqual(s.settings.seed, 3)
        // v2 kept the batch in its data choice; it is the hyperparameter now.
        XCTAssertEqual(s.hyperparameters.batchPerDomain, 4)
        let d = try XCTUnwrap(s.dataChoice)
        XCTAssertEqual(d.descriptor, .builtin("style-fmnist", options: BenchmarkOptions(seed: 5, perDomain: 40, imageSize: 16, channels: 1)))
        XCTAssertEqual(d.testDomains, ["fog"])
        // v2 saved method and bits only: the rest takes the defaults.
        let q = try XCTUnwrap(s.model?.quantization)
        XCTAssertEqual(q.config.method, .lsq)
        XCTAssertEqual([q.config.weightBits, q.config.activationBits], [4, 4])
        XCTAssertEqual(q.config.weightGranularity, .perChannel)
        XCTAssertEqual(q.rangeInit, .mse)
        XCTAssertTrue(q.config.bitOverrides.isEmpty)
        // Provenance values were quoted twice; they read back as the text they were.
        XCTAssertEqual(s.modelProvenance["weights"], .string("random init (seed 3)"))
        XCTAssertEqual(s.modelProvenance["architecture"], .string("resnet8"))
        // The run label lives with the run: a continued run appends to its own records file.
        XCTAssertEqual(s.runLabel, "q-run")
        XCTAssertEqual(h.run("set out=\"o\"; train qat steps=3"), 0, h.output.error)
        XCTAssertTrue(h.output.standard.contains("q-run: continuing at step 2"), h.output.standard)
        let records = try String(contentsOf: h.directory.appendingPathComponent("o/q-run.jsonl"), encoding: .utf8)
        XCTAssertEqual(records.split(separator: "\n").count, 3, "the continued run's evaluations (steps 3–5) went to q-run.jsonl")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: h.directory.appendingPathComponent("o").path), ["q-run.jsonl"])
        // Saved again, it is a v3 session that round-trips.
        XCTAssertEqual(h.run("save session \"v3.fqsession\""), 0, h.output.error)
        let again = try ShellHarness()
        XCTAssertEqual(again.run("load session \"\(h.directory.appendingPathComponent("v3.fqsession").path)\"; save session \"v3b.fqsession\""), 0, again.output.error)
        XCTAssertEqual(try Data(contentsOf: h.directory.appendingPathComponent("v3.fqsession")),
                       try Data(contentsOf: again.directory.appendingPathComponent("v3b.fqsession")))
        XCTAssertEqual(try SafeTensors.read(contentsOf: h.directory.appendingPathComponent("v3.fqsession")).metadata["format"], "fqat-shell.session.v3")
    }

    func testVersion1TwoFileSessionLoads() throws {
        try XCTSkipUnless(fashionMNISTPresent, "Fashion-MNIST is not installed")
        // v1 = v2's JSON with the run in `<path>.run` beside it.
        let file = try SafeTensors.read(contentsOf: Self.sessionsDirectory.appendingPathComponent("v2-run.fqsession"))
        let h = try ShellHarness()
        let legacy = h.directory.appendingPathComponent("legacy.fqsession")
        try writeVersion1Session(from: file, to: legacy)
        XCTAssertEqual(h.run("load session \"\(legacy.path)\""), 0, h.output.error)
        XCTAssertEqual(h.session.run?.step, 2)
        XCTAssertEqual(h.session.runLabel, "q-run")
        XCTAssertEqual(h.session.hyperparameters.batchPerDomain, 4)
        XCTAssertEqual(h.session.modelProvenance["weights"], .string("random init (seed 3)"))
    }

    func testVersion2SessionWithoutDataLoads() throws {
        // Written by the v2 code: seed 4, trial_seed 1, out o2, resnet8 width 0.125, `policy tau=0.3 K=50`.
        let h = try ShellHarness()
        XCTAssertEqual(h.run("load session \"\(Self.sessionsDirectory.appendingPathComponent("v2-nodata.fqsession").path)\""), 0, h.output.error)
        XCTAssertNil(h.session.dataset)
        XCTAssertEqual(h.session.network?.architecture, "resnet8")
        XCTAssertEqual(h.session.settings.trialSeed, 1)
        XCTAssertEqual(h.session.hyperparameters.window, 50)
        XCTAssertEqual(h.session.hyperparameters.tau, 0.3)
        XCTAssertNil(h.session.model?.quantization)
    }

    // MARK: Settings that records state end the run

    func testSetThreadsEndsTheRunSoRecordsStateTheThreadCount() throws {
        try XCTSkipUnless(fashionMNISTPresent, "Fashion-MNIST is not installed")
        let h = try ShellHarness()
        XCTAssertEqual(h.run("set threads=2; data style-fmnist per_domain=40 batch=4 size=16; model new resnet8 width=0.125; train erm steps=1 eval_every=1 bn=train label=t"), 0, h.output.error)
        XCTAssertEqual(h.run("set threads=2"), 0, h.output.error)
        XCTAssertNotNil(h.session.run, "the same thread count keeps the run")
        XCTAssertEqual(h.run("set threads=1; train erm steps=1 label=t"), 0, h.output.error)
        XCTAssertTrue(h.output.standard.contains("t: new erm run"), h.output.standard)
        let out = h.directory.appendingPathComponent("out")
        func threads(_ name: String) throws -> [Int] {
            try String(contentsOf: out.appendingPathComponent(name), encoding: .utf8).split(separator: "\n").map {
                let record = try EvalRecord.parse(line: String($0))
                guard case .int(let n)? = record.args["threads"] else { XCTFail("no threads in \(name)"); return 0 }
                return n
            }
        }
        XCTAssertEqual(try threads("t.jsonl"), [1], "the new run's records state 1 thread")
        XCTAssertEqual(try threads("t.jsonl.1"), [2], "the first run (2 threads) was set aside")
        // The backend is stated in records too: selecting another one ends the run.
        XCTAssertNotNil(h.session.run)
        let other: ComputeBackend? = Backend.current == .onednn ? .openblas : (Backend.oneDNNAvailable ? .onednn : nil)
        if let other {
            let backend = Backend.current
            defer { try? Backend.select(backend) }
            XCTAssertEqual(h.run("set backend=\(other.rawValue)"), 0, h.output.error)
            XCTAssertNil(h.session.run, "a backend change ends the run")
        }
    }

    // MARK: Small bugs

    func testResultsCSVEscapesLabels() throws {
        try XCTSkipUnless(fashionMNISTPresent, "Fashion-MNIST is not installed")
        let h = try ShellHarness()
        XCTAssertEqual(h.run("data style-fmnist per_domain=40 batch=4 size=16; model new resnet8 width=0.125; train erm steps=1 eval_every=1 bn=train label=\"a,\\\"b\\\"\\nc\"; train erm steps=1 new=true label=plain; results csv=\"r.csv\""), 0, h.output.error)
        let csv = try String(contentsOf: h.directory.appendingPathComponent("r.csv"), encoding: .utf8)
        let lines = csv.components(separatedBy: "\n")
        XCTAssertEqual(lines[0], "run,method,bits,steps,selected_step,id,ood,last_id,last_ood")
        XCTAssertTrue(csv.contains("\n\"a,\"\"b\"\"\nc\",erm,FP,1,1,"), csv)
        XCTAssertTrue(csv.contains("\nplain,erm,FP,1,1,"), csv)
        XCTAssertEqual(Render.csvLine(["x", "y z", "1,2", "say \"hi\"", "a\r\nb"]), "x,y z,\"1,2\",\"say \"\"hi\"\"\",\"a\r\nb\"\n")
    }

    func testHomeIsExpandedByOneRuleEverywhere() throws {
        XCTAssertEqual(HomePath.expand("~/data/PACS", home: "/home/u"), "/home/u/data/PACS")
        XCTAssertEqual(HomePath.expand("~", home: "/home/u"), "/home/u")
        XCTAssertEqual(HomePath.expand("~other/x", home: "/home/u"), "~other/x")
        XCTAssertEqual(HomePath.expand("a/~/b", home: "/home/u"), "a/~/b")
        XCTAssertEqual(try ArgKind.path.coerce(.string("~/x.fqsession")), .string(NSHomeDirectory() + "/x.fqsession"))
        // `data ~/folder` (a path as the source) reads the folder in the home directory.
        let h = try ShellHarness()
        let name = "fqat_no_such_folder_for_tests"
        for source in ["~/\(name)", "\"~/\(name)\""] {
            XCTAssertEqual(h.run("data \(source)"), 70)
            XCTAssertTrue(h.output.error.contains("\(NSHomeDirectory())/\(name) not found"), h.output.error)
        }
    }

    func testProvenanceIsQuotedOnceInSavedFiles() throws {
        let h = try ShellHarness()
        XCTAssertEqual(h.run("model new resnet8 width=0.125 in_channels=1 classes=10; save model \"m.safetensors\"; save session \"s.fqsession\""), 0, h.output.error)
        for name in ["m.safetensors", "s.fqsession"] {
            let file = try SafeTensors.read(contentsOf: h.directory.appendingPathComponent(name))
            let provenance = try JSONSerialization.jsonObject(with: Data(file.metadata["fqat.provenance"]!.utf8)) as! [String: Any]
            XCTAssertEqual(provenance["weights"] as? String, "random init (seed 0)", name)
            XCTAssertEqual(provenance["architecture"] as? String, "resnet8", name)
        }
        // Older files' twice-quoted values read back as what they were.
        XCTAssertEqual(ModelFile.legacyProvenanceValue("\"random init (seed 0)\""), .string("random init (seed 0)"))
        XCTAssertEqual(ModelFile.legacyProvenanceValue("1234"), .int(1234))
        XCTAssertEqual(ModelFile.legacyProvenanceValue("plain"), .string("plain"))
        let loaded = try ShellHarness()
        XCTAssertEqual(loaded.run("load session \"\(h.directory.appendingPathComponent("s.fqsession").path)\""), 0, loaded.output.error)
        XCTAssertEqual(loaded.session.modelProvenance["weights"], .string("random init (seed 0)"))
    }
}

/// A v1 session (two files) made from a one-file session: the embedded run (`run/` tensors,
/// `fqat.run.*` metadata) moves to `<url>.run`, the rest stays in `url` with format v1.
func writeVersion1Session(from file: SafeTensorsFile, to url: URL) throws {
    var main = file, run = SafeTensorsFile(tensors: [:], names: [])
    main.metadata["format"] = "fqat-shell.session.v1"
    for name in file.names where name.hasPrefix("run/") {
        run.names.append(String(name.dropFirst(4)))
        run.tensors[String(name.dropFirst(4))] = file.tensors[name]
    }
    for (key, value) in file.metadata where key.hasPrefix("fqat.run.") {
        run.metadata[String(key.dropFirst("fqat.run.".count))] = value
        main.metadata[key] = nil
    }
    main.names = file.names.filter { !$0.hasPrefix("run/") }
    try SafeTensors.write(main.names.map { ($0, main.tensors[$0]!) }, metadata: main.metadata, to: url)
    try SafeTensors.write(run.names.map { ($0, run.tensors[$0]!) }, metadata: run.metadata,
                          to: URL(fileURLWithPath: url.path + ".run"))
}
