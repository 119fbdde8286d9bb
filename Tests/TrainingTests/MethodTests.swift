// Every method runs through `Run` and produces records; same seed, same run; the per-method
// defaults; FQAT freezes with a high τ.
import Datasets
import Foundation
import NN
import Optim
import Quant
import TensorCore
@testable import Training
import XCTest

final class MethodTests: XCTestCase {
    func makeRun(_ method: TrainingMethod, data: DomainDataset, seed: UInt64 = 3,
                 configure: (inout Hyperparameters) -> Void = { _ in }) throws -> Run {
        let env = try EnvironmentAssignment(testDomainNames: ["noise"], in: data)
        let net = method.isQuantized ? try TrainingFixtures.quantizedTinyModel(data: data, environments: env)
            : try TrainingFixtures.tinyModel.make()
        var hp = Hyperparameters.defaults(for: method)
        hp.batchPerDomain = 4
        hp.window = 2
        hp.tau = 1
        hp.evalEvery = 2
        configure(&hp)
        return try Run(network: net, dataset: data, environments: env, method: method, hyperparameters: hp, seed: seed)
    }

    func testEveryMethodTrainsAndRecords() throws {
        let data = try TrainingFixtures.styleFMNIST(perDomain: 100)
        for method in TrainingMethod.allCases {
            let run = try makeRun(method, data: data)
            var reports: [StepReport] = []
            let weightsBefore = run.network.parameters.filter { $0.kind != .scale }.map(\.value)
            let scalesBefore = run.scales.map(\.value)
            let summary = try run.train(steps: 5, onEvent: { if case .step(let r, _) = $0 { reports.append(r) } })
            XCTAssertEqual(summary.stepsRun, 5, "\(method)")
            XCTAssertEqual(run.records.map(\.step), [2, 4, 5], "\(method)")
            XCTAssertTrue(reports.allSatisfy { $0.loss.isFinite }, "\(method)")
            XCTAssertEqual(reports.allSatisfy { $0.perturbedLoss != nil }, method.usesFlatnessPass, "\(method): second pass")
            XCTAssertEqual(run.records.last?.args["algorithm"], .string(method.rawValue))
            XCTAssertNotNil(summary.selected, "\(method)")
            XCTAssertNotEqual(run.network.parameters.filter { $0.kind != .scale }.map(\.value), weightsBefore, "\(method): weights move")
            XCTAssertEqual(run.network.batchNorms[0].frozen, method.isQuantized, "\(method): BN frozen by default for QAT")
            if method.isQuantized {
                XCTAssertFalse(run.scales.isEmpty)
                XCTAssertNotEqual(run.scales.map(\.value), scalesBefore, "\(method): scales move")
            }
            // τ = 1, K = 2: the first decision (step 2) freezes every factor whose disorder is below 1
            // (reverse freezes above τ, so never at τ = 1).
            let frozenAfterWindow = reports[2...].contains { !$0.frozen.isEmpty }
            let freezes: Set<TrainingMethod> = [.fqat, .freezeBoth, .noUnfreeze]
            XCTAssertEqual(frozenAfterWindow, freezes.contains(method), "\(method): frozen \(reports.map(\.frozen.count))")
            XCTAssertTrue(reports[0].frozen.isEmpty && reports[1].frozen.isEmpty, "\(method): nothing frozen in the first window")
            XCTAssertEqual(reports[2...].contains { !$0.skipped.isEmpty }, method == .freezeBoth, "\(method): only freeze-both skips updates")
        }
    }

    func testSameSeedSameRunOtherSeedOtherRun() throws {
        let data = try TrainingFixtures.styleFMNIST(perDomain: 100)
        func records(_ seed: UInt64) throws -> ([EvalRecord], Network) {
            let run = try makeRun(.fqat, data: data, seed: seed) { $0.dropout = 0.3 }
            _ = try run.train(steps: 6)
            return (run.records, run.network)
        }
        let (a, netA) = try records(5)
        let (b, netB) = try records(5)
        let (c, _) = try records(6)
        XCTAssertEqual(a, b)
        XCTAssertEqual(a.map { $0.jsonLine() }, b.map { $0.jsonLine() })
        assertSameModel(netA, netB)
        XCTAssertNotEqual(a.map(\.metrics), c.map(\.metrics), "another seed draws other batches")
    }

    func testDefaultsPerMethod() {
        for m in TrainingMethod.allCases {
            let h = Hyperparameters.defaults(for: m)
            XCTAssertEqual(h.frozenBatchNorm, m.isQuantized, "\(m)")
            XCTAssertEqual(h.learningRate, m.isQuantized ? 1e-4 : 1e-3, "\(m)")
            XCTAssertNoThrow(try h.validate())
        }
        // Decoding fills what a checkpoint does not mention.
        let h = try? JSONDecoder().decode(Hyperparameters.self, from: Data(#"{"learningRate": 0.5, "window": 7}"#.utf8))
        var expected = Hyperparameters()
        expected.learningRate = 0.5
        expected.window = 7
        XCTAssertEqual(h, expected)
    }

    func testEWGSDeltaReestimation() throws {
        let data = try TrainingFixtures.styleFMNIST(perDomain: 100)
        func run() throws -> Run {
            let env = try EnvironmentAssignment(testDomainNames: ["noise"], in: data)
            let net = try TrainingFixtures.quantizedTinyModel(data: data, environments: env, method: .ewgs)
            var hp = Hyperparameters.defaults(for: .qat)
            hp.batchPerDomain = 4
            hp.ewgsHessianEvery = 2
            hp.ewgsHessianIterations = 3
            return try Run(network: net, dataset: data, environments: env, method: .qat, hyperparameters: hp, seed: 1)
        }
        let a = try run(), b = try run()
        try a.takeStep()
        XCTAssertNil(a.lastEWGSReestimation)
        XCTAssertTrue(quantizers(in: a.network).allSatisfy { $0.ewgsDelta == 1e-3 })
        try a.takeStep()
        let estimate = try XCTUnwrap(a.lastEWGSReestimation)
        XCTAssertEqual(estimate.step, 2)
        XCTAssertEqual(estimate.estimates.count, quantizers(in: a.network).count)
        let deltas = quantizers(in: a.network).map(\.ewgsDelta)
        XCTAssertEqual(deltas, estimate.estimates.map(\.delta))
        XCTAssertTrue(deltas.allSatisfy { $0.isFinite && $0 >= 0 })
        XCTAssertTrue(deltas.contains { $0 > 0 && $0 != 1e-3 }, "\(deltas)")
        try b.takeStep(); try b.takeStep()
        XCTAssertEqual(quantizers(in: b.network).map(\.ewgsDelta), deltas, "deterministic")
        // The estimate leaves weights, BN statistics and gradients' consumers alone: both runs stay identical.
        try a.takeStep(); try b.takeStep()
        assertSameModel(a.network, b.network)
    }
}
