// 2-D convolution on NCHW tensors: a fast batched im2col + GEMM path and a slow direct reference.
//
// Shapes: x is (N, Cin, H, W), weight is (Cout, Cin, k, k), y is (N, Cout, OH, OW) with
// OH = (H + 2p − k)/s + 1. The fast path lays every image's patches side by side in one column
// matrix col (K = Cin·k·k rows, P = N·OH·OW columns) so each pass is a single GEMM:
//   forward   Y'(Cout, P) = W(Cout, K) · col(K, P)            then Y' is transposed back to NCHW
//   weight    dW(Cout, K) = dY'(Cout, P) · colᵀ(P, K)         (col recomputed, not stored)
//   input     dcol(K, P)  = Wᵀ(K, Cout) · dY'(Cout, P)        then col2im per image (the adjoint of im2col)
// im2col/col2im and the NCHW <-> (C, N·HW) transposes run per image in parallel; the GEMM uses
// OpenBLAS's own threads. The column matrix lives only inside one call, so the memory a layer keeps
// for backward is its input alone. When the column matrix would exceed `Convolution.columnBudget`
// floats (large images, large batches) the batch is processed in chunks of whole images, one GEMM
// per chunk, with dW accumulated across chunks.

public enum Convolution {
    /// Largest column matrix (in floats) one call may allocate before it splits the batch.
    /// 2^25 floats = 128 MiB.
    nonisolated(unsafe) public static var columnBudget: Int = 1 << 25
}

/// Stride and padding of a square-kernel 2-D convolution; the kernel size comes from the weight.
public struct Convolution2dOptions: Equatable, Hashable, Sendable {
    public var stride: Int
    public var padding: Int
    public init(stride: Int = 1, padding: Int = 0) {
        precondition(stride >= 1 && padding >= 0, "convolution needs stride >= 1 and padding >= 0, got stride \(stride), padding \(padding)")
        self.stride = stride
        self.padding = padding
    }
}

/// Gradients of a convolution with respect to its input, weight and bias.
public struct Convolution2dGradients {
    /// dL/dx, (N, Cin, H, W); nil when not requested.
    public var input: Tensor?
    /// dL/dW, (Cout, Cin, k, k).
    public var weight: Tensor
    /// dL/db, (Cout).
    public var bias: Tensor
    public init(input: Tensor?, weight: Tensor, bias: Tensor) {
        self.input = input; self.weight = weight; self.bias = bias
    }
}

extension Tensor {
    /// A tensor whose storage is allocated but not initialised: only for outputs a kernel overwrites
    /// completely (skips the zero fill of `Tensor(shape:)`).
    public init(uninitializedShape shape: [Int]) {
        let n = shape.reduce(1, *)
        precondition(n >= 0, "negative dimension in shape \(shape)")
        self.init(shape: shape, data: [Float](unsafeUninitializedCapacity: n) { _, count in count = n })
    }
}

/// Checks the operands of a convolution and returns the geometry of one image.
@usableFromInline
func convolutionGeometry(_ x: Tensor, _ weight: Tensor, _ options: Convolution2dOptions) -> ConvGeometry {
    precondition(x.rank == 4, "conv2d input must be (N, C, H, W), got \(x.shape)")
    precondition(weight.rank == 4 && weight.shape[2] == weight.shape[3],
                 "conv2d weight must be (Cout, Cin, k, k), got \(weight.shape)")
    precondition(x.shape[1] == weight.shape[1],
                 "conv2d input has \(x.shape[1]) channels but weight \(weight.shape) expects \(weight.shape[1])")
    let k = weight.shape[2]
    return ConvGeometry(channels: x.shape[1], height: x.shape[2], width: x.shape[3],
                        kernelH: k, kernelW: k, strideH: options.stride, strideW: options.stride,
                        padH: options.padding, padW: options.padding)
}

/// Images per chunk so that the column matrix of one chunk stays within the budget.
@usableFromInline
func convolutionChunk(_ g: ConvGeometry, batch: Int) -> Int {
    let perImage = max(1, g.colRows * g.colCols)
    return max(1, min(batch, Convolution.columnBudget / perImage))
}

/// Fills col (K, chunk·OHW) with the patches of images [first, first + chunk) of x, in parallel.
@inline(__always)
private func fillColumns(_ px: UnsafePointer<Float>, _ g: ConvGeometry, first: Int, chunk: Int,
                         _ col: UnsafeMutablePointer<Float>) {
    let imageSize = g.channels * g.height * g.width
    let ohw = g.colCols
    let ld = chunk * ohw
    Parallel.forEach(chunk, costPerItem: g.colRows * ohw) { range in
        for n in range {
            im2col(px + (first + n) * imageSize, g, col, colOffset: n * ohw, ldc: ld)
        }
    }
}

