// Slow reference kernels for the tests (like llm.c's dev/): direct loops in Double where it matters,
// written for obviousness, never for speed. Only test targets depend on this module; the production
// kernels they check live in TensorCore (gemm, convolution2d) and Quant (QuantizerKernels).
import TensorCore

/// Triple-loop reference for `gemm`: C = alpha·op(A)·op(B) + beta·C, row-major, sums in Double.
public func gemmReference(transA: Bool = false, transB: Bool = false,
                          m: Int, n: Int, k: Int, alpha: Float = 1,
                          a: [Float], lda: Int, b: [Float], ldb: Int,
                          beta: Float = 0, c: inout [Float], ldc: Int) {
    for i in 0..<m {
        for j in 0..<n {
            var s: Double = 0
            for p in 0..<k {
                let av = transA ? a[p * lda + i] : a[i * lda + p]
                let bv = transB ? b[j * ldb + p] : b[p * ldb + j]
                s += Double(av) * Double(bv)
            }
            c[i * ldc + j] = alpha * Float(s) + (beta == 0 ? 0 : beta * c[i * ldc + j])
        }
    }
}

/// Output height and width of a square-kernel convolution: (H + 2p − k)/s + 1.
private func outputSize(_ x: Tensor, _ weight: Tensor, _ options: Convolution2dOptions) -> (oh: Int, ow: Int) {
    precondition(x.rank == 4 && weight.rank == 4 && x.shape[1] == weight.shape[1] && weight.shape[2] == weight.shape[3],
                 "reference conv: x \(x.shape), weight \(weight.shape)")
    let k = weight.shape[2], s = options.stride, p = options.padding
    return ((x.shape[2] + 2 * p - k) / s + 1, (x.shape[3] + 2 * p - k) / s + 1)
}

/// y = conv(x, weight) + bias by direct summation in Double.
public func convolution2dReference(_ x: Tensor, weight: Tensor, bias: Tensor? = nil,
                                   options: Convolution2dOptions = .init()) -> Tensor {
    let (oh, ow) = outputSize(x, weight, options)
    let batch = x.shape[0], cout = weight.shape[0], cin = x.shape[1], k = weight.shape[2]
    let height = x.shape[2], width = x.shape[3], s = options.stride, p = options.padding
    var y = Tensor.zeros([batch, cout, oh, ow])
    // y[n, co, a, b] = bias[co] + Σ_{ci, i, j} x[n, ci, a·s + i − p, b·s + j − p] · w[co, ci, i, j]
    for n in 0..<batch { for co in 0..<cout { for a in 0..<oh { for b in 0..<ow {
        var acc = Double(bias?.data[co] ?? 0)
        for ci in 0..<cin { for i in 0..<k { for j in 0..<k {
            let h = a * s + i - p, w = b * s + j - p
            if h < 0 || h >= height || w < 0 || w >= width { continue }
            acc += Double(x.data[x.offset(n, ci, h, w)]) * Double(weight.data[weight.offset(co, ci, i, j)])
        } } }
        y.data[y.offset(n, co, a, b)] = Float(acc)
    } } } }
    return y
}

/// Gradients of the reference convolution by direct summation in Double.
public func convolution2dReferenceBackward(_ x: Tensor, weight: Tensor, outputGradient dy: Tensor,
                                           options: Convolution2dOptions = .init()) -> Convolution2dGradients {
    let (oh, ow) = outputSize(x, weight, options)
    let batch = x.shape[0], cout = weight.shape[0], cin = x.shape[1], k = weight.shape[2]
    let height = x.shape[2], width = x.shape[3], s = options.stride, p = options.padding
    precondition(dy.shape == [batch, cout, oh, ow], "reference conv backward: dy \(dy.shape) vs output \([batch, cout, oh, ow])")
    var dx = [Double](repeating: 0, count: x.count)
    var dw = [Double](repeating: 0, count: weight.count)
    var db = [Double](repeating: 0, count: cout)
    // dx[n, ci, a·s+i−p, b·s+j−p] += dy[n, co, a, b] · w[co, ci, i, j]
    // dw[co, ci, i, j]            += dy[n, co, a, b] · x[n, ci, a·s+i−p, b·s+j−p]
    for n in 0..<batch { for co in 0..<cout { for a in 0..<oh { for b in 0..<ow {
        let d = Double(dy.data[dy.offset(n, co, a, b)])
        db[co] += d
        for ci in 0..<cin { for i in 0..<k { for j in 0..<k {
            let h = a * s + i - p, w = b * s + j - p
            if h < 0 || h >= height || w < 0 || w >= width { continue }
            let xi = x.offset(n, ci, h, w), wi = weight.offset(co, ci, i, j)
            dx[xi] += d * Double(weight.data[wi])
            dw[wi] += d * Double(x.data[xi])
        } } }
    } } } }
    return Convolution2dGradients(input: Tensor(shape: x.shape, data: dx.map { Float($0) }),
                                  weight: Tensor(shape: weight.shape, data: dw.map { Float($0) }),
                                  bias: Tensor(shape: [cout], data: db.map { Float($0) }))
}

/// Element-by-element references for the fused LSQ/EWGS fake-quantization kernels
/// (Quant's `QuantizerKernels`): x is split into `scales.count` equal blocks, one scale each.
public enum QuantizerReference {
    /// y = clamp(round(x/s), lowest, highest)·s and the residual cache (q − v inside, ±1 outside),
    /// with Swift's own rounding.
    public static func forward(x: [Float], scales: [Float], lowest: Float, highest: Float) -> (y: [Float], residual: [Float]) {
        let blockSize = x.count / scales.count
        var y = [Float](repeating: 0, count: x.count), r = y
        for i in 0..<x.count {
            let s = scales[i / blockSize]
            let v = x[i] / s
            let c = min(max(v, lowest), highest)
            let q = c.rounded(.toNearestOrEven)
            y[i] = q * s
            r[i] = v < lowest ? -1 : (v > highest ? 1 : q - v)
        }
        return (y, r)
    }

    /// Backward from x itself (not from the cache): dx (EWGS-scaled inside the range) and per-block
    /// Σ dy·∂y/∂s in Double.
    public static func backward(x: [Float], dy: [Float], scales: [Float], lowest: Float, highest: Float,
                                ewgsFactor: Float) -> (dx: [Float], sums: [Double]) {
        let blockSize = x.count / scales.count
        var dx = [Float](repeating: 0, count: x.count)
        var sums = [Double](repeating: 0, count: scales.count)
        for i in 0..<x.count {
            let b = i / blockSize
            let v = x[i] / scales[b]
            if v < lowest {
                sums[b] += Double(dy[i]) * Double(lowest)
            } else if v > highest {
                sums[b] += Double(dy[i]) * Double(highest)
            } else {
                let q = v.rounded(.toNearestOrEven)
                let sign: Float = dy[i] > 0 ? 1 : (dy[i] < 0 ? -1 : 0)
                dx[i] = dy[i] * (1 + ewgsFactor * sign * (v - q))
                sums[b] += Double(dy[i]) * Double(q - v)
            }
        }
        return (dx, sums)
    }
}
