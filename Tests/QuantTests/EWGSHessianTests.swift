// EWGS δ from Hutchinson + finite-difference Hessian-vector products, on models whose Hessian
// with respect to each quantizer's output is known in closed form.
import NN
@testable import Quant
import TensorCore
import XCTest

/// z = Q2(w ⊙ Q1(x)), elementwise; the loss 0.5·Σ b·z² is applied by the test's pass closure.
private final class ElementwiseChain: Module {
    let first: Quantizer
    let second: Quantizer
    let w: [Float]
    init(first: Quantizer, second: Quantizer, w: [Float]) { self.first = first; self.second = second; self.w = w }

    func forward(_ x: Tensor, _ ctx: ForwardContext) -> Tensor {
        var h = first.forward(x, ctx)
        for i in 0..<h.count { h.data[i] *= w[i] }
        return second.forward(h, ctx)
    }

    func backward(_ dy: Tensor) -> Tensor {
        var g = second.backward(dy)
        for i in 0..<g.count { g.data[i] *= w[i] }
        return first.backward(g)
    }

    var parameters: [Parameter] { [first.scale, second.scale] }
}

final class EWGSHessianTests: XCTestCase {
    /// L = 0.5·Σ a·y², y = Q(W): H = diag(a) in y-units, H_u = diag(a·D²) in normalised units, so
    /// Hutchinson with Rademacher vectors is exact: avgTr = mean(a·D²), G_u = a·y·D.
    func testDiagonalQuadraticIsExact() {
        var rng = RNG(seed: 20)
        for granularity in [ScaleGranularity.perTensor, .perChannel] {
            let channels = granularity == .perTensor ? 1 : 4
            let q = Quantizer(layerName: "c", role: .weight, bits: 4, range: .signed, granularity: granularity,
                              channels: channels, method: .ewgs)
            let weight = rng.normalTensor([4, 30], std: 0.2)
            q.initializeScale(from: weight, method: .mse)
            let a = (0..<weight.count).map { _ in rng.uniform(0.5, 2) }
            var lastY = Tensor.zeros([1])
            let estimates = estimateEWGSDeltas(quantizers: [q], batchCount: 2) { _ in
                let y = q.forward(weight, ForwardContext(training: false, needsBackward: true))
                lastY = y
                _ = q.backward(Tensor(shape: y.shape, data: (0..<y.count).map { a[$0] * y.data[$0] }))
            }
            let y = q.fakeQuantize(weight)
            XCTAssertEqual(lastY.count, y.count)
            let block = weight.count / channels
            let d = (0..<weight.count).map { Double(q.scale.value.data[$0 / block]) * 15 }
            let avgTr = (0..<weight.count).reduce(0.0) { $0 + Double(a[$1]) * d[$1] * d[$1] } / Double(weight.count)
            let g = (0..<weight.count).map { Double(a[$0]) * Double(y.data[$0]) * d[$0] }
            let mean = g.reduce(0, +) / Double(g.count)
            let std = (g.reduce(0.0) { $0 + ($1 - mean) * ($1 - mean) } / Double(g.count)).squareRoot()
            let expected = avgTr / (3 * std)
            XCTAssertEqual(estimates[0].averageTrace, avgTr, accuracy: 1e-3 * avgTr, "\(granularity)")
            XCTAssertEqual(Double(estimates[0].delta), expected, accuracy: 1e-3 * expected, "\(granularity)")
            XCTAssertEqual(q.ewgsDelta, estimates[0].delta, "applied")
            XCTAssertEqual(q.scale.grad.data, [Float](repeating: 0, count: channels), "gradients restored")
        }
    }

