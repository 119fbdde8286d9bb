// Exact resumption: N steps straight equal N/2 steps, a checkpoint file, a fresh Run from that file
// (model and data rebuilt from the descriptors) and N/2 more steps — weights, BN statistics, scales,
// optimizer, controller, trace, sampler, dropout generator and records bit for bit. And every way a
// checkpoint can be wrong gives `TrainingError.badCheckpoint`.
import Datasets
import Foundation
import NN
import Optim
import Quant
import TensorCore
@testable import Training
import XCTest

final class CheckpointTests: XCTestCase {
    struct Config: Sendable {
        var name: String
        var method: TrainingMethod
        var quantization: QuantizationMethod?
        var configure: @Sendable (inout Hyperparameters) -> Void
        /// Called after each step of both runs (manual freezing at the prompt).
        var afterStep: @Sendable (Run) throws -> Void = { _ in }
    }

    static let configs: [Config] = [
        // FQAT with a short window and a high τ so windows close and factors freeze; dropout so the
        // dropout generator matters; a manual freeze that spans the checkpoint.
        Config(name: "fqat", method: .fqat, quantization: .lsq, configure: { h in
            h.window = 3; h.tau = 0.9; h.dropout = 0.2
        }, afterStep: { run in
            if run.step == 5 { try run.stepper.freeze("layer2.*", steps: 4) }
        }),
        // Full-precision ERM: BatchNorm in training mode, so running statistics must carry over.
        Config(name: "erm", method: .erm, quantization: nil, configure: { _ in }),
        // Plain QAT with EWGS and δ re-estimated every 3 steps (across the checkpoint).
        Config(name: "qat-ewgs", method: .qat, quantization: .ewgs, configure: { h in
            h.ewgsHessianEvery = 3; h.ewgsHessianIterations = 2
        }),
    ]

    func makeRun(_ c: Config, data: DomainDataset, perDomain: Int) throws -> Run {
        let env = try EnvironmentAssignment(testDomainNames: ["noise"], in: data)
        let net = try c.quantization.map { try TrainingFixtures.quantizedTinyModel(data: data, environments: env, method: $0) }
            ?? TrainingFixtures.tinyModel.make()
        var hp = Hyperparameters.defaults(for: c.method)
        hp.batchPerDomain = 6
        hp.evalEvery = 5
        c.configure(&hp)
        return try Run(network: net, dataset: data, environments: env, method: c.method, hyperparameters: hp, seed: 11,
                       provenance: ["weights": .string("scratch")], data: TrainingFixtures.descriptor(perDomain: perDomain),
                       model: TrainingFixtures.tinyModel)
    }

    func train(_ run: Run, _ c: Config, steps: Int, evaluateAtEnd: Bool) throws -> [StepReport] {
        var reports: [StepReport] = []
        for k in 0..<steps {
            let summary = try run.train(steps: 1, evaluateAtEnd: evaluateAtEnd && k == steps - 1, onEvent: { event in
                if case .step(let r, _) = event { reports.append(r) }
            })
            XCTAssertEqual(summary.stepsRun, 1)
            try c.afterStep(run)
        }
        return reports
    }

    func testTrainingResumesBitExactlyFromACheckpointFile() throws {
        let perDomain = 200
        let data = try TrainingFixtures.styleFMNIST(perDomain: perDomain)
        let steps = 16, half = 8  // evaluations at 5, 10, 15 and the end (16); the split is mid-interval
        for c in CheckpointTests.configs {
            let straight = try makeRun(c, data: data, perDomain: perDomain)
            let reports = try train(straight, c, steps: steps, evaluateAtEnd: true)

            let first = try makeRun(c, data: data, perDomain: perDomain)
            let firstReports = try train(first, c, steps: half, evaluateAtEnd: false)
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("fqat-resume-\(c.name)-\(getpid()).safetensors").path
            defer { try? FileManager.default.removeItem(atPath: path) }
            try first.checkpoint(to: path)
            // A fresh model and data set, rebuilt from the checkpoint's descriptors.
            let resumed = try Run.resume(from: path)
            XCTAssertEqual(resumed.step, half, c.name)
            let secondReports = try train(resumed, c, steps: steps - half, evaluateAtEnd: true)

            XCTAssertEqual(firstReports + secondReports, reports, "\(c.name): step reports")
            assertSameModel(resumed.network, straight.network)
            XCTAssertEqual(quantizerStates(in: resumed.network), quantizerStates(in: straight.network), "\(c.name): quantizers")
            XCTAssertEqual(resumed.stepper.checkpoint(), straight.stepper.checkpoint(), "\(c.name): optimizer, controller, trace")
            XCTAssertEqual(resumed.sampler.state, straight.sampler.state, "\(c.name): sampler")
            XCTAssertEqual(resumed.dropoutRNG.rng, straight.dropoutRNG.rng, "\(c.name): dropout generator")
            XCTAssertEqual(resumed.records.map(\.step), [5, 10, 15, 16], c.name)
            XCTAssertEqual(resumed.records, straight.records, "\(c.name): records")
            XCTAssertEqual(resumed.records.map { $0.jsonLine() }, straight.records.map { $0.jsonLine() }, c.name)

            switch c.name {
            case "fqat":
                // The scenario exercised what it should: windows closed, factors froze (by policy and by hand).
                XCTAssertEqual(reports.compactMap(\.completedWindow).count, steps / 3)
                XCTAssertTrue(reports.contains { !$0.frozen.isEmpty && $0.step > 3 && $0.step <= 5 }, "policy freezing before the manual freeze")
                XCTAssertTrue(reports[6].frozen.contains { $0.hasPrefix("layer2.") }, "manual freeze active across the checkpoint")
                XCTAssertNotNil(reports[0].perturbedLoss)
            case "qat-ewgs":
                let deltas = quantizers(in: resumed.network).map(\.ewgsDelta)
                XCTAssertTrue(deltas.contains { $0 != 1e-3 }, "δ was re-estimated: \(deltas)")
                XCTAssertEqual(resumed.lastEWGSReestimation?.step, 15)
            default:
                XCTAssertFalse(resumed.network.batchNorms[0].frozen)
                XCTAssertNotEqual(resumed.network.batchNorms[0].runningMean.value.data, [Float](repeating: 0, count: 4),
                                  "BN statistics were trained")
            }
        }
    }

