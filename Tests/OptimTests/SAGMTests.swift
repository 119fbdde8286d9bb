// The SAGM step (docs/fqat.md, The SAGM step) on a quadratic model with a hand-written gradient, checked
// against the same computation done by hand in Double.
import NN
import TensorCore
import XCTest
@testable import Optim

final class SAGMTests: XCTestCase {
    /// Hand computation: g1 at w, e = (ρ/(‖g1‖+1e-12) − α)·g1 over the weights, g2 at w+e.
    func handStep(_ m: QuadraticModel, rho: Double, alpha: Double)
        -> (g1: [Double], g2: [Double], e: [Double], qat: [Double], flat: [Double], norm: Double) {
        let w0 = m.w.value.data.map(Double.init), b0 = Double(m.b.value[0])
        let s0 = Double(m.s0.value[0]), s1 = m.s1.value.data.map(Double.init)
        let (_, dw1, db1, ds01, ds11) = m.reference(w: w0, b: b0, s0: s0, s1: s1)
        let g1 = dw1 + [db1]
        let norm = g1.map { $0 * $0 }.reduce(0, +).squareRoot()
        let coefficient = rho / (norm + 1e-12) - alpha
        let e = g1.map { coefficient * $0 }
        let (_, dw2, db2, ds02, ds12) = m.reference(w: zip(w0, e).map { $0 + $1 }, b: b0 + e[3], s0: s0, s1: s1)
        return (g1, dw2 + [db2], e, [ds01] + ds11, [ds02] + ds12, norm)
    }

    func testStepAgainstHandComputation() throws {
        for (rho, alpha) in [(0.05, 0.0), (0.05, 0.001), (0.5, 0.2)] {
            let m = QuadraticModel()
            let before = m.w.value.data + m.b.value.data
            let scalesBefore = m.s0.value.data + m.s1.value.data
            let hand = handStep(m, rho: rho, alpha: alpha)
            let result = try SAGM(rho: Float(rho), alpha: Float(alpha))
                .step(weights: m.weights, scales: m.scales, computeGradients: m.compute)
            let label = "rho \(rho) alpha \(alpha)"

            XCTAssertEqual(m.passes, [1, 2], label)
            // Pass 2 saw w + e (tolerance: float32 rounding of values ≈ 1).
            let perturbed = zip(before, hand.e).map { Float(Double($0) + $1) }
            let dp = maxAbsDifference(m.seenWeights[1], perturbed)
            XCTAssertLessThanOrEqual(dp, 1e-6, "\(label): pass 2 weights \(m.seenWeights[1]) vs w+e \(perturbed): \(dp)")
            // Weights restored bit-exactly; scales never moved.
            XCTAssertEqual(bitPatterns(m.w.value.data + m.b.value.data), bitPatterns(before), label)
            XCTAssertEqual(m.s0.value.data + m.s1.value.data, scalesBefore, label)
            // ‖g1‖ and ‖e‖; with α = 0 the perturbation has norm ρ exactly (up to float rounding).
            XCTAssertEqual(result.gradientNorm, hand.norm, accuracy: 1e-6 * hand.norm, label)
            let handE = hand.e.map { $0 * $0 }.reduce(0, +).squareRoot()
            XCTAssertEqual(result.perturbationNorm, handE, accuracy: 1e-6 * max(handE, 1e-3), label)
            if alpha == 0 { XCTAssertEqual(result.perturbationNorm, rho, accuracy: 1e-6 * rho, label) }
            // Combined weight gradient 0.5·(g1 + g2).
            let combined = zip(hand.g1, hand.g2).map { Float(0.5 * ($0 + $1)) }
            let dg = maxAbsDifference(m.w.grad.data + m.b.grad.data, combined)
            XCTAssertLessThanOrEqual(dg, 2e-5, "\(label): grads \(m.w.grad.data + m.b.grad.data) vs hand \(combined): \(dg)")
            // Scale gradients kept apart; the scale's grad holds the default 0.5·(g_QAT + g_flat).
            let qat = result.scales.flatMap(\.qat.data), flat = result.scales.flatMap { $0.flat?.data ?? [] }
            XCTAssertEqual(result.scales.map(\.name), ["layer1.conv.a.s", "layer1.conv.w.s"])
            XCTAssertLessThanOrEqual(maxAbsDifference(qat, hand.qat.map(Float.init)), 1e-5, "\(label): g_QAT \(qat) vs \(hand.qat)")
            XCTAssertLessThanOrEqual(maxAbsDifference(flat, hand.flat.map(Float.init)), 1e-5, "\(label): g_flat \(flat) vs \(hand.flat)")
            XCTAssertNotEqual(qat, flat, "\(label): the test needs g_QAT ≠ g_flat to mean anything")
            let expectedScaleGrad = zip(qat, flat).map { 0.5 * ($0 + $1) }
            XCTAssertEqual(m.s0.grad.data + m.s1.grad.data, expectedScaleGrad, label)
            XCTAssertEqual(result.loss, m.compute1Loss(at: before), label)
        }
    }

