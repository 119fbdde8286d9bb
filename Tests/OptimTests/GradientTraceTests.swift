// GradientTrace: per-step summaries, bounded downsampling, queries, Codable.
import Foundation
import NN
import TensorCore
import XCTest
@testable import Optim

final class GradientTraceTests: XCTestCase {
    /// A step with loss = step, a per-tensor factor "a" and a per-channel factor "w".
    func record(_ trace: inout GradientTrace, step: Int, frozen: Bool = false, skip: Bool = false, flat: Bool = true) {
        let qatA = Tensor(shape: [1], data: [Float(step)])
        let qatW = Tensor(shape: [2], data: [3, -4])
        let flatA = Tensor(shape: [1], data: [-2])
        let flatW = Tensor(shape: [2], data: [-6, 8])
        let result = GradientStepResult(loss: Float(step), perturbedLoss: flat ? Float(step) + 0.5 : nil,
                                        gradientNorm: 1, perturbationNorm: 0.05,
                                        scales: [ScaleGradients(name: "a", qat: qatA, flat: flat ? flatA : nil),
                                                 ScaleGradients(name: "w", qat: qatW, flat: flat ? flatW : nil)])
        let appliedW: AppliedGradient = skip ? .skip : .gradient(frozen ? flatW.scaled(by: 0.5) : FreezeMath.half(qatW, plus: flatW))
        let decision = FreezeDecision(step: step, names: ["a", "w"],
                                      applied: [.gradient(FreezeMath.half(qatA, plus: flatA)), appliedW],
                                      frozen: [false, frozen], completedWindow: nil)
        trace.record(result: result, decision: decision,
                     scaleValues: [Tensor(shape: [1], data: [0.1]), Tensor(shape: [2], data: [0.2, 0.4])])
    }

    func testPerStepSummaries() throws {
        var trace = GradientTrace(factorNames: ["a", "w"])
        record(&trace, step: 1)
        record(&trace, step: 2, frozen: true)
        record(&trace, step: 3, frozen: true, skip: true)
        func values(_ m: TraceMetric, _ f: String) throws -> [Float] { try trace.series(m, factor: f).values }
        XCTAssertEqual(try trace.series(.qatMean, factor: "a").steps, [1, 2, 3])
        XCTAssertEqual(try values(.qatMean, "a"), [1, 2, 3])
        XCTAssertEqual(try values(.qatMean, "w"), [-0.5, -0.5, -0.5], "per-channel: mean over elements")
        XCTAssertEqual(try values(.qatNorm, "w"), [5, 5, 5], "per-channel: L2 norm")
        XCTAssertEqual(try values(.flatNorm, "w"), [10, 10, 10])
        XCTAssertEqual(try values(.cosine, "w"), [-1, -1, -1], "g_flat = −2·g_QAT: cancelling")
        XCTAssertEqual(try values(.appliedMean, "w"), [0.25, 0.5, 0])
        XCTAssertEqual(try values(.appliedNorm, "w"), [2.5, 5, 0])
        XCTAssertEqual(try values(.frozen, "w"), [0, 1, 1])
        XCTAssertEqual(try values(.skipped, "w"), [0, 0, 1])
        XCTAssertEqual(try values(.scaleMean, "w").map { ($0 * 1000).rounded() }, [300, 300, 300])
        XCTAssertEqual(trace.loss().values, [1, 2, 3])
        XCTAssertEqual(trace.perturbedLoss().values, [1.5, 2.5, 3.5])
        XCTAssertThrowsError(try trace.series(.qatMean, factor: "nope")) { error in
            XCTAssertEqual(error as? TraceError, .unknownFactor("nope", known: ["a", "w"]))
        }
    }

    func testDownsamplingIsBoundedAndPreservesMeans() {
        // Loss = step, so every point's value must equal the centre of the steps it averages.
        var trace = GradientTrace(factorNames: ["a", "w"], recentSteps: 5, archiveBuckets: 4)
        var previousPoints = 0
        for step in 1...300 {
            record(&trace, step: step)
            let loss = trace.loss()
            XCTAssertLessThanOrEqual(loss.steps.count, 5 + 4 + 1, "bounded at step \(step)")
            XCTAssertEqual(loss.counts.reduce(0, +), step, "every step counted once")
            for (x, y) in zip(loss.steps, loss.values) {
                XCTAssertEqual(Double(y), x, accuracy: 1e-3, "a bucket's mean of step values is its centre step")
            }
            XCTAssertEqual(loss.steps, loss.steps.sorted(), "oldest first")
            previousPoints = loss.steps.count
        }
        let loss = trace.loss()
        XCTAssertEqual(Array(loss.steps.suffix(5)), [296, 297, 298, 299, 300], "recent steps at full resolution")
        XCTAssertEqual(Array(loss.counts.suffix(5)), [1, 1, 1, 1, 1])
        let archived = loss.counts.dropLast(5)
        XCTAssertGreaterThan(archived.max() ?? 0, 32, "bucket width doubled several times")
        XCTAssertTrue(previousPoints > 5)
        // The frozen fraction survives averaging.
        var t2 = GradientTrace(factorNames: ["a", "w"], recentSteps: 2, archiveBuckets: 2)
        for step in 1...10 { record(&t2, step: step, frozen: step % 2 == 0) }
        let frozen = try? t2.series(.frozen, factor: "w")
        XCTAssertEqual(frozen?.values.first, 0.5)
    }

    func testDisorderHeatmapAndSeries() throws {
        var trace = GradientTrace(factorNames: ["a", "w"])
        trace.recordWindow(DisorderWindow(endStep: 10, disorder: [0.9, 0.1]))
        trace.recordWindow(DisorderWindow(endStep: 20, disorder: [0.8, 0.2]))
        let map = trace.disorderHeatmap()
        XCTAssertEqual(map.factors, ["a", "w"])
        XCTAssertEqual(map.windowEndSteps, [10, 20])
        XCTAssertEqual(map.values, [[0.9, 0.8], [0.1, 0.2]])
        XCTAssertEqual(try trace.disorder(factor: "w").values, [0.1, 0.2])
        XCTAssertEqual(trace.windowsRecorded, 2)
    }

    func testCodableRoundTripWithMissingFlatGradient() throws {
        var trace = GradientTrace(factorNames: ["a", "w"], recentSteps: 3, archiveBuckets: 2)
        for step in 1...9 { record(&trace, step: step, flat: false) }
        trace.recordWindow(DisorderWindow(endStep: 9, disorder: [0.5, 0.25]))
        XCTAssertTrue(trace.perturbedLoss().values.allSatisfy(\.isNaN), "no pass 2: NaN, written as null")
        var copy = try jsonRoundTrip(trace)
        XCTAssertEqual(copy, trace)
        record(&copy, step: 10, flat: false)
        record(&trace, step: 10, flat: false)
        XCTAssertEqual(copy, trace)
        XCTAssertEqual(try copy.series(.flatNorm, factor: "w").values.count, try trace.series(.flatNorm, factor: "w").values.count)
    }
}
