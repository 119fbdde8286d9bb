// Tiny hand-made models for the Optim tests: the module depends only on Parameter and closures,
// so tests build their own losses with analytic gradients.
import Foundation
import NN
import TensorCore
import XCTest
@testable import Optim

/// Largest |a − b| over elements.
func maxAbsDifference(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "compare \(a.count) vs \(b.count) elements")
    var m: Float = 0
    for (x, y) in zip(a, b) { m = max(m, abs(x - y)); if x.isNaN != y.isNaN { return .infinity } }
    return m
}

func bitPatterns(_ a: [Float]) -> [UInt32] { a.map(\.bitPattern) }

func parameter(_ name: String, _ kind: Parameter.Kind = .weight, _ values: [Float]) -> Parameter {
    Parameter(name: name, kind: kind, value: Tensor(shape: [values.count], data: values))
}

/// L(w, b, s) = ½ Σ aᵢ(wᵢ − cᵢ)² + ½(b − 1)² + ½ β (s₀ − Σ w)² + ½ Σ_j (s₁ⱼ − wⱼ wⱼ₊₁)²
/// Smooth, with scale gradients that depend on the weights (so g_QAT ≠ g_flat), and a hand-written
/// gradient. `w` has 3 elements, `b` 1, `s0` 1 (per-tensor scale), `s1` 2 (per-channel scale).
final class QuadraticModel {
    let w = parameter("layer1.conv.weight", .weight, [0.5, -1.0, 2.0])
    let b = parameter("layer1.conv.bias", .bias, [0.25])
    let s0 = parameter("layer1.conv.a.s", .scale, [0.3])
    let s1 = parameter("layer1.conv.w.s", .scale, [0.2, -0.1])
    let a: [Double] = [1.0, 3.0, 0.5]
    let c: [Double] = [0.0, 1.0, -1.0]
    let beta = 2.0
    var weights: [Parameter] { [w, b] }
    var scales: [Parameter] { [s0, s1] }
    /// Passes seen by `compute`, and the weight values each pass saw.
    var passes: [Int] = []
    var seenWeights: [[Float]] = []

    /// Loss and gradients in Double at the given values: (loss, dw, db, ds0, ds1).
    func reference(w: [Double], b: Double, s0: Double, s1: [Double]) -> (Double, [Double], Double, Double, [Double]) {
        var loss = 0.0
        var dw = [Double](repeating: 0, count: 3)
        for i in 0..<3 { loss += 0.5 * a[i] * (w[i] - c[i]) * (w[i] - c[i]); dw[i] += a[i] * (w[i] - c[i]) }
        loss += 0.5 * (b - 1) * (b - 1)
        let db = b - 1
        let r = s0 - (w[0] + w[1] + w[2])
        loss += 0.5 * beta * r * r
        let ds0 = beta * r
        for i in 0..<3 { dw[i] -= beta * r }
        var ds1 = [0.0, 0.0]
        for j in 0..<2 {
            let q = s1[j] - w[j] * w[j + 1]
            loss += 0.5 * q * q
            ds1[j] = q
            dw[j] -= q * w[j + 1]
            dw[j + 1] -= q * w[j]
        }
        return (loss, dw, db, ds0, ds1)
    }

    /// The closure for SAGM: forward + backward at the current values, accumulating into grads.
    func compute(_ pass: Int) -> Float {
        passes.append(pass)
        seenWeights.append(w.value.data + b.value.data)
        let (loss, dw, db, ds0, ds1) = reference(w: w.value.data.map(Double.init), b: Double(b.value[0]),
                                                 s0: Double(s0.value[0]), s1: s1.value.data.map(Double.init))
        for i in 0..<3 { w.grad[i] += Float(dw[i]) }
        b.grad[0] += Float(db)
        s0.grad[0] += Float(ds0)
        for j in 0..<2 { s1.grad[j] += Float(ds1[j]) }
        return Float(loss)
    }
}

/// A fake-quantized linear regression, y = Q(x; s_a) · Q(W; s_w)ᵀ + b with LSQ-style quantizers
/// (Esser et al. 2020: ∂q/∂s = round(v/s) − v/s inside the range, ±Q at the clamps; STE for v),
/// mean-squared-error loss on a minibatch drawn from a seeded RNG. Scale gradients here change sign
/// often, which exercises the disorder tracker and the freeze policies.
final class TinyQuantizedRegression {
    let inputs = 4, outputs = 2, bound: Float = 7        // 4-bit signed range [−7, 7]
    let weight: Parameter
    let bias: Parameter
    let weightScale: Parameter       // per output channel, (2,)
    let inputScale: Parameter        // per tensor, (1,)
    var rng: RNG
    let data: [(x: [Float], y: [Float])]
    let batch = 8

