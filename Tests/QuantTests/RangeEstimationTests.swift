// Range initialisation: LSQ rule and min-max values, the MSE search against an analytic optimum
// and a brute-force Double reference, tie breaking, the 1e-8 floor, and observe-mode calibration
// (sign from data, later layers seeing quantized inputs).
import NN
@testable import Quant
import TensorCore
import XCTest

final class RangeEstimationTests: XCTestCase {
    func testLSQRuleValue() {
        var rng = RNG(seed: 10)
        let w = rng.normalTensor([4, 3, 3, 3], std: 0.1)
        let q = Quantizer(layerName: "c", role: .weight, bits: 4, range: .signed, granularity: .perChannel, channels: 4)
        q.initializeScale(from: w, method: .lsq)
        for c in 0..<4 {
            let block = w.data[(c * 27)..<((c + 1) * 27)]
            let meanAbs = block.reduce(0.0) { $0 + Double(abs($1)) } / 27
            XCTAssertEqual(Double(q.scale.value.data[c]), 2 * meanAbs / 7.0.squareRoot(), accuracy: 1e-7)
        }
        let t = Quantizer(layerName: "c", role: .weight, bits: 3, range: .signed)
        t.initializeScale(from: w, method: .lsq)
        let meanAbs = w.data.reduce(0.0) { $0 + Double(abs($1)) } / Double(w.count)
        XCTAssertEqual(Double(t.scale.value.data[0]), 2 * meanAbs / 3.0.squareRoot(), accuracy: 1e-7)
        XCTAssertTrue(t.isInitialized)
    }

    func testMinMaxValue() {
        let x = Tensor(shape: [4], data: [-1.6, 0.2, 0.5, 1.4])
        let signed = Quantizer(layerName: "c", role: .activation, bits: 4, range: .signed)
        signed.initializeScale(from: x, method: .minMax)
        // max/Qp = 1.4/7 = 0.2; min/Qn = 1.6/8 = 0.2 → 0.2
        XCTAssertEqual(signed.scale.value.data[0], 0.2, accuracy: 1e-7)
        let wider = Tensor(shape: [2], data: [-2.4, 0.7])
        signed.initializeScale(from: wider, method: .minMax)
        XCTAssertEqual(signed.scale.value.data[0], 0.3, accuracy: 1e-7)   // 2.4/8
        let unsigned = Quantizer(layerName: "c", role: .activation, bits: 2, range: .unsigned)
        unsigned.initializeScale(from: x, method: .minMax)
        XCTAssertEqual(unsigned.scale.value.data[0], 1.4 / 3, accuracy: 1e-7)
        XCTAssertEqual(unsigned.fakeQuantize(Tensor(shape: [1], data: [1.4])).data[0], 1.4, accuracy: 1e-6)
    }

    /// 100 points at 1 and one outlier at 10, unsigned 2-bit (Qp = 3). Near the optimum 1 rounds to
    /// code 1 and 10 clips to code 3, so loss(s) = 100(1 − s)² + (10 − 3s)², minimised at
    /// s* = 130/109 ≈ 1.1927. Grid (margin 0, T = 10, K = 100): steps k/30; the best grid point is
    /// k = 36 (s = 1.2, loss 44.96) against k = 35 (s = 1.1667, loss 45.03).
    func testMSEPicksAnalyticOptimum() {
        let x = Tensor(shape: [101], data: [Float](repeating: 1, count: 100) + [10])
        let coarse = RangeEstimator(method: .mse, options: MSESearchOptions(candidates: 100, margin: .relative(0)),
                                    channels: 1, lowest: 0, highest: 3)
        coarse.observe(x)
        XCTAssertEqual(coarse.scales()[0], 1.2, accuracy: 1e-6)
        let fine = RangeEstimator(method: .mse, options: MSESearchOptions(candidates: 3000, margin: .relative(0)),
                                  channels: 1, lowest: 0, highest: 3)
        fine.observe(x)
        let sStar: Float = 130.0 / 109.0
        XCTAssertEqual(fine.scales()[0], sStar, accuracy: 10.0 / 9000, "fine grid step is T/(K·Qp) = 1/900")
        // The loss at the chosen point is the analytic minimum up to the grid resolution.
        let s = Double(fine.scales()[0])
        let loss = 100 * (1 - s) * (1 - s) + (10 - 3 * s) * (10 - 3 * s)
        let best = 100 * (1 - Double(sStar)) * (1 - Double(sStar)) + (10 - 3 * Double(sStar)) * (10 - 3 * Double(sStar))
        XCTAssertLessThan(loss - best, 1e-3)
    }