    func testCheckpointFileLayout() throws {
        let data = try TrainingFixtures.styleFMNIST(perDomain: 200)
        let c = CheckpointTests.configs[0]
        let run = try makeRun(c, data: data, perDomain: 200)
        _ = try train(run, c, steps: 3, evaluateAtEnd: true)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("fqat-layout-\(getpid()).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try run.checkpoint(to: path)

        let file = try SafeTensors.read(contentsOf: URL(fileURLWithPath: path))
        XCTAssertEqual(file.metadata["format"], "fqat-run-v1")
        XCTAssertEqual(file.metadata["step"], "3")
        XCTAssertEqual(file.metadata["method"], "fqat")
        XCTAssertEqual(file.metadata["architecture"], "resnet8")
        XCTAssertTrue(file.names.contains("layer1.0.conv1.w.s"))
        XCTAssertTrue(file.names.contains("bn1.running_var"))
        XCTAssertTrue(file.names.contains("optimizer/fc.weight/exp_avg_sq"))
        // The model part loads as a plain state dict; only the optimizer tensors are extra.
        let net = try TrainingFixtures.quantizedTinyModel(data: data, environments: run.environments)
        let report = try net.loadSafeTensors(from: URL(fileURLWithPath: path), strict: false)
        XCTAssertTrue(report.missing.isEmpty && report.shapeMismatch.isEmpty, report.summary)
        XCTAssertFalse(report.unexpected.isEmpty)
        XCTAssertTrue(report.unexpected.allSatisfy { $0.hasPrefix("optimizer/") }, report.summary)
        assertSameModel(net, run.network)

        let read = try RunCheckpoint.read(from: path)
        XCTAssertEqual(read.state, run.makeCheckpoint().state)
        XCTAssertEqual(read.state.records.count, 1)
        XCTAssertEqual(read.state.provenance["weights"], .string("scratch"))

        // Without the trace: smaller, and a resumed run starts an empty trace but trains on identically.
        let light = path + ".light"
        defer { try? FileManager.default.removeItem(atPath: light) }
        try run.checkpoint(to: light, includingTrace: false)
        let sizes = try [path, light].map { try FileManager.default.attributesOfItem(atPath: $0)[.size] as! Int }
        XCTAssertLessThan(sizes[1], sizes[0])
        let a = try Run.resume(from: path, dataset: data), b = try Run.resume(from: light, dataset: data)
        XCTAssertEqual(b.stepper.trace?.loss().steps.count, 0)
        try a.takeStep(); try b.takeStep()
        assertSameModel(a.network, b.network)
    }

    func testDamagedOrMismatchedCheckpointsAreRefused() throws {
        let data = try TrainingFixtures.styleFMNIST(perDomain: 200)
        let c = CheckpointTests.configs[0]
        let run = try makeRun(c, data: data, perDomain: 200)
        try run.takeStep()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fqat-bad-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let good = dir.appendingPathComponent("good.safetensors").path
        try run.checkpoint(to: good)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: good))

