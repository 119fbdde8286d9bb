// EWGS δ re-estimation from a Hessian-trace estimate (docs/quantization.md §4, adapted).
//
// EWGS (Lee et al. 2021, ImageNet/utils.py) sets, per quantized tensor x_q with gradient G,
//     δ = (Tr(∇²_{x_q} L)/numel(x_q)) / (3·std(G)),
// the trace from Hutchinson's estimator E[vᵀHv] with Rademacher v, the Hessian-vector products by
// double backpropagation, averaged over a few batches and clipped at 0. We have no double backward,
// so H·v comes from central differences of gradients:
//     H·v ≈ (∇L(x_q + εv) − ∇L(x_q − εv)) / (2ε).
// What we do exactly (docs/quantization.md, "EWGS δ"):
// 1. Units. EWGS measures x_q in its [0, 1]-normalised range, so δ is in those units. Our
//    quantizer's output y = q·s spans (Qp − Qn)·s, so we work in u = y/(s_c·(Qp − Qn)) per channel:
//    G_u = G·D, H_u = D·H·D with D = s_c·(Qp − Qn). The result is the δ that `Quantizer.ewgsDelta`
//    expects (the backward divides by Qp − Qn again, §2.2).
// 2. Frozen rounding. A plain finite difference through the model would see downstream quantizers
//    flip rounding decisions (jumps of one step, divided by ε). Autograd's double backward treats
//    round_pass's (round(v) − v).detach() and the clamp mask as constants; we do the same: after a
//    reference pass each quantizer replaces itself by its linearisation y = mask·x + (y_ref − mask·x_ref)
//    (+ the probe perturbation) with backward dx = mask·dy (plain STE, no EWGS term, no s-gradient).
//    Kinks of ReLU/max-pool are not frozen: a unit that changes sides contributes a gradient jump
//    (the distributional curvature autograd ignores); with small ε only a few units flip.
// 3. All quantizers at once. Every quantizer gets its own independent Rademacher vector in the same
//    pair of passes; v_lᵀ(H v)_l is an unbiased estimate of Tr(H_ll) because cross terms
//    v_lᵀH_lm v_m have zero mean (this is also what one autograd.grad over all layers computes).
//    One Hutchinson iteration therefore costs two forward+backward passes for the whole model.
// 4. Stopping (EWGS): at most `maxIterations`; a quantizer's running mean stops updating once
//    |mean_t − mean_{t−1}| / (|mean_{t−1}| + 1e-6) < tolerance; iterations stop when all have.
import NN
import TensorCore

public struct HessianDeltaOptions: Sendable, Equatable {
    /// Hutchinson iterations per batch at most (EWGS: 50).
    public var maxIterations: Int
    /// Relative change of the running trace mean that counts as converged (EWGS: 1e-3).
    public var tolerance: Double
    /// Finite-difference step in normalised units (a fraction of the quantizer's full range).
    public var epsilon: Float
    /// Seed of the Rademacher vectors.
    public var seed: UInt64

    public init(maxIterations: Int = 50, tolerance: Double = 1e-3, epsilon: Float = 1e-3, seed: UInt64 = 0) {
        precondition(maxIterations >= 1 && epsilon > 0, "Hessian options: maxIterations ≥ 1 and epsilon > 0")
        self.maxIterations = maxIterations
        self.tolerance = tolerance
        self.epsilon = epsilon
        self.seed = seed
    }
}

/// The δ found for one quantizer, with the numbers behind it (all in normalised units).
public struct EWGSDeltaEstimate: Sendable, Equatable {
    public var quantizer: String
    /// Batch average of avgTr/(3·std(G)), clipped at 0.
    public var delta: Float
    /// Batch average of Tr(H)/numel.
    public var averageTrace: Double
    /// Batch average of std(G).
    public var gradientStd: Double
    /// Batch average of the Hutchinson iterations used.
    public var iterations: Double
}