    func testScaleGradientsEqualSeparateSinglePasses() throws {
        let m = QuadraticModel()
        let result = try SAGM(rho: 0.1, alpha: 0.01).step(weights: m.weights, scales: m.scales, computeGradients: m.compute)
        let perturbed = m.seenWeights[1]

        let atW = QuadraticModel()
        let single = try GradientMethod.singlePass.computeGradients(weights: atW.weights, scales: atW.scales, atW.compute)
        XCTAssertEqual(single.scales.map(\.qat), result.scales.map(\.qat), "g_QAT = a plain pass at w")
        XCTAssertNil(single.scales[0].flat)
        XCTAssertNil(single.perturbedLoss)

        let atPerturbed = QuadraticModel()
        atPerturbed.w.value = Tensor(shape: [3], data: Array(perturbed[0..<3]))
        atPerturbed.b.value = Tensor(shape: [1], data: [perturbed[3]])
        let second = try GradientMethod.singlePass.computeGradients(weights: atPerturbed.weights, scales: atPerturbed.scales, atPerturbed.compute)
        XCTAssertEqual(second.scales.map(\.qat), result.scales.map { $0.flat! }, "g_flat = a plain pass at w + e")
        XCTAssertEqual(second.loss, result.perturbedLoss)
    }

    func testFullPrecisionSAGMAndUntrainableWeights() throws {
        let m = QuadraticModel()
        m.b.trainable = false
        let bias = m.b.value
        let result = try SAGM(rho: 0.05, alpha: 0).step(weights: m.weights, scales: [], computeGradients: m.compute)
        XCTAssertTrue(result.scales.isEmpty)
        XCTAssertEqual(m.seenWeights[1][3], bias[0], "an untrainable weight is not perturbed")
        // The norm counts the trainable weights only, and the perturbation has norm ρ.
        let g1 = m.reference(w: [0.5, -1.0, 2.0], b: 0.25, s0: 0.3, s1: [0.2, -0.1]).1
        XCTAssertEqual(result.gradientNorm, g1.map { $0 * $0 }.reduce(0, +).squareRoot(), accuracy: 1e-5)
        XCTAssertEqual(result.perturbationNorm, 0.05, accuracy: 1e-7)
    }

    func testNonFiniteLossOrGradientLeavesParametersAsBefore() {
        struct Boom: Error {}
        let cases: [(String, (QuadraticModel, Int) throws -> Float, StepError?)] = [
            ("NaN loss in pass 2", { m, pass in let l = m.compute(pass); return pass == 2 ? .nan : l }, .nonFiniteLoss(pass: 2, value: .nan)),
            ("inf gradient in pass 1", { m, pass in let l = m.compute(pass); m.s1.grad[1] = .infinity; return l },
             .nonFiniteGradient(pass: 1, parameter: "layer1.conv.w.s")),
            ("NaN weight gradient in pass 2", { m, pass in let l = m.compute(pass); if pass == 2 { m.w.grad[0] = .nan }; return l },
             .nonFiniteGradient(pass: 2, parameter: "layer1.conv.weight")),
            ("closure throws in pass 2", { m, pass in if pass == 2 { throw Boom() }; return m.compute(pass) }, nil),
        ]
        for (label, closure, expected) in cases {
            let m = QuadraticModel()
            let before = (m.weights + m.scales).flatMap(\.value.data)
            XCTAssertThrowsError(try SAGM().step(weights: m.weights, scales: m.scales) { try closure(m, $0) }, label) { error in
                if let expected {
                    // NaN ≠ NaN, so compare the descriptions.
                    XCTAssertEqual("\(error)", "\(expected)", label)
                } else {
                    XCTAssertTrue(error is Boom, label)
                }
            }
            XCTAssertEqual(bitPatterns((m.weights + m.scales).flatMap(\.value.data)), bitPatterns(before), label)
        }
    }

    func testStepperLeavesEverythingIntactOnNonFiniteLoss() throws {
        let m = QuadraticModel()
        let adam = Adam(weights: m.weights, scales: m.scales, learningRate: 0.01, weightDecay: 0, scaleLearningRate: 0.01)
        let stepper = try FQATStepper(weights: m.weights, scales: m.scales, method: .sagm(SAGM()), optimizer: adam,
                                      freeze: FreezeSettings(policy: .adaptive, windowLength: 2, threshold: 0.5))
        try stepper.step(m.compute)
        let values = (m.weights + m.scales).flatMap(\.value.data)
        let optimizerState = adam.checkpoint(), controller = stepper.controller, trace = stepper.trace
        XCTAssertThrowsError(try stepper.step { pass in let l = m.compute(pass); return pass == 2 ? .infinity : l })
        XCTAssertEqual(bitPatterns((m.weights + m.scales).flatMap(\.value.data)), bitPatterns(values))
        XCTAssertEqual(adam.checkpoint(), optimizerState)
        XCTAssertEqual(stepper.controller, controller)
        XCTAssertEqual(stepper.trace, trace)
        XCTAssertEqual(stepper.stepsTaken, 1)
    }
}

extension QuadraticModel {
    /// The Float loss the closure returns at the given weights (for checking the reported loss).
    func compute1Loss(at weights: [Float]) -> Float {
        Float(reference(w: weights[0..<3].map(Double.init), b: Double(weights[3]),
                        s0: Double(s0.value[0]), s1: s1.value.data.map(Double.init)).0)
    }
}
