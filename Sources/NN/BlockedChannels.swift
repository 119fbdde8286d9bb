// Per-channel kernels over an (N, C, H, W) tensor held in oneDNN's blocked layout nChw{b}c
// (TensorCore/ActivationLayout.swift): BatchNorm2d's statistics, affine map and input gradient, and
// global average pooling, on the tensors the residual stages keep blocked (docs/backends.md,
// "Blocked activations"). In that layout one pixel's b channels are adjacent, so each kernel works on
// 16-float vectors whose lanes are channels.
//
// Sums: at most 64 vectors (1,024 values) are summed in Float lanes before they are added in Double,
// as the plain kernels sum each (image, channel) run in Float lanes and add runs in Double: the error
// stays far below the tolerances the numerics tests use, whichever layout computed it.
import TensorCore

/// A tensor's geometry in nChw{b}c: n images, `blocks` channel blocks of b lanes, `rows` × `width` pixels.
struct BlockedGeometry {
    let n, blocks, rows, width, lanes: Int
    var pixels: Int { rows * width }
    var channels: Int { blocks * lanes }

    init(_ shape: [Int], _ layout: ActivationLayout) {
        precondition(shape.count == 4 && layout.block > 0 && 16 % layout.block == 0 && shape[1] % layout.block == 0,
                     "blocked kernels need (N, C, H, W) with C a multiple of the block: \(shape), \(layout)")
        n = shape[0]; blocks = shape[1] / layout.block; rows = shape[2]; width = shape[3]; lanes = layout.block
    }

    /// Offset of the first element of image i, channel block cb.
    func base(_ i: Int, _ cb: Int) -> Int { (i * blocks + cb) * pixels * lanes }
}

/// The per-channel values of channel block cb as a 16-lane pattern: lane k holds the value of channel
/// cb·b + (k mod b), so with b = 8 one vector covers two pixels.
@inline(__always)
private func pattern(_ values: [Float], _ cb: Int, _ lanes: Int) -> SIMD16<Float> {
    var v = SIMD16<Float>()
    for k in 0..<16 { v[k] = values[cb * lanes + k % lanes] }
    return v
}

/// Vectors summed in Float before they are added into the Double totals (64 vectors: 1,024 values).
private let flushEvery = 64

/// Adds the 16 lanes of `acc` into the per-channel `totals` (lane k belongs to channel k mod b).
@inline(__always)
private func flush(_ acc: inout SIMD16<Float>, into totals: inout [Double], lanes: Int) {
    for k in 0..<16 { totals[k % lanes] += Double(acc[k]) }
    acc = SIMD16<Float>()
}

enum BlockedChannels {
    // Each kernel walks the slab of one (image, channel block): pixels·b contiguous floats, 16 at a
    // time (one pixel of a 16-block, or two of an 8-block), with the per-channel values as 16-lane
    // patterns; an 8-block with an odd pixel count leaves 8 floats for a scalar tail.

    /// Σ x over (N, H, W) of each channel, or Σ (x − center[c])² when `center` is given.
    static func sums(_ x: Tensor, _ g: BlockedGeometry, center: [Float]?) -> [Double] {
        var out = [Double](repeating: 0, count: g.channels)
        let slab = g.pixels * g.lanes, vectors = slab / 16
        x.data.withUnsafeBufferPointer { px in
        out.withUnsafeMutableBufferPointer { po in
            Parallel.forEach(g.blocks, costPerItem: 2 * g.n * slab) { range in
                for cb in range {
                    let mu = center.map { pattern($0, cb, g.lanes) } ?? SIMD16<Float>()
                    var totals = [Double](repeating: 0, count: g.lanes)
                    for i in 0..<g.n {
                        let p = px.baseAddress! + g.base(i, cb)
                        let raw = UnsafeRawPointer(p)
                        var acc = SIMD16<Float>()
                        for j in 0..<vectors {
                            let v = raw.loadUnaligned(fromByteOffset: j * 64, as: SIMD16<Float>.self)
                            if center != nil { let d = v - mu; acc += d * d } else { acc += v }
                            if (j + 1) % flushEvery == 0 { flush(&acc, into: &totals, lanes: g.lanes) }
                        }
                        flush(&acc, into: &totals, lanes: g.lanes)
                        for k in (vectors * 16)..<slab {
                            let v = p[k], l = k % g.lanes
                            if let center { let d = v - center[cb * g.lanes + l]; totals[l] += Double(d * d) } else { totals[l] += Double(v) }
                        }
                    }
                    for l in 0..<g.lanes { po[cb * g.lanes + l] = totals[l] }
                }
            }
        }}
        return out
    }