/// y = conv(x, weight) + bias, the fast path. x (N, Cin, H, W), weight (Cout, Cin, k, k), bias (Cout).
public func convolution2d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil,
                          options: Convolution2dOptions = .init()) -> Tensor {
    let g = convolutionGeometry(x, weight, options)
    let batch = x.shape[0], cout = weight.shape[0]
    if let b = bias { precondition(b.count == cout, "conv2d bias has \(b.count) elements, expected \(cout)") }
    let K = g.colRows, ohw = g.colCols
    var y = Tensor(uninitializedShape: [batch, cout, g.outHeight, g.outWidth])
    if batch == 0 { return y }
    let chunk = convolutionChunk(g, batch: batch)
    var col = [Float](unsafeUninitializedCapacity: K * chunk * ohw) { _, c in c = K * chunk * ohw }
    var yc = [Float](unsafeUninitializedCapacity: cout * chunk * ohw) { _, c in c = cout * chunk * ohw }
    let biasData = bias?.data
    x.data.withUnsafeBufferPointer { px in
    weight.data.withUnsafeBufferPointer { pw in
    col.withUnsafeMutableBufferPointer { pcol in
    yc.withUnsafeMutableBufferPointer { pyc in
    y.data.withUnsafeMutableBufferPointer { py in
        var first = 0
        while first < batch {
            let count = min(chunk, batch - first)
            let P = count * ohw
            fillColumns(px.baseAddress!, g, first: first, chunk: count, pcol.baseAddress!)
            // Y'(Cout, P) = W(Cout, K) · col(K, P)
            gemm(m: cout, n: P, k: K, a: pw.baseAddress!, lda: K, b: pcol.baseAddress!, ldb: P,
                 c: pyc.baseAddress!, ldc: P)
            // y[first + n, co, :] = Y'[co, n·OHW ..< (n+1)·OHW] + bias[co]
            let yBase = py.baseAddress! + first * cout * ohw
            let ycBase = pyc.baseAddress!
            Parallel.forEach(count, costPerItem: cout * ohw) { range in
                for n in range {
                    for co in 0..<cout {
                        let src = ycBase + co * P + n * ohw
                        let dst = yBase + (n * cout + co) * ohw
                        let b = biasData?[co] ?? 0
                        for j in 0..<ohw { dst[j] = src[j] + b }
                    }
                }
            }
            first += count
        }
    }}}}}
    return y
}

