// The whole step on a tiny fake-quantized model: exact resumption and the methods' wiring.
import Foundation
import NN
import TensorCore
import XCTest
@testable import Optim

final class FQATStepperTests: XCTestCase {
    struct Session: Codable {
        var stepper: FQATCheckpoint
        var values: [Float]
        var rng: RNG
    }

    func makeStepper(_ m: TinyQuantizedRegression, policy: FreezePolicy) throws -> FQATStepper {
        let adam = Adam(weights: m.weights, scales: m.scales, learningRate: 0.01, weightDecay: 1e-4, scaleLearningRate: 0.001)
        return try FQATStepper(weights: m.weights, scales: m.scales, method: .sagm(SAGM(rho: 0.05, alpha: 0.001)),
                               optimizer: adam, freeze: FreezeSettings(policy: policy, windowLength: 4, threshold: 0.4),
                               traceRecentSteps: 16)
    }

    func testTrainingResumesBitExactlyFromACheckpoint() throws {
        for policy in FreezePolicy.allCases {
            let n = 40
            let straightModel = TinyQuantizedRegression(seed: 7)
            let straight = try makeStepper(straightModel, policy: policy)
            var reports: [StepReport] = []
            for step in 1...n {
                if step == 9 { try straight.freeze("fc.a.s", steps: 6) }
                reports.append(try straight.step(straightModel.compute))
            }

            let firstModel = TinyQuantizedRegression(seed: 7)
            let first = try makeStepper(firstModel, policy: policy)
            var resumedReports: [StepReport] = []
            for step in 1...(n / 2) {
                if step == 9 { try first.freeze("fc.a.s", steps: 6) }
                resumedReports.append(try first.step(firstModel.compute))
            }
            let data = try JSONEncoder().encode(Session(stepper: first.checkpoint(), values: firstModel.allValues, rng: firstModel.rng))

            // Same data set (seed 7), but values and sampler scrambled: everything must come from the checkpoint.
            let secondModel = TinyQuantizedRegression(seed: 7)
            secondModel.load(secondModel.allValues.map { $0 * 3 + 1 })
            secondModel.rng = RNG(seed: 12345)
            let second = try makeStepper(secondModel, policy: policy)
            let session = try JSONDecoder().decode(Session.self, from: data)
            try second.restore(session.stepper)
            secondModel.load(session.values)
            secondModel.rng = session.rng
            for _ in (n / 2 + 1)...n { resumedReports.append(try second.step(secondModel.compute)) }

            XCTAssertEqual(bitPatterns(secondModel.allValues), bitPatterns(straightModel.allValues), "\(policy): parameters")
            XCTAssertEqual(second.optimizer.checkpoint(), straight.optimizer.checkpoint(), "\(policy): optimizer state")
            XCTAssertEqual(second.controller, straight.controller, "\(policy): controller")
            XCTAssertEqual(second.trace, straight.trace, "\(policy): trace")
            XCTAssertEqual(resumedReports, reports, "\(policy): step reports, first difference at step \((reports.indices.first { resumedReports[$0] != reports[$0] } ?? -1) + 1)")
            // The run must exercise what it claims to test.
            XCTAssertEqual(reports.compactMap(\.completedWindow).count, n / 4)
            XCTAssertTrue(reports[8..<14].allSatisfy { $0.frozen.contains("fc.a.s") }, "\(policy): manual freeze")
            if !policy.usesDisorderTest { XCTAssertFalse(reports[14].frozen.contains("fc.a.s"), "\(policy): manual freeze expired") }
            if policy == .adaptive {
                XCTAssertTrue(reports[16...].contains { !$0.frozen.isEmpty }, "adaptive froze something after the first windows")
                XCTAssertTrue(reports[16...].contains { $0.frozen.count < 2 }, "adaptive did not freeze everything")
            }
            XCTAssertLessThan(reports.last!.loss, reports.first!.loss, "\(policy): training reduces the loss")
        }
    }

    func testRestoreRejectsOtherScaleFactors() throws {
        let m = TinyQuantizedRegression(seed: 1)
        let stepper = try makeStepper(m, policy: .adaptive)
        let other = ControlledScales([("x.s", 1)], qat: { _, _ in [1] })
        let adam = Adam(weights: [other.weight], scales: other.scales, learningRate: 0.1, weightDecay: 0, scaleLearningRate: 0.1)
        let otherStepper = try FQATStepper(weights: [other.weight], scales: other.scales, method: .singlePass, optimizer: adam)
        XCTAssertThrowsError(try stepper.restore(otherStepper.checkpoint())) { error in
            XCTAssertEqual(error as? StepperCheckpointError, .scaleFactorsDiffer(expected: ["fc.w.s", "fc.a.s"], found: ["x.s"]))
        }
    }

    func testSinglePassQATAppliesTheQATGradient() throws {
        // Plain QAT: one pass, weights get g1, scales g_QAT (factor 1), as separate SGD steps show.
        let m = ControlledScales([("s", 2)], qat: { _, step in [Float(step), -1] })
        let sgd = SGD(groups: [ParameterGroup(name: "model", parameters: [m.weight], learningRate: 0.1),
                               ParameterGroup(name: "scales", parameters: m.scales, learningRate: 0.5)])
        let stepper = try FQATStepper(weights: [m.weight], scales: m.scales, method: .singlePass, optimizer: sgd)
        let report = try stepper.step(m.compute)
        XCTAssertNil(report.perturbedLoss)
        XCTAssertEqual(report.perturbationNorm, 0)
        XCTAssertEqual(m.scales[0].value.data, [1 - 0.5 * 1, 1 + 0.5 * 1])
        XCTAssertEqual(m.weight.value.data, [0.9, -0.9])
        XCTAssertEqual(try stepper.trace?.series(.flatNorm, factor: "s").values.first?.isNaN, true)
    }
}

extension FQATStepperTests {
    func testCheckpointWithoutTraceRestartsAnEmptyTrace() throws {
        let m = TinyQuantizedRegression(seed: 3)
        let stepper = try makeStepper(m, policy: .adaptive)
        for _ in 1...5 { try stepper.step(m.compute) }
        let light = try jsonRoundTrip(stepper.checkpoint(includingTrace: false))
        XCTAssertNil(light.trace)
        try stepper.restore(light)
        XCTAssertEqual(stepper.trace?.stepsRecorded, 0)
        XCTAssertEqual(stepper.stepsTaken, 5)
        try stepper.step(m.compute)
        XCTAssertEqual(stepper.trace?.loss().steps, [6])
    }
}