    /// y = scale[c]·x + shift[c], then + residual and max(·, 0) when asked (BatchNorm's epilogue; NaN
    /// passes through the max, as in ReLU's kernel).
    static func affine(_ x: Tensor, _ g: BlockedGeometry, scale: [Float], shift: [Float], residual: Tensor? = nil,
                       relu: Bool = false) -> Tensor {
        var y = Tensor(uninitializedShape: x.shape)
        let slab = g.pixels * g.lanes, vectors = slab / 16
        let empty: [Float] = []
        let clamp = relu || residual != nil
        x.data.withUnsafeBufferPointer { px in
        (residual?.data ?? empty).withUnsafeBufferPointer { pr in
        y.data.withUnsafeMutableBufferPointer { py in
            Parallel.forEach(g.n * g.blocks, costPerItem: 2 * slab) { range in
                let zero = SIMD16<Float>()
                for item in range {
                    let i = item / g.blocks, cb = item % g.blocks
                    let a = pattern(scale, cb, g.lanes), b = pattern(shift, cb, g.lanes)
                    let s = px.baseAddress! + g.base(i, cb), d = py.baseAddress! + g.base(i, cb)
                    let r: UnsafePointer<Float>? = residual != nil ? pr.baseAddress! + g.base(i, cb) : nil
                    for j in 0..<vectors {
                        var v = a * UnsafeRawPointer(s).loadUnaligned(fromByteOffset: j * 64, as: SIMD16<Float>.self) + b
                        if let r { v += UnsafeRawPointer(r).loadUnaligned(fromByteOffset: j * 64, as: SIMD16<Float>.self) }
                        if clamp { v = v.replacing(with: 0, where: v .< zero) }
                        UnsafeMutableRawPointer(d).storeBytes(of: v, toByteOffset: j * 64, as: SIMD16<Float>.self)
                    }
                    for k in (vectors * 16)..<slab {
                        let c = cb * g.lanes + k % g.lanes
                        var v = scale[c] * s[k] + shift[c]
                        if let r { v += r[k] }
                        d[k] = clamp && v < 0 ? 0 : v
                    }
                }
            }
        }}}
        return y
    }

    /// (Σ dy, Σ dy·(x − mean[c])) per channel over (N, H, W).
    static func gradientSums(_ dy: Tensor, _ x: Tensor, _ g: BlockedGeometry, mean: [Float]) -> (dy: [Double], dyCentered: [Double]) {
        var sumDy = [Double](repeating: 0, count: g.channels), sumDyX = [Double](repeating: 0, count: g.channels)
        let slab = g.pixels * g.lanes, vectors = slab / 16
        x.data.withUnsafeBufferPointer { px in
        dy.data.withUnsafeBufferPointer { pdy in
        sumDy.withUnsafeMutableBufferPointer { ps in
        sumDyX.withUnsafeMutableBufferPointer { psx in
            Parallel.forEach(g.blocks, costPerItem: 3 * g.n * slab) { range in
                for cb in range {
                    let mu = pattern(mean, cb, g.lanes)
                    var t1 = [Double](repeating: 0, count: g.lanes), t2 = [Double](repeating: 0, count: g.lanes)
                    for i in 0..<g.n {
                        let xs = px.baseAddress! + g.base(i, cb), ds = pdy.baseAddress! + g.base(i, cb)
                        var a = SIMD16<Float>(), b = SIMD16<Float>()
                        for j in 0..<vectors {
                            let d = UnsafeRawPointer(ds).loadUnaligned(fromByteOffset: j * 64, as: SIMD16<Float>.self)
                            a += d
                            b += d * (UnsafeRawPointer(xs).loadUnaligned(fromByteOffset: j * 64, as: SIMD16<Float>.self) - mu)
                            if (j + 1) % flushEvery == 0 {
                                flush(&a, into: &t1, lanes: g.lanes); flush(&b, into: &t2, lanes: g.lanes)
                            }
                        }
                        flush(&a, into: &t1, lanes: g.lanes); flush(&b, into: &t2, lanes: g.lanes)
                        for k in (vectors * 16)..<slab {
                            let l = k % g.lanes
                            t1[l] += Double(ds[k]); t2[l] += Double(ds[k] * (xs[k] - mean[cb * g.lanes + l]))
                        }
                    }
                    for l in 0..<g.lanes { ps[cb * g.lanes + l] = t1[l]; psx[cb * g.lanes + l] = t2[l] }
                }
            }
        }}}}
        return (sumDy, sumDyX)
    }