/// Gradients of y = conv(x, weight) + b given dL/dy, the fast path. The column matrix is recomputed
/// from x rather than kept from the forward pass.
public func convolution2dBackward(_ x: Tensor, weight: Tensor, outputGradient dy: Tensor,
                                  options: Convolution2dOptions = .init(),
                                  computeInputGradient: Bool = true) -> Convolution2dGradients {
    let g = convolutionGeometry(x, weight, options)
    let batch = x.shape[0], cout = weight.shape[0]
    precondition(dy.shape == [batch, cout, g.outHeight, g.outWidth],
                 "conv2d backward: output gradient \(dy.shape) does not match output shape \([batch, cout, g.outHeight, g.outWidth]) of input \(x.shape), weight \(weight.shape)")
    let K = g.colRows, ohw = g.colCols
    let imageSize = g.channels * g.height * g.width
    var dW = Tensor.zeros(weight.shape)
    var dB = Tensor.zeros([cout])
    var dxStorage = [Float](repeating: 0, count: computeInputGradient ? x.count : 0)
    if batch == 0 {
        return Convolution2dGradients(input: computeInputGradient ? Tensor.zeros(x.shape) : nil, weight: dW, bias: dB)
    }
    let chunk = convolutionChunk(g, batch: batch)
    var col = [Float](unsafeUninitializedCapacity: K * chunk * ohw) { _, c in c = K * chunk * ohw }
    var dyc = [Float](unsafeUninitializedCapacity: cout * chunk * ohw) { _, c in c = cout * chunk * ohw }
    x.data.withUnsafeBufferPointer { px in
    weight.data.withUnsafeBufferPointer { pw in
    dy.data.withUnsafeBufferPointer { pdy in
    col.withUnsafeMutableBufferPointer { pcol in
    dyc.withUnsafeMutableBufferPointer { pdyc in
    dW.data.withUnsafeMutableBufferPointer { pdw in
    dB.data.withUnsafeMutableBufferPointer { pdb in
    dxStorage.withUnsafeMutableBufferPointer { pdx in
        var first = 0
        while first < batch {
            let count = min(chunk, batch - first)
            let P = count * ohw
            // dY'[co, n·OHW + j] = dy[first + n, co, j]
            let dyBase = pdy.baseAddress! + first * cout * ohw
            let dycBase = pdyc.baseAddress!
            Parallel.forEach(count, costPerItem: cout * ohw) { range in
                for n in range {
                    for co in 0..<cout {
                        let src = dyBase + (n * cout + co) * ohw
                        let dst = dycBase + co * P + n * ohw
                        for j in 0..<ohw { dst[j] = src[j] }
                    }
                }
            }
            // db[co] += Σ_j dY'[co, j]
            for co in 0..<cout {
                let row = dycBase + co * P
                var acc = SIMD8<Float>()
                var j = 0
                while j + 8 <= P {
                    acc += UnsafeRawPointer(row + j).loadUnaligned(as: SIMD8<Float>.self)
                    j += 8
                }
                var s = Double(acc.sum())
                while j < P { s += Double(row[j]); j += 1 }
                pdb[co] += Float(s)
            }
            fillColumns(px.baseAddress!, g, first: first, chunk: count, pcol.baseAddress!)
            // dW(Cout, K) += dY'(Cout, P) · colᵀ(P, K)
            gemm(transB: true, m: cout, n: K, k: P, a: dycBase, lda: P, b: pcol.baseAddress!, ldb: P,
                 beta: 1, c: pdw.baseAddress!, ldc: K)
            if computeInputGradient {
                // dcol(K, P) = Wᵀ(K, Cout) · dY'(Cout, P), written over col
                gemm(transA: true, m: K, n: P, k: cout, a: pw.baseAddress!, lda: K, b: dycBase, ldb: P,
                     c: pcol.baseAddress!, ldc: P)
                let dxBase = pdx.baseAddress! + first * imageSize
                let colBase = UnsafePointer(pcol.baseAddress!)
                Parallel.forEach(count, costPerItem: K * ohw) { range in
                    for n in range {
                        col2im(colBase, g, dxBase + n * imageSize, colOffset: n * ohw, ldc: P)
                    }
                }
            }
            first += count
        }
    }}}}}}}}
    let dX = computeInputGradient ? Tensor(shape: x.shape, data: dxStorage) : nil
    return Convolution2dGradients(input: dX, weight: dW, bias: dB)
}

// MARK: - Slow reference

/// y = conv(x, weight) + bias by direct summation in Double. For tests only.
public func convolution2dReference(_ x: Tensor, weight: Tensor, bias: Tensor? = nil,
                                   options: Convolution2dOptions = .init()) -> Tensor {
    let g = convolutionGeometry(x, weight, options)
    let batch = x.shape[0], cout = weight.shape[0], cin = g.channels, k = g.kernelH
    let oh = g.outHeight, ow = g.outWidth, s = options.stride, p = options.padding
    var y = Tensor.zeros([batch, cout, oh, ow])
    // y[n, co, a, b] = bias[co] + Σ_{ci, i, j} x[n, ci, a·s + i − p, b·s + j − p] · w[co, ci, i, j]
    for n in 0..<batch { for co in 0..<cout { for a in 0..<oh { for b in 0..<ow {
        var acc = Double(bias?.data[co] ?? 0)
        for ci in 0..<cin { for i in 0..<k { for j in 0..<k {
            let h = a * s + i - p, w = b * s + j - p
            if h < 0 || h >= g.height || w < 0 || w >= g.width { continue }
            acc += Double(x.data[x.offset(n, ci, h, w)]) * Double(weight.data[weight.offset(co, ci, i, j)])
        } } }
        y.data[y.offset(n, co, a, b)] = Float(acc)
    } } } }
    return y
}

/// Gradients of the reference convolution by direct summation in Double. For tests only.
public func convolution2dReferenceBackward(_ x: Tensor, weight: Tensor, outputGradient dy: Tensor,
                                           options: Convolution2dOptions = .init()) -> Convolution2dGradients {
    let g = convolutionGeometry(x, weight, options)
    let batch = x.shape[0], cout = weight.shape[0], cin = g.channels, k = g.kernelH
    let oh = g.outHeight, ow = g.outWidth, s = options.stride, p = options.padding
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
            if h < 0 || h >= g.height || w < 0 || w >= g.width { continue }
            let xi = x.offset(n, ci, h, w), wi = weight.offset(co, ci, i, j)
            dx[xi] += d * Double(weight.data[wi])
            dw[wi] += d * Double(x.data[xi])
        } } }
    } } } }
    return Convolution2dGradients(input: Tensor(shape: x.shape, data: dx.map { Float($0) }),
                                  weight: Tensor(shape: weight.shape, data: dw.map { Float($0) }),
                                  bias: Tensor(shape: [cout], data: db.map { Float($0) }))
}
