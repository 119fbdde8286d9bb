// 2-D convolution on NCHW tensors: fast im2col + GEMM paths (the slow direct reference the tests
// check them against is convolution2dReference in Tests/ReferenceKernels).
//
// Shapes: x is (N, Cin, H, W), weight is (Cout, Cin, k, k), y is (N, Cout, OH, OW) with
// OH = (H + 2p − k)/s + 1. The fast paths lay the patches of a group of images side by side in a
// column matrix col (K = Cin·k·k rows, P = images·OH·OW columns) so each pass over the group is a
// single GEMM:
//   forward   Y'(Cout, P) = W(Cout, K) · col(K, P)            then Y' is transposed back to NCHW (+ bias)
//   weight    dW(Cout, K) += dY'(Cout, P) · colᵀ(P, K)        (col recomputed from x, not stored)
//   input     dcol(K, P)  = Wᵀ(K, Cout) · dY'(Cout, P)        then col2im (the adjoint of im2col)
// The column matrix lives only inside one call, so what a layer keeps for backward is its input.
//
// Two ways to group the images (`Convolution.strategy`):
//   .batched         the whole batch in one column matrix and ONE GEMM per pass, OpenBLAS threading
//                    the GEMM and Parallel.forEach threading im2col/col2im and the transposes over
//                    images. Splits into chunks only when the matrix would exceed `columnBudget`.
//   .parallelChunks  (default) each Parallel.forEach worker takes a contiguous range of images and
//                    runs im2col → GEMM → transpose on chunks small enough for its L2 cache
//                    (`chunkBudget` floats), with OpenBLAS single-threaded inside; per-worker dW
//                    partials are summed in a fixed order, so results do not depend on timing.
//                    On the 2-core machine this is ~1.5–2× faster than .batched (whose 28 MB column
//                    matrices for a batch of 64 at 28×28 stream through memory three times per conv,
//                    and whose idle OpenBLAS threads spin in sched_yield while im2col runs); see
//                    docs/numerics.md for the measurements.
// Both are tested against that reference. With `Backend.current == .onednn` (Backend.swift)
// both entry points hand the work to oneDNN first and come back here only when it cannot do it.

import Foundation
import Synchronization

