// The fake quantizer: fast kernels against slow references, the hand-computed boundary cases,
// LSQ gradients against finite differences, per-channel vs per-tensor, the gradient scale and
// the EWGS backward formula.
import ReferenceKernels
import NN
@testable import Quant
import TensorCore
import XCTest

/// Inputs whose v = x/s is at least `margin` away from every half-integer and from the clamp
/// bounds, so neither rounding nor clamping changes under small perturbations. About 10% of the
/// elements lie outside the range (below Qn or above Qp).
func inputsAwayFromBoundaries(count: Int, scales: [Float], lowest: Int, highest: Int, margin: Float = 0.05,
                              rng: inout RNG) -> Tensor {
    let block = count / scales.count
    var x = Tensor(shape: [count])
    for i in 0..<count {
        let s = scales[i / block]
        var v: Float
        let u = rng.uniform()
        if u < 0.05 {
            v = Float(lowest) - 0.1 - 2 * rng.uniform()
        } else if u < 0.1 {
            v = Float(highest) + 0.1 + 2 * rng.uniform()
        } else {
            // integer part in [Qn, Qp), fraction in [margin, 0.5 − margin] ∪ [0.5 + margin, 1 − margin]
            let k = Float(lowest + rng.int(below: highest - lowest))
            var f = margin + (0.5 - 2 * margin) * rng.uniform()
            if rng.uniform() < 0.5 { f += 0.5 }
            v = k + f
        }
        x.data[i] = v * s
    }
    return x
}

final class QuantizerTests: XCTestCase {
    func testRoundHalfEvenMatchesSwiftRounding() {
        var rng = RNG(seed: 1)
        var values: [Float] = [0, -0.0, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 254.5, 255.5, -127.5, -128.5, 0.49999997, 0.50000006]
        for k in -130...260 { values.append(Float(k) + 0.5); values.append(Float(k)) }
        for _ in 0..<10_000 { values.append(rng.uniform(-300, 300)) }
        for v in values {
            XCTAssertEqual(roundHalfEven(v), v.rounded(.toNearestOrEven), "v = \(v)")
        }
    }

    func testIntegerBounds() {
        for b in 2...8 {
            XCTAssertTrue(QuantizationRange.unsigned.integerBounds(bits: b) == (0, (1 << b) - 1))
            XCTAssertTrue(QuantizationRange.signed.integerBounds(bits: b) == (-(1 << (b - 1)), (1 << (b - 1)) - 1))
            XCTAssertTrue(QuantizationRange.narrowSigned.integerBounds(bits: b) == (-(1 << (b - 1)) + 1, (1 << (b - 1)) - 1))
        }
        XCTAssertTrue(QuantizationRange.unsigned.integerBounds(bits: 4) == (0, 15))
        XCTAssertTrue(QuantizationRange.signed.integerBounds(bits: 3) == (-4, 3))
        let q = Quantizer(layerName: "conv", role: .weight, bits: 4, range: .signed)
        XCTAssertThrowsError(try q.setBits(9)) { error in
            XCTAssertTrue("\(error)".contains("2 to 8"), "\(error)")
        }
        XCTAssertThrowsError(try q.setBits(1))
        XCTAssertNoThrow(try q.setBits(3))
        XCTAssertEqual(q.highest, 3)
    }

    func testScaleNamesFollowPaperNotation() {
        let w = Quantizer(layerName: "layer3.0.conv1", role: .weight, bits: 4, range: .signed)
        let a = Quantizer(layerName: "layer3.0.conv1", role: .activation, bits: 4, range: .unsigned)
        XCTAssertEqual(w.scale.name, "layer3.0.conv1.w.s")
        XCTAssertEqual(a.scale.name, "layer3.0.conv1.a.s")
        XCTAssertEqual(w.scale.kind, .scale)
    }