        func expectBad(_ what: String, _ fragment: String, network: Network? = nil, dataset: DomainDataset? = data,
                       _ make: () throws -> String, file: StaticString = #filePath, line: UInt = #line) {
            do {
                let path = try make()
                _ = try Run.resume(from: path, network: network, dataset: dataset)
                XCTFail("\(what): resumed", file: file, line: line)
            } catch let TrainingError.badCheckpoint(message) {
                XCTAssertTrue(message.contains(fragment), "\(what): '\(message)' lacks '\(fragment)'", file: file, line: line)
            } catch {
                XCTFail("\(what): \(error)", file: file, line: line)
            }
        }
        func write(_ name: String, _ data: Data) throws -> String {
            let p = dir.appendingPathComponent(name).path
            try data.write(to: URL(fileURLWithPath: p))
            return p
        }
        /// Rewrites the checkpoint with edited tensors or metadata.
        func edited(_ name: String, tensors edit: (inout [(String, SafeTensorValue)]) -> Void = { _ in },
                    metadata editMetadata: (inout [String: String]) -> Void = { _ in }) throws -> String {
            let f = try SafeTensors.decode(bytes)
            var tensors = f.names.map { ($0, f.tensors[$0]!) }
            var metadata = f.metadata
            edit(&tensors)
            editMetadata(&metadata)
            let p = dir.appendingPathComponent(name).path
            try SafeTensors.write(tensors, metadata: metadata, to: URL(fileURLWithPath: p))
            return p
        }

        expectBad("missing file", "cannot be read") { dir.appendingPathComponent("none.safetensors").path }
        expectBad("truncated", "safetensors") { try write("truncated", bytes.prefix(bytes.count / 2)) }
        expectBad("garbage", "safetensors") { try write("garbage", Data("not a checkpoint at all".utf8)) }
        expectBad("model weights only", "not a run checkpoint") {
            let p = dir.appendingPathComponent("weights.safetensors").path
            try run.network.saveSafeTensors(to: URL(fileURLWithPath: p))
            return p
        }
        expectBad("other format", "format 'fqat-run-v0'") { try edited("v0", metadata: { $0["format"] = "fqat-run-v0" }) }
        expectBad("damaged state", "damaged") { try edited("json", metadata: { $0["state"] = String($0["state"]!.dropLast(10)) }) }
        expectBad("state without hyperparameters", "hyperparameters") {
            try edited("nohp", metadata: { m in
                var o = try! JSONSerialization.jsonObject(with: Data(m["state"]!.utf8)) as! [String: Any]
                o["hyperparameters"] = nil
                m["state"] = String(decoding: try! JSONSerialization.data(withJSONObject: o), as: UTF8.self)
            })
        }
        expectBad("missing weight", "missing layer1.0.conv1.weight") {
            try edited("noweight", tensors: { $0.removeAll { $0.0 == "layer1.0.conv1.weight" } })
        }
        expectBad("missing moment", "exp_avg") {
            try edited("nomoment", tensors: { $0.removeAll { $0.0 == "optimizer/fc.weight/exp_avg" } })
        }
        expectBad("wrong moment size", "fc.weight") {
            try edited("shortmoment", tensors: { ts in
                let i = ts.firstIndex { $0.0 == "optimizer/fc.weight/exp_avg" }!
                ts[i].1 = .float(Tensor(shape: [3], data: [1, 2, 3]))
            })
        }
        expectBad("other architecture", "resnet20", network: try Network.make(architecture: "resnet20", inChannels: 1, classes: 10)) { good }
        expectBad("other width", "step sizes",
                  network: try Network.make(architecture: "resnet8", inChannels: 1, classes: 10, width: 1)) { good }
        expectBad("quantized differently", "quantizer",
                  network: try { () throws -> Network in
                      let n = try TrainingFixtures.tinyModel.make()
                      try attachQuantizers(to: n, config: QuantizationConfig(keepFullPrecision: ["layer3"]))
                      return n
                  }()) { good }
        expectBad("other data", "differs", dataset: try TrainingFixtures.styleFMNIST(perDomain: 100)) { good }
        expectBad("no data descriptor", "pass it", dataset: nil) {
            run.dataDescriptor = nil
            defer { run.dataDescriptor = TrainingFixtures.descriptor(perDomain: 200) }
            let p = dir.appendingPathComponent("nodata.safetensors").path
            try run.checkpoint(to: p)
            return p
        }

        // A full-precision checkpoint refuses a quantized model.
        let erm = try makeRun(CheckpointTests.configs[1], data: data, perDomain: 200)
        let ermPath = dir.appendingPathComponent("erm.safetensors").path
        try erm.checkpoint(to: ermPath)
        expectBad("quantized model for a full-precision run", "quantized",
                  network: try TrainingFixtures.quantizedTinyModel(data: data, environments: erm.environments)) { ermPath }
        expectBad("other width, full precision", "shape mismatch",
                  network: try Network.make(architecture: "resnet8", inChannels: 1, classes: 10, width: 1)) { ermPath }
        // The good file still resumes.
        XCTAssertEqual(try Run.resume(from: good, dataset: data).step, 1)
    }
}