public enum Convolution {
    public enum Strategy: String, Sendable, CaseIterable {
        case batched
        case parallelChunks
    }
    /// The three process-wide tuning settings, read once per call under one lock.
    struct Settings: Sendable {
        var strategy: Strategy = .parallelChunks
        var columnBudget: Int = 1 << 25
        var chunkBudget: Int = 1 << 17
    }
    private static let settings = Mutex(Settings())
    /// How the fast path groups images into GEMMs.
    public static var strategy: Strategy {
        get { settings.withLock { $0.strategy } }
        set { settings.withLock { $0.strategy = newValue } }
    }
    /// .batched: largest column matrix (in floats) one call may allocate before it splits the batch.
    /// 2^25 floats = 128 MiB.
    public static var columnBudget: Int {
        get { settings.withLock { $0.columnBudget } }
        set { settings.withLock { $0.columnBudget = newValue } }
    }
    /// .parallelChunks: column-matrix floats per worker and chunk (2^17 floats = 512 KiB, half an L2).
    public static var chunkBudget: Int {
        get { settings.withLock { $0.chunkBudget } }
        set { settings.withLock { $0.chunkBudget = newValue } }
    }
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
public struct Convolution2dGradients: Sendable {
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

/// Images per chunk so that a column matrix of `budget` floats holds them.
@usableFromInline
func convolutionChunk(_ g: ConvGeometry, batch: Int, budget: Int = Convolution.columnBudget) -> Int {
    let perImage = max(1, g.colRows * g.colCols)
    return max(1, min(batch, budget / perImage))
}

/// Runs `body` with OpenBLAS limited to one thread (restored afterwards), for GEMMs issued from
/// several of our own workers at once.
@inline(__always)
func withSingleThreadedBLAS<R>(_ body: () -> R) -> R {
    let saved = BLAS.threads
    if saved == 1 { return body() }
    BLAS.setThreads(1)
    defer { BLAS.setThreads(saved) }
    return body()
}

/// Scratch buffers of one worker, allocated uninitialised (every element is written before use).
private struct ConvolutionScratch {
    var col: UnsafeMutablePointer<Float>
    var out: UnsafeMutablePointer<Float>
    init(colCount: Int, outCount: Int) {
        col = .allocate(capacity: max(1, colCount))
        out = .allocate(capacity: max(1, outCount))
    }
    func free() { col.deallocate(); out.deallocate() }
}

/// Forward for images [lo, hi) of x in chunks of `chunk` images.
/// px (N, Cin, H, W), pw (Cout, K), py (N, Cout, OHW); scratch col (K, chunk·OHW), out (Cout, chunk·OHW).
@inline(__always)
private func forwardImages(_ px: UnsafePointer<Float>, _ pw: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                           _ py: UnsafeMutablePointer<Float>, _ g: ConvGeometry, cout: Int,
                           lo: Int, hi: Int, chunk: Int, _ scratch: ConvolutionScratch, parallel: Bool) {
    let K = g.colRows, ohw = g.colCols
    forEachPatchChunk(px, g, lo: lo, hi: hi, chunk: chunk, scratch, parallel: parallel) { first, count in
        let P = count * ohw
        let col = scratch.col, yc = scratch.out
        if count == 1 {
            // One image: Y'(Cout, OHW) already is its NCHW block, so the GEMM writes y directly.
            let dst = py + first * cout * ohw
            gemm(m: cout, n: P, k: K, a: pw, lda: K, b: col, ldb: P, c: dst, ldc: P)
            if let bias { for co in 0..<cout { let b = bias[co], d = dst + co * ohw; for j in 0..<ohw { d[j] += b } } }
            return
        }
        // Y'(Cout, P) = W(Cout, K) · col(K, P)
        gemm(m: cout, n: P, k: K, a: pw, lda: K, b: col, ldb: P, c: yc, ldc: P)
        // y[first + n, co, :] = Y'[co, n·OHW ..< (n+1)·OHW] + bias[co]
        Parallel.forEach(count, costPerItem: parallel ? cout * ohw : 0) { range in
            for n in range {
                for co in 0..<cout {
                    let src = yc + co * P + n * ohw
                    let dst = py + ((first + n) * cout + co) * ohw
                    let b = bias?[co] ?? 0
                    for j in 0..<ohw { dst[j] = src[j] + b }
                }
            }
        }
    }
}

/// Walks images [lo, hi) of x in chunks of at most `chunk` images; for each chunk it fills scratch.col
/// (K, count·OHW) with the chunk's patches (column block n = image first + n), then calls
/// `body(first, count)`. The loop the forward and the backward pass share.
@inline(__always)
private func forEachPatchChunk(_ px: UnsafePointer<Float>, _ g: ConvGeometry, lo: Int, hi: Int, chunk: Int,
                               _ scratch: ConvolutionScratch, parallel: Bool,
                               _ body: (_ first: Int, _ count: Int) -> Void) {
    let K = g.colRows, ohw = g.colCols
    let imageSize = g.channels * g.height * g.width
    var first = lo
    while first < hi {
        let count = min(chunk, hi - first)
        let P = count * ohw
        // col[:, n·OHW ..< (n+1)·OHW] = patches of image first + n
        Parallel.forEach(count, costPerItem: parallel ? K * ohw : 0) { range in
            for n in range { im2col(px + (first + n) * imageSize, g, scratch.col, colOffset: n * ohw, ldc: P) }
        }
        body(first, count)
        first += count
    }
}

/// Backward for images [lo, hi): accumulates dW (Cout, K) and db (Cout) into pdw/pdb and writes dx
/// for those images (pdx zeroed by the caller; nil when not wanted).
@inline(__always)
private func backwardImages(_ px: UnsafePointer<Float>, _ pw: UnsafePointer<Float>, _ pdy: UnsafePointer<Float>,
                            _ pdw: UnsafeMutablePointer<Float>, _ pdb: UnsafeMutablePointer<Float>,
                            _ pdx: UnsafeMutablePointer<Float>?, _ g: ConvGeometry, cout: Int,
                            lo: Int, hi: Int, chunk: Int, _ scratch: ConvolutionScratch, parallel: Bool) {
    let K = g.colRows, ohw = g.colCols
    let imageSize = g.channels * g.height * g.width
    // col (the chunk's patches) and scratch.out (the gathered dY') are separate buffers.
    forEachPatchChunk(px, g, lo: lo, hi: hi, chunk: chunk, scratch, parallel: parallel) { first, count in
        let P = count * ohw
        let col = scratch.col
        // dY'[co, n·OHW + j] = dy[first + n, co, j]; for one image that is dy's own block, used in place.
        let dyc: UnsafePointer<Float> = count == 1 ? pdy + first * cout * ohw : UnsafePointer(scratch.out)
        if count > 1 {
            let gathered = scratch.out
            Parallel.forEach(count, costPerItem: parallel ? cout * ohw : 0) { range in
                for n in range {
                    for co in 0..<cout {
                        let src = pdy + ((first + n) * cout + co) * ohw
                        let dst = gathered + co * P + n * ohw
                        for j in 0..<ohw { dst[j] = src[j] }
                    }
                }
            }
        }
        // db[co] += Σ_j dY'[co, j]
        for co in 0..<cout {
            let row = dyc + co * P
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
        // dW(Cout, K) += dY'(Cout, P) · colᵀ(P, K)
        gemm(transB: true, m: cout, n: K, k: P, a: dyc, lda: P, b: col, ldb: P, beta: 1, c: pdw, ldc: K)
        if let pdx {
            // dcol(K, P) = Wᵀ(K, Cout) · dY'(Cout, P), written over col; then scattered back per image
            gemm(transA: true, m: K, n: P, k: cout, a: pw, lda: K, b: dyc, ldb: P, c: col, ldc: P)
            Parallel.forEach(count, costPerItem: parallel ? K * ohw : 0) { range in
                for n in range { col2imConsuming(col, g, pdx + (first + n) * imageSize, colOffset: n * ohw, ldc: P) }
            }
        }
    }
}

/// col2im for scratch columns that may be overwritten: for "same" stride-1 convolutions it zeroes the
/// taps that fall into the padding and then adds each tap's block to the image as ONE contiguous run
/// (the zeroed taps are exactly the ones that would wrap across rows). Otherwise it defers to col2im.
@inline(__always)
func col2imConsuming(_ col: UnsafeMutablePointer<Float>, _ g: ConvGeometry, _ dx: UnsafeMutablePointer<Float>,
                     colOffset: Int, ldc: Int) {
    let oh = g.outHeight, ow = g.outWidth, H = g.height, W = g.width
    guard g.strideH == 1 && g.strideW == 1 && ow == W else {
        col2im(col, g, dx, colOffset: colOffset, ldc: ldc)
        return
    }
    for c in 0..<g.channels {
        let xc = dx + c * H * W
        for i in 0..<g.kernelH {
            // output rows whose input row y + i − ph lies inside the image: [yLo, yHi)
            let yLo = max(0, g.padH - i), yHi = min(oh, H + g.padH - i)
            if yLo >= yHi { continue }
            for j in 0..<g.kernelW {
                let lo = max(0, g.padW - j), hi = min(ow, W + g.padW - j)
                if lo >= hi { continue }
                let src = col + ((c * g.kernelH + i) * g.kernelW + j) * ldc + colOffset
                if lo > 0 || hi < ow {
                    for y in yLo..<yHi {
                        let s = src + y * ow
                        for x0 in 0..<lo { s[x0] = 0 }
                        for x0 in hi..<ow { s[x0] = 0 }
                    }
                }
                // dx[(y + i − ph)·W + x0 + j − pw] += col[y·ow + x0] over the contiguous run
                let first = yLo * ow + lo, last = (yHi - 1) * ow + hi
                let s = src + first, d = xc + (yLo + i - g.padH) * W + lo + j - g.padW
                for k in 0..<(last - first) { d[k] += s[k] }
            }
        }
    }
}

/// A lock-protected list of per-worker results, summed in the order of their first image.
private final class PartialSums: Sendable {
    private let parts = Mutex<[(Int, [Float])]>([])
    func add(_ first: Int, _ values: [Float]) { parts.withLock { $0.append((first, values)) } }
    /// Σ parts in ascending `first` order into `out`.
    func sum(into out: UnsafeMutablePointer<Float>, count: Int) {
        let sorted = parts.withLock { $0.sorted(by: { $0.0 < $1.0 }) }
        for (_, v) in sorted { for i in 0..<count { out[i] += v[i] } }
    }
}

/// y = conv(x, weight) + bias, the fast path. x (N, Cin, H, W), weight (Cout, Cin, k, k), bias (Cout).
/// x is in `layout`, y in `outputLayout` (the same unless given; a blocked layout needs the channel
/// count a multiple of its block); a blocked convolution that oneDNN cannot run is computed plain and
/// reordered.
public func convolution2d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil,
                          options: Convolution2dOptions = .init(), layout: ActivationLayout = .plain,
                          outputLayout: ActivationLayout? = nil) -> Tensor {
    let outputLayout = outputLayout ?? layout
    TensorMemory.retainFreedMemory()
    let g = convolutionGeometry(x, weight, options)
    let batch = x.shape[0], cout = weight.shape[0]
    if let b = bias { precondition(b.count == cout, "conv2d bias has \(b.count) elements, expected \(cout)") }
    let K = g.colRows, ohw = g.colCols
    var y = Tensor(uninitializedShape: [batch, cout, g.outHeight, g.outWidth])
    if batch == 0 { return y }
    if Backend.current == .onednn,
       let fast = OneDNNConvolution.forward(x, weight: weight, bias: bias, options: options, outputShape: y.shape,
                                            layout: layout, outputLayout: outputLayout) {
        return fast
    }
    if layout != .plain || outputLayout != .plain {
        return convolution2d(x.reordered(from: layout, to: .plain), weight: weight, bias: bias, options: options)
            .reordered(from: .plain, to: outputLayout)
    }
    let strategy = Convolution.strategy
    x.data.withUnsafeBufferPointer { px in
    weight.data.withUnsafeBufferPointer { pw in
    y.data.withUnsafeMutableBufferPointer { py in
    func run(_ pb: UnsafePointer<Float>?) {
        switch strategy {
        case .batched:
            let chunk = convolutionChunk(g, batch: batch)
            let scratch = ConvolutionScratch(colCount: K * chunk * ohw, outCount: cout * chunk * ohw)
            defer { scratch.free() }
            forwardImages(px.baseAddress!, pw.baseAddress!, pb, py.baseAddress!, g, cout: cout,
                          lo: 0, hi: batch, chunk: chunk, scratch, parallel: true)
        case .parallelChunks:
            // Chunks are fixed by the batch alone (not by the worker split), so y does not depend on
            // the number of threads.
            let chunk = convolutionChunk(g, batch: batch, budget: Convolution.chunkBudget)
            let chunks = (batch + chunk - 1) / chunk
            withSingleThreadedBLAS {
                Parallel.forEach(chunks, costPerItem: 2 * cout * K * ohw * chunk) { range in
                    let scratch = ConvolutionScratch(colCount: K * chunk * ohw, outCount: cout * chunk * ohw)
                    defer { scratch.free() }
                    forwardImages(px.baseAddress!, pw.baseAddress!, pb, py.baseAddress!, g, cout: cout,
                                  lo: range.lowerBound * chunk, hi: min(batch, range.upperBound * chunk),
                                  chunk: chunk, scratch, parallel: false)
                }
            }
        }
    }
    if let b = bias { b.data.withUnsafeBufferPointer { run($0.baseAddress!) } } else { run(nil) }
    }}}
    return y
}

/// Gradients of y = conv(x, weight) + b given dL/dy, the fast path. The column matrix is recomputed
/// from x rather than kept from the forward pass. x and dx are in `layout`, dy in `outputLayout` (the
/// same unless given).
public func convolution2dBackward(_ x: Tensor, weight: Tensor, outputGradient dy: Tensor,
                                  options: Convolution2dOptions = .init(),
                                  computeInputGradient: Bool = true,
                                  layout: ActivationLayout = .plain,
                                  outputLayout: ActivationLayout? = nil) -> Convolution2dGradients {
    let outputLayout = outputLayout ?? layout
    TensorMemory.retainFreedMemory()
    let g = convolutionGeometry(x, weight, options)
    let batch = x.shape[0], cout = weight.shape[0]
    precondition(dy.shape == [batch, cout, g.outHeight, g.outWidth],
                 "conv2d backward: output gradient \(dy.shape) does not match output shape \([batch, cout, g.outHeight, g.outWidth]) of input \(x.shape), weight \(weight.shape)")
    if batch > 0 && Backend.current == .onednn,
       let fast = OneDNNConvolution.backward(x, weight: weight, outputGradient: dy, options: options,
                                             computeInputGradient: computeInputGradient, layout: layout,
                                             outputLayout: outputLayout) {
        return fast
    }
    if layout != .plain || outputLayout != .plain {
        var g = convolution2dBackward(x.reordered(from: layout, to: .plain), weight: weight,
                                      outputGradient: dy.reordered(from: outputLayout, to: .plain), options: options,
                                      computeInputGradient: computeInputGradient)
        g.input = g.input?.reordered(from: .plain, to: layout)
        return g
    }
    let K = g.colRows, ohw = g.colCols
    var dW = Tensor.zeros(weight.shape)
    var dB = Tensor.zeros([cout])
    var dxStorage = [Float](repeating: 0, count: computeInputGradient ? x.count : 0)
    if batch == 0 {
        return Convolution2dGradients(input: computeInputGradient ? Tensor.zeros(x.shape) : nil, weight: dW, bias: dB)
    }
    let strategy = Convolution.strategy
    x.data.withUnsafeBufferPointer { px in
    weight.data.withUnsafeBufferPointer { pw in
    dy.data.withUnsafeBufferPointer { pdy in
    dW.data.withUnsafeMutableBufferPointer { pdw in
    dB.data.withUnsafeMutableBufferPointer { pdb in
    dxStorage.withUnsafeMutableBufferPointer { pdx in
        let dxBase = computeInputGradient ? pdx.baseAddress! : nil
        switch strategy {
        case .batched:
            let chunk = convolutionChunk(g, batch: batch)
            let scratch = ConvolutionScratch(colCount: K * chunk * ohw, outCount: cout * chunk * ohw)
            defer { scratch.free() }
            backwardImages(px.baseAddress!, pw.baseAddress!, pdy.baseAddress!, pdw.baseAddress!, pdb.baseAddress!,
                           dxBase, g, cout: cout, lo: 0, hi: batch, chunk: chunk, scratch, parallel: true)
        case .parallelChunks:
            // Each worker sums its own dW and db; the parts are added in image order afterwards.
            // dx does not depend on the number of threads; dW and db do in their last bits (the
            // workers' partial sums split the batch differently), but are fixed for a given count.
            let partials = PartialSums()
            let chunk = convolutionChunk(g, batch: batch, budget: Convolution.chunkBudget)
            let chunks = (batch + chunk - 1) / chunk
            withSingleThreadedBLAS {
                Parallel.forEach(chunks, costPerItem: 4 * cout * K * ohw * chunk) { range in
                    let lo = range.lowerBound * chunk, hi = min(batch, range.upperBound * chunk)
                    let scratch = ConvolutionScratch(colCount: K * chunk * ohw, outCount: cout * chunk * ohw)
                    defer { scratch.free() }
                    var part = [Float](repeating: 0, count: cout * K + cout)
                    part.withUnsafeMutableBufferPointer { pp in
                        backwardImages(px.baseAddress!, pw.baseAddress!, pdy.baseAddress!, pp.baseAddress!,
                                       pp.baseAddress! + cout * K, dxBase, g, cout: cout,
                                       lo: lo, hi: hi, chunk: chunk, scratch, parallel: false)
                    }
                    partials.add(lo, part)
                }
            }
            var total = [Float](repeating: 0, count: cout * K + cout)
            total.withUnsafeMutableBufferPointer { partials.sum(into: $0.baseAddress!, count: cout * K + cout) }
            for i in 0..<(cout * K) { pdw[i] = total[i] }
            for i in 0..<cout { pdb[i] = total[cout * K + i] }
        }
    }}}}}}
    let dX = computeInputGradient ? Tensor(shape: x.shape, data: dxStorage) : nil
    return Convolution2dGradients(input: dX, weight: dW, bias: dB)
}