    /// The estimator against a brute-force Double reference: per-channel losses on a shared grid (and
    /// on per-channel grids), accumulated over two batches with the grid fixed by the first.
    func testMSEMatchesBruteForceReference() {
        var rng = RNG(seed: 11)
        let channels = 5
        var batch1 = rng.normalTensor([channels, 40], std: 0.1)
        for c in 0..<channels { for i in 0..<40 { batch1.data[c * 40 + i] *= Float(c + 1) } }
        let batch2 = rng.normalTensor([channels, 40], std: 0.25)
        for shared in [true, false] {
            for (range, qn, qp) in [(QuantizationRange.signed, -8, 7), (.unsigned, 0, 15)] {
                let options = MSESearchOptions(candidates: 50, margin: .relative(0.2), sharedChannelGrid: shared)
                let e = RangeEstimator(method: .mse, options: options, channels: channels, lowest: qn, highest: qp)
                e.observe(batch1)
                e.observe(batch2)
                let got = e.scales()
                for c in 0..<channels {
                    let block1 = Array(batch1.data[(c * 40)..<((c + 1) * 40)])
                    let block2 = Array(batch2.data[(c * 40)..<((c + 1) * 40)])
                    let magnitude = shared ? batch1.data.map { abs($0) }.max()! : block1.map { abs($0) }.max()!
                    let t: Float = magnitude * (1 + 0.2)   // the estimator's own Float arithmetic
                    var bestK = 0, bestLoss = Double.infinity
                    for k in 1...50 {
                        let step = Float(k) * t / 50 / Float(qp)
                        var loss = 0.0
                        for v in block1 + block2 {
                            let code = min(max((v / step).rounded(.toNearestOrEven), Float(qn)), Float(qp))
                            loss += Double(v - code * step) * Double(v - code * step)
                        }
                        if loss < bestLoss { bestLoss = loss; bestK = k }
                    }
                    let expected = Float(bestK) * t / 50 / Float(qp)
                    XCTAssertEqual(got[c], expected, accuracy: 1e-6 * max(1, expected),
                                   "shared \(shared) \(range) channel \(c): k* = \(bestK)")
                }
                _ = range
            }
        }
    }

    func testFirstMinimumOnTies() {
        XCTAssertEqual(RangeEstimator.firstMinimum([3, 1, 2, 1, 1][...]), 1)
        XCTAssertEqual(RangeEstimator.firstMinimum([0, 0, 0][...]), 0)
        XCTAssertEqual(RangeEstimator.firstMinimum([5, 4, 3][...]), 2)
    }

    func testScalesNeverBelowFloor() {
        let zeros = Tensor(shape: [2, 8], repeating: 0)
        for method in RangeInitMethod.allCases {
            for margin in [RangeMargin.relative(0.2), .absolute(0.5)] {
                let e = RangeEstimator(method: method, options: MSESearchOptions(margin: margin), channels: 2, lowest: -8, highest: 7)
                e.observe(zeros)
                for s in e.scales() {
                    XCTAssertGreaterThanOrEqual(s, Quantizer.minimumScale, "\(method)")
                    XCTAssertTrue(s.isFinite)
                }
            }
        }
    }

    /// QC's absolute margin vs the default relative one on a weight of magnitude ~0.1: the absolute
    /// margin puts most of the 100 candidates far above the data, so its grid is ~4× coarser.
    func testRelativeMarginIsFinerForSmallWeights() {
        var rng = RNG(seed: 12)
        let w = rng.normalTensor([64 * 64 * 9], std: 0.03)
        func error(_ options: MSESearchOptions) -> Double {
            let q = Quantizer(layerName: "c", role: .weight, bits: 4, range: .signed)
            q.initializeScale(from: w, method: .mse, options: options)
            return (q.fakeQuantize(w) - w).squaredNorm()
        }
        let relative = error(MSESearchOptions())
        let absolute = error(.qualcomm)
        let fine = error(MSESearchOptions(candidates: 2000, margin: .relative(0.2)))
        XCTAssertLessThanOrEqual(relative, absolute * 1.0001, "relative \(relative) absolute \(absolute)")
        XCTAssertLessThan(relative, fine * 1.01, "the default grid should be within 1% of a 2000-point search")
    }

    /// Observe mode on a chain of two activation quantizers: the first decides signed from negative
    /// data; the second only ever sees the first one's quantized output; a later batch with
    /// negatives switches an unsigned quantizer to signed.
    func testCalibrationDecidesSignAndSeesQuantizedInputs() {
        var rng = RNG(seed: 13)
        let first = Quantizer(layerName: "a", role: .activation, bits: 3, range: .unsigned, rangeFromData: true)
        let second = Quantizer(layerName: "b", role: .activation, bits: 3, range: .signed, rangeFromData: true)
        var seenBySecond: [Tensor] = []
        var producedByFirst: [Tensor] = []
        first.observer = { _, y in producedByFirst.append(y) }
        second.observer = { x, _ in seenBySecond.append(x) }
        for q in [first, second] { q.beginCalibration(method: .mse) }
        for _ in 0..<3 {
            let x = rng.normalTensor([2, 50])
            let h = first.forward(x, .eval)
            let relu = Tensor(shape: h.shape, data: h.data.map { max($0, 0) })
            _ = second.forward(relu, .eval)
        }
        for q in [first, second] { XCTAssertTrue(q.finishCalibration()) }
        XCTAssertEqual(first.range, .signed)
        XCTAssertEqual(second.range, .unsigned, "non-negative inputs give the unsigned range")
        for (a, b) in zip(producedByFirst, seenBySecond) {
            XCTAssertEqual(Tensor(shape: a.shape, data: a.data.map { max($0, 0) }), b)
        }
        // A later negative batch switches the unsigned quantizer to signed and restarts it.
        second.beginCalibration(method: .minMax)
        _ = second.forward(Tensor(shape: [3], data: [0, 1, 2]), .eval)
        XCTAssertEqual(second.range, .unsigned)
        _ = second.forward(Tensor(shape: [3], data: [-3, 1, 2]), .eval)
        XCTAssertEqual(second.range, .signed)
        XCTAssertEqual(second.calibration?.restarts, 1)
        second.finishCalibration()
        XCTAssertEqual(second.scale.value.data[0], 3.0 / 4, accuracy: 1e-7)   // min −3 / Qn −4
        // Without rangeFromData the configured range is kept.
        let fixed = Quantizer(layerName: "c", role: .activation, bits: 3, range: .unsigned)
        fixed.beginCalibration(method: .minMax)
        _ = fixed.forward(Tensor(shape: [2], data: [-1, 2]), .eval)
        fixed.finishCalibration()
        XCTAssertEqual(fixed.range, .unsigned)
    }
}
