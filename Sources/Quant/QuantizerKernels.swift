// The fused fake-quantization kernels behind `Quantizer` (their slow references, for the tests, are
// QuantizerReference in Tests/ReferenceKernels).
//
// Layout: a tensor of n elements is split into `blocks` contiguous blocks of n/blocks elements,
// block b using step size s[b] (per-tensor: 1 block; per-channel weight [Cout, Cin, kh, kw]:
// Cout blocks). Work is cut into fixed units of at most `unitSize` elements that never straddle a
// block, so the inner loops see one constant s and partial sums are reduced in a fixed order:
// results do not depend on the thread count.
//
// Forward, per element (docs/quantization.md §1):  v = x/s;  c = clamp(v, Qn, Qp);  q = round½even(c);  y = q·s
// and, in the same pass, the one Float backward needs (the "residual" cache):
//   r = q − v          if Qn ≤ v ≤ Qp   (|r| ≤ 0.5)
//   r = −1 / +1        if v < Qn / v > Qp (sentinels: |r| > 0.5 marks "outside")
// Backward, per element (docs/quantization.md §1), in one pass:
//   dx = dy                          inside (LSQ, straight-through), 0 outside
//   dx = dy − δ'·|dy|·r               inside (EWGS: dy·(1 + δ'·sign(dy)·(v − q))), 0 outside
//   ∂y/∂s = r inside, Qn below, Qp above;   partial[b] += Σ dy·∂y/∂s
// The caller multiplies the per-block sums by the gradient scale g.
import TensorCore

/// Rounds to the nearest integer, ties to even, for |v| ≤ 2^22. Adding and subtracting 1.5·2^23
/// moves v into [2^23, 2^24) where the float spacing is exactly 1, so the hardware's default
/// round-to-nearest-even does the rounding. Unlike `rounded(.toNearestOrEven)` (a `rintf` call
/// on the baseline x86-64 target, which has no SSE4.1 `roundps`) this vectorises. Values passed
/// here are already clamped to [−128, 255].
@inline(__always)
func roundHalfEven(_ v: Float) -> Float {
    (v + 12_582_912.0) - 12_582_912.0
}

/// One element's integer code round½even(clamp(x/s, qn, qp)): the arithmetic the fake-quantized
/// forward (code·s) and the exported integer codes share, so the two cannot drift apart.
@inline(__always)
func integerCode(_ x: Float, step s: Float, lowest qn: Float, highest qp: Float) -> Float {
    let v = x / s
    return roundHalfEven(v < qn ? qn : (v > qp ? qp : v))
}

@inline(__always)
func roundHalfEven(_ v: SIMD8<Float>) -> SIMD8<Float> {
    let magic = SIMD8<Float>(repeating: 12_582_912.0)
    return (v + magic) - magic
}

/// A contiguous run of elements that share one step size.
struct QuantizationWorkUnit {
    var block: Int
    var lower: Int
    var upper: Int
}

enum QuantizerKernels {
    /// Elements per work unit: large enough to amortise dispatch, small enough to stay in L2.
    static let unitSize = 16_384
    /// Below this many elements the kernels run on the calling thread.
    static let parallelThreshold = 262_144

    static func workUnits(count: Int, blocks: Int) -> [QuantizationWorkUnit] {
        precondition(blocks > 0 && count % blocks == 0, "\(count) elements do not split into \(blocks) channel blocks")
        let blockSize = count / blocks
        var units: [QuantizationWorkUnit] = []
        units.reserveCapacity(blocks * max(1, (blockSize + unitSize - 1) / unitSize))
        for b in 0..<blocks {
            var lo = b * blockSize
            let end = lo + blockSize
            while lo < end {
                let hi = min(end, lo + unitSize)
                units.append(QuantizationWorkUnit(block: b, lower: lo, upper: hi))
                lo = hi
            }
        }
        return units
    }

    static func run(_ units: [QuantizationWorkUnit], count: Int, _ body: (QuantizationWorkUnit, Int) -> Void) {
        Parallel.forEach(units.count, costPerItem: max(1, count / max(1, units.count)),
                         minimumWork: parallelThreshold) { range in
            for u in range { body(units[u], u) }
        }
    }