    /// Fast fused kernels equal the element-by-element references: forward bit for bit, dx bit for
    /// bit for LSQ (within 1e-6 relative for EWGS), block sums within 1e-5 relative.
    func testFastKernelsMatchReference() {
        var rng = RNG(seed: 2)
        // Sizes: a tail shorter than 8, several work units, and enough for the parallel path.
        for (count, blocks) in [(13, 1), (1000, 1), (40_000, 1), (300_000, 1), (64 * 27, 64), (8 * 50_000, 8)] {
            for method in [QuantizationMethod.lsq, .ewgs] {
                let scales = (0..<blocks).map { _ in rng.uniform(0.05, 0.3) }
                let x = rng.normalTensor([count], std: 0.8)
                let dy = rng.normalTensor([count])
                let (qn, qp): (Float, Float) = (-8, 7)
                let (yRef, rRef) = QuantizerReference.forward(x: x.data, scales: scales, lowest: qn, highest: qp)
                var y = [Float](repeating: 0, count: count), r = y, dx = y
                QuantizerKernels.forward(x: x.data, y: &y, residual: &r, count: count, scales: scales, lowest: qn, highest: qp)
                XCTAssertEqual(y, yRef, "forward count \(count)")
                XCTAssertEqual(r, rRef, "residual count \(count)")
                let factor: Float = method == .ewgs ? 0.05 : 0
                let sums = QuantizerKernels.backward(dy: dy.data, residual: r, dx: &dx, count: count, blocks: blocks,
                                                     lowest: qn, highest: qp, ewgsFactor: factor)
                let (dxRef, sumsRef) = QuantizerReference.backward(x: x.data, dy: dy.data, scales: scales,
                                                                          lowest: qn, highest: qp, ewgsFactor: factor)
                let dxDiff = Tensor(shape: [count], data: dx).maxRelativeDifference(Tensor(shape: [count], data: dxRef))
                XCTAssertLessThanOrEqual(dxDiff, method == .lsq ? 0 : 1e-6, "dx \(method) count \(count): \(dxDiff)")
                for b in 0..<blocks {
                    let d = abs(sums[b] - sumsRef[b]) / max(1, abs(sumsRef[b]))
                    XCTAssertLessThan(d, 1e-5, "s-sum block \(b) count \(count): \(sums[b]) vs \(sumsRef[b])")
                }
            }
        }
    }

    /// Hand-computed cases: exact clamp bounds (inside: the gradient passes, ∂y/∂s = 0), half-integers
    /// (ties to even), just outside (∂y/∂s = Qn or Qp, dx = 0).
    func testBoundaryCasesByHand() {
        let q = Quantizer(layerName: "l", role: .weight, bits: 4, range: .signed, initialScale: 0.5)
        // v = x/s:          7 (=Qp)  -8 (=Qn)  2.5   3.5   -2.5   -0.5   0.5   7.5   -8.5   -9
        let v: [Float] = [7, -8, 2.5, 3.5, -2.5, -0.5, 0.5, 7.5, -8.5, -9]
        let x = Tensor(shape: [v.count], data: v.map { $0 * 0.5 })
        let y = q.forward(x, ForwardContext(training: true))
        let expectedCodes: [Float] = [7, -8, 2, 4, -2, 0, 0, 7, -8, -8]
        XCTAssertEqual(y.data, expectedCodes.map { $0 * 0.5 })
        let dy = Tensor(shape: [v.count], repeating: 1)
        let dx = q.backward(dy)
        XCTAssertEqual(dx.data, [1, 1, 1, 1, 1, 1, 1, 0, 0, 0])
        // ∂y/∂s per element: 0, 0, −0.5, 0.5, 0.5, 0.5, −0.5, 7, −8, −8 → sum −8.5; times g = 1/sqrt(7·10)
        let g = 1 / Float(70).squareRoot()
        XCTAssertEqual(q.scale.grad.data[0], -8.5 * g, accuracy: 1e-6)
        XCTAssertEqual(q.gradientScale(elementCount: 10), g, accuracy: 1e-7)
    }

    func testGradientScaleValues() {
        let w = Quantizer(layerName: "c", role: .weight, bits: 4, range: .signed, granularity: .perChannel, channels: 16)
        // N is the whole weight (16·8·3·3), even per channel; Qp = 7.
        XCTAssertEqual(w.gradientScale(elementCount: 16 * 8 * 3 * 3), Float(1 / (7.0 * 1152).squareRoot()), accuracy: 1e-9)
        let a = Quantizer(layerName: "c", role: .activation, bits: 4, range: .unsigned)
        XCTAssertEqual(a.gradientScale(elementCount: 32 * 64 * 7 * 7), Float(1 / (15.0 * 32 * 64 * 49).squareRoot()), accuracy: 1e-10)
        // And backward really uses it: one element inside, s-gradient = g·(q − v).
        let one = Quantizer(layerName: "c", role: .activation, bits: 8, range: .unsigned, initialScale: 1)
        _ = one.forward(Tensor(shape: [4], data: [0.3, 0.3, 0.3, 0.3]), ForwardContext(training: true))
        _ = one.backward(Tensor(shape: [4], data: [1, 0, 0, 0]))
        XCTAssertEqual(one.scale.grad.data[0], (0 - 0.3) / Float(255.0 * 4).squareRoot(), accuracy: 1e-7)
    }