    init(seed: UInt64) {
        var r = RNG(seed: seed)
        var w = [Float](); for _ in 0..<(inputs * outputs) { w.append(r.normal() * 0.5) }
        weight = Parameter(name: "fc.weight", kind: .weight, value: Tensor(shape: [outputs, inputs], data: w))
        bias = Parameter(name: "fc.bias", kind: .bias, value: Tensor(shape: [outputs], data: [0, 0]))
        weightScale = Parameter(name: "fc.w.s", kind: .scale, value: Tensor(shape: [outputs], data: [0.15, 0.15]))
        inputScale = Parameter(name: "fc.a.s", kind: .scale, value: Tensor(shape: [1], data: [0.3]))
        let truth: [Float] = [0.8, -0.5, 0.3, 1.1, -0.7, 0.2, 0.9, -0.4]
        var samples: [(x: [Float], y: [Float])] = []
        for _ in 0..<64 {
            var x = [Float](); for _ in 0..<inputs { x.append(r.normal()) }
            var y = [Float](repeating: 0, count: outputs)
            for o in 0..<outputs { for i in 0..<inputs { y[o] += truth[o * inputs + i] * x[i] }; y[o] += 0.05 * r.normal() }
            samples.append((x, y))
        }
        data = samples
        rng = r.split()
    }

    var weights: [Parameter] { [weight, bias] }
    var scales: [Parameter] { [weightScale, inputScale] }

    /// LSQ fake quantization of v with step s: value and the derivatives ∂q/∂v, ∂q/∂s.
    func quantize(_ v: Float, _ s: Float) -> (q: Float, dv: Float, ds: Float) {
        let u = v / s
        if u <= -bound { return (-bound * s, 0, -bound) }
        if u >= bound { return (bound * s, 0, bound) }
        let r = u.rounded(.toNearestOrEven)
        return (r * s, 1, r - u)
    }

    /// Draws a batch (pass 1 only: pass 2 reuses it, as SAGM does) and runs forward + backward.
    private var currentBatch: [Int] = []
    func compute(_ pass: Int) -> Float {
        if pass == 1 { currentBatch = (0..<batch).map { _ in rng.int(below: data.count) } }
        var loss: Float = 0
        let n = Float(currentBatch.count * outputs)
        // Quantized weights (outputs, inputs) and their derivatives.
        var wq = [Float](repeating: 0, count: inputs * outputs), wdv = wq, wds = wq
        for o in 0..<outputs { for i in 0..<inputs {
            let k = o * inputs + i
            (wq[k], wdv[k], wds[k]) = quantize(weight.value[k], weightScale.value[o])
        } }
        for index in currentBatch {
            let (x, y) = data[index]
            var xq = [Float](repeating: 0, count: inputs), xds = xq
            for i in 0..<inputs { let t = quantize(x[i], inputScale.value[0]); xq[i] = t.q; xds[i] = t.ds }
            for o in 0..<outputs {
                var out = bias.value[o]
                for i in 0..<inputs { out += xq[i] * wq[o * inputs + i] }
                let err = out - y[o]
                loss += err * err / n
                let dy = 2 * err / n
                bias.grad[o] += dy
                for i in 0..<inputs {
                    let k = o * inputs + i
                    weight.grad[k] += dy * xq[i] * wdv[k]
                    weightScale.grad[o] += dy * xq[i] * wds[k]
                    inputScale.grad[0] += dy * wq[k] * xds[i]
                }
            }
        }
        return loss
    }

    var allValues: [Float] { (weights + scales).flatMap(\.value.data) }

    func load(_ values: [Float]) {
        var k = 0
        for p in weights + scales {
            p.value = Tensor(shape: p.shape, data: Array(values[k..<(k + p.count)]))
            k += p.count
        }
    }
}

func jsonRoundTrip<T: Codable>(_ value: T, file: StaticString = #filePath, line: UInt = #line) throws -> T {
    let data = try JSONEncoder().encode(value)
    return try JSONDecoder().decode(T.self, from: data)
}

/// A quadratic weight (L = ½‖w‖²) plus scale factors whose gradients the test dictates: in pass 1
/// factor f gets `qat(f, step)`, in pass 2 `flat(f, step)` (steps counted from 1 at each pass 1).
final class ControlledScales {
    let weight = parameter("w", .weight, [1, -1])
    let scales: [Parameter]
    var qat: (_ factor: Int, _ step: Int) -> [Float]
    var flat: (_ factor: Int, _ step: Int) -> [Float]
    private(set) var step = 0

    init(_ scaleSizes: [(String, Int)],
         qat: @escaping (Int, Int) -> [Float], flat: @escaping (Int, Int) -> [Float] = { _, _ in [] }) {
        scales = scaleSizes.map { Parameter(name: $0.0, kind: .scale, value: Tensor(shape: [$0.1], repeating: 1)) }
        self.qat = qat
        self.flat = flat
    }

    var names: [String] { scales.map(\.name) }

    func compute(_ pass: Int) -> Float {
        if pass == 1 { step += 1 }
        weight.grad.add(weight.value)
        for (f, s) in scales.enumerated() {
            var g = pass == 1 ? qat(f, step) : flat(f, step)
            if g.isEmpty { g = [Float](repeating: 0.25, count: s.count) }
            s.grad = Tensor(shape: s.shape, data: g)
        }
        return Float(0.5 * weight.value.squaredNorm())
    }

    /// ScaleGradients for the controller alone (no SAGM), at `step`.
    func gradients(step: Int) -> [ScaleGradients] {
        scales.indices.map { f in
            let q = qat(f, step), fl = flat(f, step)
            return ScaleGradients(name: scales[f].name, qat: Tensor(shape: [q.count], data: q),
                                  flat: fl.isEmpty ? Tensor(shape: [q.count], repeating: 0.25) : Tensor(shape: [fl.count], data: fl))
        }
    }
}