    /// Two chained quantizers with a coarse second one, so unfrozen rounding would make the finite
    /// differences useless. Analytic traces (normalised units, m = Q2's inside mask):
    /// Tr(H_11) = Σ b·w²·m·D1², Tr(H_22) = Σ b·D2²; the simultaneous perturbation adds a zero-mean
    /// cross term, so the check allows 5%.
    func testChainedQuantizersTraceWithFrozenRounding() {
        var rng = RNG(seed: 21)
        let n = 4000
        let first = Quantizer(layerName: "a", role: .activation, bits: 4, range: .signed, initialScale: 0.25)
        let second = Quantizer(layerName: "b", role: .activation, bits: 2, range: .signed, initialScale: 0.5)
        let w = (0..<n).map { _ in rng.uniform(0.5, 1.5) }
        let b = (0..<n).map { _ in rng.uniform(0.5, 2) }
        let x = rng.normalTensor([n], std: 0.6)
        let model = ElementwiseChain(first: first, second: second, w: w)
        var grads: [Float] = []
        let options = HessianDeltaOptions(maxIterations: 40, tolerance: 0, epsilon: 1e-3, seed: 3)
        let estimates = estimateEWGSDeltas(quantizers: [first, second], batchCount: 1, preserving: model.parameters,
                                           options: options) { _ in
            let z = model.forward(x, ForwardContext(training: false, needsBackward: true))
            grads = (0..<n).map { b[$0] * z.data[$0] }
            _ = model.backward(Tensor(shape: [n], data: grads))
        }
        XCTAssertEqual(estimates.map(\.iterations), [40, 40])
        let y1 = first.fakeQuantize(x)
        let d1 = 0.25 * 15.0, d2 = 0.5 * 3.0
        var tr1 = 0.0, tr2 = 0.0
        for i in 0..<n {
            let h = y1.data[i] * w[i]
            let inside = h / 0.5 >= -2 && h / 0.5 <= 1
            tr1 += Double(b[i]) * Double(w[i] * w[i]) * (inside ? 1 : 0) * d1 * d1
            tr2 += Double(b[i]) * d2 * d2
        }
        let avg1 = tr1 / Double(n), avg2 = tr2 / Double(n)
        XCTAssertEqual(estimates[0].averageTrace, avg1, accuracy: 0.05 * avg1, "first: \(estimates[0].averageTrace) vs \(avg1)")
        XCTAssertEqual(estimates[1].averageTrace, avg2, accuracy: 0.05 * avg2, "second: \(estimates[1].averageTrace) vs \(avg2)")
        XCTAssertGreaterThan(estimates[0].delta, 0)
        // The quantizers are back to normal operation afterwards.
        XCTAssertNil(first.probe)
        XCTAssertEqual(first.forward(x, .eval), y1)
    }

    /// Negative curvature gives δ clipped at 0.
    func testNegativeCurvatureClipsToZero() {
        var rng = RNG(seed: 22)
        let q = Quantizer(layerName: "c", role: .activation, bits: 4, range: .signed, method: .ewgs, initialScale: 0.1)
        let x = rng.normalTensor([200], std: 0.3)
        let est = estimateEWGSDeltas(quantizers: [q], batchCount: 1) { _ in
            let y = q.forward(x, ForwardContext(training: false, needsBackward: true))
            _ = q.backward(y.scaled(by: -1))    // L = −0.5·Σ y²
        }
        XCTAssertLessThan(est[0].averageTrace, 0)
        XCTAssertEqual(est[0].delta, 0)
    }

    /// On a real quantized network (GroupNorm, ReLU kinks): finite non-negative δ for every
    /// quantizer, deterministic for a seed, gradients and outputs untouched afterwards.
    func testNetworkEstimateIsDeterministicAndLeavesModelUnchanged() throws {
        var rng = RNG(seed: 23)
        let net = try Network.make(architecture: "mnist_cnn", inChannels: 1, classes: 10, width: 0.25)
        try attachQuantizers(to: net, config: QuantizationConfig(method: .ewgs))
        let x = rng.normalTensor([4, 1, 8, 8])
        let labels = [1, 3, 5, 7]
        try calibrateQuantizers(in: net, batches: [x])
        let before = net.forward(x, .eval)
        for p in net.parameters { p.grad = rng.normalTensor(p.shape) }
        let grads = net.parameters.map(\.grad)
        let qs = quantizers(in: net)
        func run() -> [EWGSDeltaEstimate] {
            estimateEWGSDeltas(quantizers: qs, batchCount: 1, preserving: net.parameters,
                               options: HessianDeltaOptions(maxIterations: 10, seed: 5)) { _ in
                let logits = net.forward(x, ForwardContext(training: false, needsBackward: true))
                _ = net.backward(softmaxCrossEntropy(logits: logits, labels: labels).gradient)
            }
        }
        let first = run()
        let second = run()
        XCTAssertEqual(first, second)
        XCTAssertEqual(first.count, 7)
        for e in first {
            XCTAssertTrue(e.delta.isFinite && e.delta >= 0, "\(e)")
            XCTAssertTrue(e.averageTrace.isFinite && e.gradientStd > 0, "\(e)")
        }
        XCTAssertEqual(qs.map(\.ewgsDelta), first.map(\.delta))
        XCTAssertEqual(net.parameters.map(\.grad), grads)
        XCTAssertEqual(net.forward(x, .eval), before)
    }
}