/// Estimates (and by default applies) EWGS δ for each quantizer.
/// - `pass(b)` must run one forward (with `needsBackward`) and one backward of the loss on batch b,
///   deterministically: the same batch, no dropout randomness, no running-statistics updates
///   (e.g. `ForwardContext(training: false, needsBackward: true)`). It is called
///   1 + 2·iterations times per batch.
/// - Gradients of `parameters` and of the quantizers' scales are saved and restored, so the caller's
///   accumulated gradients are unchanged.
@discardableResult
public func estimateEWGSDeltas(quantizers: [Quantizer], batchCount: Int, preserving parameters: [Parameter] = [],
                               options: HessianDeltaOptions = HessianDeltaOptions(), apply: Bool = true,
                               pass: (Int) -> Void) -> [EWGSDeltaEstimate] {
    precondition(batchCount >= 1, "estimateEWGSDeltas needs at least one batch")
    var saved: [(Parameter, Tensor)] = []
    var seen = Set<ObjectIdentifier>()
    for p in parameters + quantizers.map(\.scale) where seen.insert(ObjectIdentifier(p)).inserted {
        saved.append((p, p.grad))
    }
    defer {
        for (p, g) in saved { p.grad = g }
        for q in quantizers { q.probe = nil; q.clearCache() }
    }

    var rng = RNG(seed: options.seed)
    let n = quantizers.count
    var deltaSum = [Double](repeating: 0, count: n)
    var traceSum = [Double](repeating: 0, count: n)
    var stdSum = [Double](repeating: 0, count: n)
    var iterationSum = [Double](repeating: 0, count: n)

    for b in 0..<batchCount {
        // Reference pass: record G and each quantizer's linearisation.
        for q in quantizers { q.probe = HessianProbe() }
        pass(b)
        var normalisation: [[Float]] = []   // D per element
        var gradient: [[Float]] = []        // G_u = D·G
        for q in quantizers {
            guard let g = q.probe!.gradient else {
                preconditionFailure("estimateEWGSDeltas: quantizer \(q.name) received no gradient in pass(\(b))")
            }
            let d = q.probe!.normalisation(scales: q.effectiveScales, steps: q.steps)
            normalisation.append(d)
            gradient.append(zip(g, d).map { $0 * $1 })
            q.probe!.phase = .linearized
        }

        var mean = [Double](repeating: 0, count: n)
        var done = [Bool](repeating: false, count: n)
        var iterations = [Int](repeating: 0, count: n)
        for _ in 0..<options.maxIterations {
            // One Rademacher vector per quantizer; perturbation ε·D·v in y-units.
            var directions: [[Float]] = []
            for (i, q) in quantizers.enumerated() {
                let v = rademacher(count: normalisation[i].count, rng: &rng)
                directions.append(v)
                q.probe!.perturbation = zip(v, normalisation[i]).map { options.epsilon * $0 * $1 }
            }
            pass(b)
            let plus = quantizers.map { $0.probe!.gradient! }
            for q in quantizers { q.probe!.perturbation = q.probe!.perturbation!.map { -$0 } }
            pass(b)
            for (i, q) in quantizers.enumerated() where !done[i] {
                let minus = q.probe!.gradient!
                let d = normalisation[i], v = directions[i]
                // vᵀ H_u v = Σ v · D · (G(+) − G(−)) / (2ε)
                var vhv = 0.0
                for e in 0..<v.count {
                    vhv += Double(v[e]) * Double(d[e]) * (Double(plus[i][e]) - Double(minus[e]))
                }
                vhv /= 2 * Double(options.epsilon)
                iterations[i] += 1
                let previous = mean[i]
                mean[i] += (vhv - mean[i]) / Double(iterations[i])
                if iterations[i] > 1 && abs(mean[i] - previous) / (abs(previous) + 1e-6) < options.tolerance {
                    done[i] = true
                }
            }
            if done.allSatisfy({ $0 }) { break }
        }

        for i in 0..<n {
            let count = Double(gradient[i].count)
            let average = mean[i] / count
            let gMean = gradient[i].reduce(0.0) { $0 + Double($1) } / count
            let gVar = gradient[i].reduce(0.0) { $0 + (Double($1) - gMean) * (Double($1) - gMean) } / count
            let gStd = gVar.squareRoot()
            deltaSum[i] += gStd > 0 ? average / (3 * gStd) : 0
            traceSum[i] += average
            stdSum[i] += gStd
            iterationSum[i] += Double(iterations[i])
        }
    }

    let batches = Double(batchCount)
    var estimates: [EWGSDeltaEstimate] = []
    for (i, q) in quantizers.enumerated() {
        let delta = Float(max(0, deltaSum[i] / batches))
        estimates.append(EWGSDeltaEstimate(quantizer: q.name, delta: delta, averageTrace: traceSum[i] / batches,
                                           gradientStd: stdSum[i] / batches, iterations: iterationSum[i] / batches))
        if apply { q.ewgsDelta = delta }
    }
    return estimates
}