    /// LSQ's x- and s-gradients against central finite differences of the straight-through surrogate
    /// (rounding offset round(v) − v frozen at the evaluation point, as PyTorch's round_pass does), in
    /// Double; and the s-gradient against finite differences of the real fake-quantized output,
    /// which with no rounding or clamping change equals Σ dy·q: LSQ = that − Σ_inside dy·v.
    func testLSQGradientsAgainstFiniteDifferences() {
        var rng = RNG(seed: 3)
        for granularity in [ScaleGranularity.perTensor, .perChannel] {
            let channels = granularity == .perTensor ? 1 : 6
            let q = Quantizer(layerName: "c", role: .weight, bits: 4, range: .signed, granularity: granularity, channels: channels)
            let scales = (0..<channels).map { _ in rng.uniform(0.02, 0.2) }
            q.scale.value = Tensor(shape: [channels], data: scales)
            let count = 6 * 5 * 3 * 3
            let x = inputsAwayFromBoundaries(count: count, scales: scales, lowest: -8, highest: 7, rng: &rng).reshaped([6, 5, 3, 3])
            let c = rng.normalTensor([6, 5, 3, 3])
            _ = q.forward(x, ForwardContext(training: true))
            let dx = q.backward(c)
            let g = Double(q.gradientScale(elementCount: count))
            let block = count / channels

            // Surrogate L(x, s) = Σ c·s·(clamp(x/s) + r0) inside, Σ c·s·bound outside, in Double.
            let r0: [Double] = (0..<count).map { i in
                let v = Double(x.data[i]) / Double(scales[i / block])
                return v.rounded(.toNearestOrEven) - v
            }
            func surrogate(_ xs: [Double], _ ss: [Double]) -> Double {
                var sum = 0.0
                for i in 0..<count {
                    let s = ss[i / block], v = xs[i] / s
                    let y = v < -8 ? -8 * s : (v > 7 ? 7 * s : s * (v + r0[i]))
                    sum += Double(c.data[i]) * y
                }
                return sum
            }
            let x64 = x.data.map(Double.init), s64 = scales.map(Double.init)
            var maxDx = 0.0
            for i in stride(from: 0, to: count, by: 7) {
                let h = 1e-4 * Double(scales[i / block])
                var xp = x64, xm = x64
                xp[i] += h; xm[i] -= h
                let fd = (surrogate(xp, s64) - surrogate(xm, s64)) / (2 * h)
                maxDx = max(maxDx, abs(fd - Double(dx.data[i])))
            }
            XCTAssertLessThan(maxDx, 1e-6, "\(granularity) dx vs FD: max |diff| \(maxDx)")

            for ch in 0..<channels {
                let h = 1e-3 * Double(scales[ch])
                var sp = s64, sm = s64
                sp[ch] += h; sm[ch] -= h
                let fd = (surrogate(x64, sp) - surrogate(x64, sm)) / (2 * h)
                let analytic = Double(q.scale.grad.data[ch]) / g
                XCTAssertEqual(analytic, fd, accuracy: 1e-4 * max(1, abs(fd)), "\(granularity) s[\(ch)] surrogate FD")

                // The real fake-quantizer at s ± h: check that no code and no clamp decision changed.
                let probe = Quantizer(layerName: "p", role: .weight, bits: 4, range: .signed, granularity: granularity, channels: channels)
                probe.scale.value = Tensor(shape: [channels], data: sp.map(Float.init))
                let codesPlus = probe.integerCodes(x)
                let yPlus = probe.fakeQuantize(x)
                probe.scale.value = Tensor(shape: [channels], data: sm.map(Float.init))
                let codesMinus = probe.integerCodes(x)
                let yMinus = probe.fakeQuantize(x)
                XCTAssertEqual(codesPlus, codesMinus, "a code changed under the s perturbation")
                var fdTrue = 0.0, steTerm = 0.0
                for i in (ch * block)..<((ch + 1) * block) {
                    fdTrue += Double(c.data[i]) * (Double(yPlus.data[i]) - Double(yMinus.data[i]))
                    let v = Double(x.data[i]) / s64[ch]
                    if v >= -8 && v <= 7 { steTerm += Double(c.data[i]) * v }
                }
                fdTrue /= (Double(Float(sp[ch])) - Double(Float(sm[ch])))
                XCTAssertEqual(analytic, fdTrue - steTerm, accuracy: 2e-3 * max(1, abs(fdTrue)),
                               "\(granularity) s[\(ch)]: LSQ \(analytic) vs true FD \(fdTrue) − STE term \(steTerm)")
            }
        }
    }