    /// Fake-quantizes x (n elements, `scales.count` blocks) into y; writes the residual cache
    /// when `residual` is non-nil.
    static func forward(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                        residual: UnsafeMutablePointer<Float>?, count: Int,
                        scales: [Float], lowest: Float, highest: Float) {
        let units = workUnits(count: count, blocks: scales.count)
        scales.withUnsafeBufferPointer { sp in
            run(units, count: count) { unit, _ in
                let s = sp[unit.block]
                let qn = lowest, qp = highest
                if let r = residual {
                    // x, y, r: [unit.lower, unit.upper), one step size s
                    for i in unit.lower..<unit.upper {
                        let v = x[i] / s
                        let c = v < qn ? qn : (v > qp ? qp : v)
                        let q = roundHalfEven(c)
                        y[i] = q * s
                        r[i] = v < qn ? -1 : (v > qp ? 1 : q - v)
                    }
                } else {
                    for i in unit.lower..<unit.upper { y[i] = integerCode(x[i], step: s, lowest: qn, highest: qp) * s }
                }
            }
        }
    }

    /// Integer codes round½even(clamp(x/s)) as Floats (exact small integers), for export and
    /// integer inference; the same arithmetic as `forward`, so codes·s equals its output.
    static func codes(x: UnsafePointer<Float>, codes: UnsafeMutablePointer<Float>, count: Int,
                      scales: [Float], lowest: Float, highest: Float) {
        let units = workUnits(count: count, blocks: scales.count)
        scales.withUnsafeBufferPointer { sp in
            run(units, count: count) { unit, _ in
                let s = sp[unit.block]
                for i in unit.lower..<unit.upper { codes[i] = integerCode(x[i], step: s, lowest: lowest, highest: highest) }
            }
        }
    }

    /// Input gradient and per-block step-size sums Σ dy·∂y/∂s (before the gradient scale).
    /// `ewgsFactor` is δ' (0 gives LSQ's straight-through estimator).
    static func backward(dy: UnsafePointer<Float>, residual: UnsafePointer<Float>,
                         dx: UnsafeMutablePointer<Float>, count: Int, blocks: Int,
                         lowest: Float, highest: Float, ewgsFactor: Float) -> [Double] {
        let units = workUnits(count: count, blocks: blocks)
        var partial = [Double](repeating: 0, count: units.count)
        partial.withUnsafeMutableBufferPointer { pp in
            let pbase = pp.baseAddress!
            run(units, count: count) { unit, index in
                pbase[index] = backwardUnit(dy: dy, residual: residual, dx: dx,
                                            lower: unit.lower, upper: unit.upper,
                                            lowest: lowest, highest: highest, ewgsFactor: ewgsFactor)
            }
        }
        var sums = [Double](repeating: 0, count: blocks)
        for (u, unit) in units.enumerated() { sums[unit.block] += partial[u] }
        return sums
    }

    /// One unit of the backward pass: 8 lanes at a time, a scalar tail, Float lane sums (a unit is
    /// at most 16k elements) returned as Double.
    @inline(__always)
    static func backwardUnit(dy: UnsafePointer<Float>, residual: UnsafePointer<Float>,
                             dx: UnsafeMutablePointer<Float>, lower: Int, upper: Int,
                             lowest: Float, highest: Float, ewgsFactor: Float) -> Double {
        let half = SIMD8<Float>(repeating: 0.5)
        let zero = SIMD8<Float>(repeating: 0)
        let vqn = SIMD8<Float>(repeating: lowest), vqp = SIMD8<Float>(repeating: highest)
        let vd = SIMD8<Float>(repeating: ewgsFactor)
        var acc = SIMD8<Float>()
        var i = lower
        // dy, residual, dx: [lower, upper)
        while i + 8 <= upper {
            let r = UnsafeRawPointer(residual + i).loadUnaligned(as: SIMD8<Float>.self)
            let g = UnsafeRawPointer(dy + i).loadUnaligned(as: SIMD8<Float>.self)
            let negative = r .< zero
            let absR = r.replacing(with: -r, where: negative)
            let inside = absR .<= half
            let absG = g.replacing(with: -g, where: g .< zero)
            let passed = g - vd * absG * r
            let out = zero.replacing(with: passed, where: inside)
            UnsafeMutableRawPointer(dx + i).storeBytes(of: out, as: SIMD8<Float>.self)
            let dyds = vqp.replacing(with: vqn, where: negative).replacing(with: r, where: inside)
            acc += g * dyds
            i += 8
        }
        var tail: Float = 0
        while i < upper {
            let r = residual[i], g = dy[i]
            let inside = abs(r) <= 0.5
            dx[i] = inside ? g - ewgsFactor * abs(g) * r : 0
            tail += g * (inside ? r : (r < 0 ? lowest : highest))
            i += 1
        }
        return Double(acc.sum()) + Double(tail)
    }
}