private func rademacher(count: Int, rng: inout RNG) -> [Float] {
    var v = [Float](repeating: 1, count: count)
    var bits: UInt64 = 0
    for i in 0..<count {
        if i % 64 == 0 { bits = rng.next() }
        if bits & 1 == 1 { v[i] = -1 }
        bits >>= 1
    }
    return v
}

/// A quantizer's state while the Hessian estimator drives it (see the header).
final class HessianProbe {
    enum Phase { case reference, linearized }
    var phase: Phase = .reference
    /// 1 where the reference input was inside the range (the STE passes), 0 outside.
    var mask: [Float] = []
    /// y_ref − mask·x_ref: the frozen rounding offset.
    var offset: [Float] = []
    /// Added to the output in the linearised phase.
    var perturbation: [Float]?
    /// dL/dy of the latest backward.
    var gradient: [Float]?

    /// D = s_c·(Qp − Qn) per element (channels are contiguous blocks of axis 0).
    func normalisation(scales: [Float], steps: Int) -> [Float] {
        let blockSize = mask.count / scales.count
        return (0..<mask.count).map { scales[$0 / blockSize] * Float(steps) }
    }
}

extension Quantizer {
    func probeForward(_ x: Tensor, _ ctx: ForwardContext) -> Tensor {
        let p = probe!
        var y: Tensor
        switch p.phase {
        case .reference:
            if quantizationEnabled {
                let scales = effectiveScales
                y = Tensor(shape: x.shape)
                var residual = [Float](repeating: 0, count: x.count)
                x.data.withUnsafeBufferPointer { xp in
                    y.data.withUnsafeMutableBufferPointer { yp in
                        residual.withUnsafeMutableBufferPointer { rp in
                            QuantizerKernels.forward(x: xp.baseAddress!, y: yp.baseAddress!, residual: rp.baseAddress!,
                                                     count: x.count, scales: scales,
                                                     lowest: Float(lowest), highest: Float(highest))
                        }
                    }
                }
                p.mask = residual.map { abs($0) <= 0.5 ? 1 : 0 }
                p.offset = (0..<x.count).map { y.data[$0] - p.mask[$0] * x.data[$0] }
            } else {
                y = x
                p.mask = [Float](repeating: 1, count: x.count)
                p.offset = [Float](repeating: 0, count: x.count)
            }
        case .linearized:
            precondition(x.count == p.mask.count, "Quantizer \(name): probe input \(x.shape) differs from the reference pass")
            y = Tensor(shape: x.shape)
            for i in 0..<x.count { y.data[i] = p.mask[i] * x.data[i] + p.offset[i] }
            if let e = p.perturbation { for i in 0..<x.count { y.data[i] += e[i] } }
        }
        cache = ctx.needsBackward ? QuantizerCache(identityWithShape: x.shape) : nil
        return y
    }

    func probeBackward(_ dy: Tensor, _ cache: QuantizerCache) -> Tensor {
        let p = probe!
        p.gradient = dy.data
        var dx = dy
        for i in 0..<dx.count { dx.data[i] *= p.mask[i] }
        return dx
    }
}