    /// dx = a[c]·dy + b[c]·x + k[c].
    static func inputGradient(_ dy: Tensor, _ x: Tensor, _ g: BlockedGeometry, a: [Float], b: [Float], k: [Float]) -> Tensor {
        var dx = Tensor(uninitializedShape: x.shape)
        let slab = g.pixels * g.lanes, vectors = slab / 16
        x.data.withUnsafeBufferPointer { px in
        dy.data.withUnsafeBufferPointer { pdy in
        dx.data.withUnsafeMutableBufferPointer { pdx in
            Parallel.forEach(g.n * g.blocks, costPerItem: 3 * slab) { range in
                for item in range {
                    let i = item / g.blocks, cb = item % g.blocks
                    let va = pattern(a, cb, g.lanes), vb = pattern(b, cb, g.lanes), vk = pattern(k, cb, g.lanes)
                    let xs = px.baseAddress! + g.base(i, cb), ds = pdy.baseAddress! + g.base(i, cb)
                    let out = pdx.baseAddress! + g.base(i, cb)
                    for j in 0..<vectors {
                        let v = va * UnsafeRawPointer(ds).loadUnaligned(fromByteOffset: j * 64, as: SIMD16<Float>.self)
                            + vb * UnsafeRawPointer(xs).loadUnaligned(fromByteOffset: j * 64, as: SIMD16<Float>.self) + vk
                        UnsafeMutableRawPointer(out).storeBytes(of: v, toByteOffset: j * 64, as: SIMD16<Float>.self)
                    }
                    for e in (vectors * 16)..<slab {
                        let c = cb * g.lanes + e % g.lanes
                        out[e] = a[c] * ds[e] + b[c] * xs[e] + k[c]
                    }
                }
            }
        }}}
        return dx
    }

    /// y[i, c] = mean over (H, W) of x[i, c] (global average pooling), plain (N, C) out.
    static func spatialMeans(_ x: Tensor, _ g: BlockedGeometry) -> Tensor {
        var y = Tensor(uninitializedShape: [g.n, g.channels])
        x.data.withUnsafeBufferPointer { px in
        y.data.withUnsafeMutableBufferPointer { py in
            for i in 0..<g.n {
                for cb in 0..<g.blocks {
                    let s = px.baseAddress! + g.base(i, cb)
                    for l in 0..<g.lanes {
                        var acc: Float = 0
                        for p in 0..<g.pixels { acc += s[p * g.lanes + l] }
                        py[i * g.channels + cb * g.lanes + l] = acc / Float(g.pixels)
                    }
                }
            }
        }}
        return y
    }

    /// dx[i, c, h, w] = dy[i, c] / (H·W): the adjoint of `spatialMeans`, in the blocked layout.
    static func spreadMeans(_ dy: Tensor, _ g: BlockedGeometry, shape: [Int]) -> Tensor {
        var dx = Tensor(uninitializedShape: shape)
        dy.data.withUnsafeBufferPointer { pdy in
        dx.data.withUnsafeMutableBufferPointer { pdx in
            // dy's (N, C) rows are image-major with channels in block order: the b values of slab
            // (i, cb) are consecutive, at (i·blocks + cb)·b, and every pixel of the slab gets them.
            var pixel = [Float](repeating: 0, count: g.lanes)
            for slab in 0..<(g.n * g.blocks) {
                for l in 0..<g.lanes { pixel[l] = pdy[slab * g.lanes + l] / Float(g.pixels) }
                let d = pdx.baseAddress! + slab * g.pixels * g.lanes
                for p in 0..<g.pixels { (d + p * g.lanes).update(from: pixel, count: g.lanes) }
            }
        }}
        return dx
    }
}