    /// Per-channel with equal step sizes: same output and dx as per-tensor; channel s-gradients sum
    /// to the per-tensor one (the same g, N = whole tensor).
    func testPerChannelAgreesWithPerTensor() {
        var rng = RNG(seed: 4)
        let x = rng.normalTensor([8, 4, 3, 3], std: 0.3)
        let dy = rng.normalTensor([8, 4, 3, 3])
        let t = Quantizer(layerName: "c", role: .weight, bits: 3, range: .signed, initialScale: 0.1)
        let c = Quantizer(layerName: "c", role: .weight, bits: 3, range: .signed, granularity: .perChannel, channels: 8, initialScale: 0.1)
        let ctx = ForwardContext(training: true)
        XCTAssertEqual(t.forward(x, ctx), c.forward(x, ctx))
        XCTAssertEqual(t.backward(dy), c.backward(dy))
        XCTAssertEqual(Double(c.scale.grad.sum()), Double(t.scale.grad.data[0]), accuracy: 1e-5)
        // Different channel scales really act per channel.
        c.scale.value.data[3] = 0.4
        let y = c.fakeQuantize(x)
        for i in 0..<(4 * 9) {
            let v = x.data[3 * 36 + i] / 0.4
            XCTAssertEqual(y.data[3 * 36 + i], min(max(v, -4), 3).rounded(.toNearestOrEven) * 0.4)
        }
    }

    /// EWGS backward: dx = dy·(1 + δ'·sign(dy)·(v − round(v))) inside, δ' = δ/(Qp − Qn); s-gradient as LSQ.
    func testEWGSBackwardFormula() {
        let q = Quantizer(layerName: "c", role: .activation, bits: 2, range: .unsigned, method: .ewgs, initialScale: 1)
        q.ewgsDelta = 0.3
        let dPrime: Float = 0.3 / 3
        let x = Tensor(shape: [5], data: [0.2, 1.4, 2.6, 0.75, 5])
        let dy = Tensor(shape: [5], data: [2, -1, 0.5, -4, 1])
        _ = q.forward(x, ForwardContext(training: true))
        let dx = q.backward(dy)
        let expected: [Float] = [
            2 * (1 + dPrime * 1 * (0.2 - 0)),
            -1 * (1 + dPrime * -1 * (1.4 - 1)),
            0.5 * (1 + dPrime * 1 * (2.6 - 3)),
            -4 * (1 + dPrime * -1 * (0.75 - 1)),
            0,
        ]
        for i in 0..<5 { XCTAssertEqual(dx.data[i], expected[i], accuracy: 1e-6, "element \(i)") }
        let lsq = Quantizer(layerName: "c", role: .activation, bits: 2, range: .unsigned, initialScale: 1)
        _ = lsq.forward(x, ForwardContext(training: true))
        _ = lsq.backward(dy)
        XCTAssertEqual(q.scale.grad.data[0], lsq.scale.grad.data[0], accuracy: 1e-7)
        // δ = 0 is LSQ.
        q.ewgsDelta = 0
        _ = q.forward(x, ForwardContext(training: true))
        _ = lsq.forward(x, ForwardContext(training: true))
        XCTAssertEqual(q.backward(dy), lsq.backward(dy))
    }

    func testDisabledQuantizerIsIdentity() {
        var rng = RNG(seed: 5)
        let q = Quantizer(layerName: "c", role: .activation, bits: 2, range: .unsigned, initialScale: 0.1)
        q.quantizationEnabled = false
        let x = rng.normalTensor([3, 4])
        XCTAssertEqual(q.forward(x, ForwardContext(training: true)), x)
        let dy = rng.normalTensor([3, 4])
        XCTAssertEqual(q.backward(dy), dy)
        XCTAssertEqual(q.scale.grad.data[0], 0)
        XCTAssertEqual(q.fakeQuantize(x), x)
    }

    func testNonPositiveScaleIsFlooredNotNaN() {
        let q = Quantizer(layerName: "c", role: .activation, bits: 4, range: .unsigned, initialScale: -0.5)
        let y = q.forward(Tensor(shape: [3], data: [0, 1, -1]), .eval)
        XCTAssertTrue(y.isFinite)
        XCTAssertEqual(y.data, [0, Float(15) * Quantizer.minimumScale, 0])
    }
}
