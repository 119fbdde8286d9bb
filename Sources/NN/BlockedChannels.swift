// Per-channel kernels over an (N, C, H, W) tensor held in oneDNN's blocked layout nChw{b}c
// (TensorCore/ActivationLayout.swift): BatchNorm2d's statistics, affine map and input gradient, and
// global average pooling, on the tensors the residual stages keep blocked (docs/backends.md,
// "Blocked activations"). In that layout one pixel's b channels are adjacent, so each kernel works on
// whole b-lane vectors: the b channels of a block are b SIMD lanes.
//
// Sums: each image row (W pixels) is summed in Float lanes, rows are added in Double, as the plain
// kernels sum each (image, channel) run in Float lanes and add runs in Double: the error stays far
// below the tolerances the numerics tests use, whichever layout computed it.
import TensorCore

/// A tensor's geometry in nChw{b}c: n images, `blocks` channel blocks of b lanes, `rows` × `width` pixels.
struct BlockedGeometry {
    let n, blocks, rows, width, lanes: Int
    var pixels: Int { rows * width }
    var channels: Int { blocks * lanes }

    init(_ shape: [Int], _ layout: ActivationLayout) {
        precondition(shape.count == 4 && layout.block > 0 && shape[1] % layout.block == 0,
                     "blocked kernels need (N, C, H, W) with C a multiple of the block: \(shape), \(layout)")
        n = shape[0]; blocks = shape[1] / layout.block; rows = shape[2]; width = shape[3]; lanes = layout.block
    }

    /// Offset of the first element of image i, channel block cb.
    func base(_ i: Int, _ cb: Int) -> Int { (i * blocks + cb) * pixels * lanes }
}

/// Runs `body` with the SIMD vector type of `lanes` Float lanes (the layouts oneDNN uses: 8 or 16).
@inline(__always)
private func withLaneVector<R>(_ lanes: Int, _ body16: () -> R, _ body8: () -> R) -> R {
    switch lanes {
    case 16: return body16()
    case 8: return body8()
    default: preconditionFailure("no SIMD kernel for a channel block of \(lanes)")
    }
}

enum BlockedChannels {
    /// Σ x over (N, H, W) of each channel, or Σ (x − center[c])² when `center` is given.
    static func sums(_ x: Tensor, _ g: BlockedGeometry, center: [Float]?) -> [Double] {
        withLaneVector(g.lanes, { sums(x, g, center: center, SIMD16<Float>.self) },
                       { sums(x, g, center: center, SIMD8<Float>.self) })
    }

    private static func sums<V: SIMD>(_ x: Tensor, _ g: BlockedGeometry, center: [Float]?, _: V.Type) -> [Double]
    where V.Scalar == Float {
        var out = [Double](repeating: 0, count: g.channels)
        x.data.withUnsafeBufferPointer { px in
        out.withUnsafeMutableBufferPointer { po in
            Parallel.forEach(g.blocks, costPerItem: 2 * g.n * g.pixels * g.lanes) { range in
                for cb in range {
                    var mu = V()
                    if let center { for l in 0..<g.lanes { mu[l] = center[cb * g.lanes + l] } }
                    var total = [Double](repeating: 0, count: g.lanes)
                    for i in 0..<g.n {
                        let p = UnsafeRawPointer(px.baseAddress! + g.base(i, cb))
                        for r in 0..<g.rows {
                            var acc = V()
                            for w in 0..<g.width {
                                let v = p.loadUnaligned(fromByteOffset: (r * g.width + w) * g.lanes * 4, as: V.self)
                                if center != nil { let d = v - mu; acc += d * d } else { acc += v }
                            }
                            for l in 0..<g.lanes { total[l] += Double(acc[l]) }
                        }
                    }
                    for l in 0..<g.lanes { po[cb * g.lanes + l] = total[l] }
                }
            }
        }}
        return out
    }

    /// y = scale[c]·x + shift[c].
    static func affine(_ x: Tensor, _ g: BlockedGeometry, scale: [Float], shift: [Float]) -> Tensor {
        withLaneVector(g.lanes, { affine(x, g, scale, shift, SIMD16<Float>.self) },
                       { affine(x, g, scale, shift, SIMD8<Float>.self) })
    }

    private static func affine<V: SIMD>(_ x: Tensor, _ g: BlockedGeometry, _ scale: [Float], _ shift: [Float],
                                        _: V.Type) -> Tensor where V.Scalar == Float {
        var y = Tensor(uninitializedShape: x.shape)
        x.data.withUnsafeBufferPointer { px in
        y.data.withUnsafeMutableBufferPointer { py in
            Parallel.forEach(g.n * g.blocks, costPerItem: 2 * g.pixels * g.lanes) { range in
                for item in range {
                    let i = item / g.blocks, cb = item % g.blocks
                    let a = lanes(scale, cb, V.self), b = lanes(shift, cb, V.self)
                    let s = UnsafeRawPointer(px.baseAddress! + g.base(i, cb))
                    let d = UnsafeMutableRawPointer(py.baseAddress! + g.base(i, cb))
                    for p in 0..<g.pixels {
                        let off = p * g.lanes * 4
                        d.storeBytes(of: a * s.loadUnaligned(fromByteOffset: off, as: V.self) + b, toByteOffset: off, as: V.self)
                    }
                }
            }
        }}
        return y
    }

    /// (Σ dy, Σ dy·(x − mean[c])) per channel over (N, H, W).
    static func gradientSums(_ dy: Tensor, _ x: Tensor, _ g: BlockedGeometry, mean: [Float]) -> (dy: [Double], dyCentered: [Double]) {
        withLaneVector(g.lanes, { gradientSums(dy, x, g, mean, SIMD16<Float>.self) },
                       { gradientSums(dy, x, g, mean, SIMD8<Float>.self) })
    }

    private static func gradientSums<V: SIMD>(_ dy: Tensor, _ x: Tensor, _ g: BlockedGeometry, _ mean: [Float],
                                              _: V.Type) -> (dy: [Double], dyCentered: [Double]) where V.Scalar == Float {
        var sumDy = [Double](repeating: 0, count: g.channels), sumDyX = [Double](repeating: 0, count: g.channels)
        x.data.withUnsafeBufferPointer { px in
        dy.data.withUnsafeBufferPointer { pdy in
        sumDy.withUnsafeMutableBufferPointer { ps in
        sumDyX.withUnsafeMutableBufferPointer { psx in
            Parallel.forEach(g.blocks, costPerItem: 3 * g.n * g.pixels * g.lanes) { range in
                for cb in range {
                    let mu = lanes(mean, cb, V.self)
                    var t1 = [Double](repeating: 0, count: g.lanes), t2 = [Double](repeating: 0, count: g.lanes)
                    for i in 0..<g.n {
                        let xs = UnsafeRawPointer(px.baseAddress! + g.base(i, cb))
                        let ds = UnsafeRawPointer(pdy.baseAddress! + g.base(i, cb))
                        for r in 0..<g.rows {
                            var a = V(), b = V()
                            for w in 0..<g.width {
                                let off = (r * g.width + w) * g.lanes * 4
                                let d = ds.loadUnaligned(fromByteOffset: off, as: V.self)
                                a += d
                                b += d * (xs.loadUnaligned(fromByteOffset: off, as: V.self) - mu)
                            }
                            for l in 0..<g.lanes { t1[l] += Double(a[l]); t2[l] += Double(b[l]) }
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
        withLaneVector(g.lanes, { inputGradient(dy, x, g, a, b, k, SIMD16<Float>.self) },
                       { inputGradient(dy, x, g, a, b, k, SIMD8<Float>.self) })
    }

    private static func inputGradient<V: SIMD>(_ dy: Tensor, _ x: Tensor, _ g: BlockedGeometry, _ a: [Float],
                                               _ b: [Float], _ k: [Float], _: V.Type) -> Tensor where V.Scalar == Float {
        var dx = Tensor(uninitializedShape: x.shape)
        x.data.withUnsafeBufferPointer { px in
        dy.data.withUnsafeBufferPointer { pdy in
        dx.data.withUnsafeMutableBufferPointer { pdx in
            Parallel.forEach(g.n * g.blocks, costPerItem: 3 * g.pixels * g.lanes) { range in
                for item in range {
                    let i = item / g.blocks, cb = item % g.blocks
                    let va = lanes(a, cb, V.self), vb = lanes(b, cb, V.self), vk = lanes(k, cb, V.self)
                    let xs = UnsafeRawPointer(px.baseAddress! + g.base(i, cb))
                    let ds = UnsafeRawPointer(pdy.baseAddress! + g.base(i, cb))
                    let out = UnsafeMutableRawPointer(pdx.baseAddress! + g.base(i, cb))
                    for p in 0..<g.pixels {
                        let off = p * g.lanes * 4
                        let v = va * ds.loadUnaligned(fromByteOffset: off, as: V.self)
                            + vb * xs.loadUnaligned(fromByteOffset: off, as: V.self) + vk
                        out.storeBytes(of: v, toByteOffset: off, as: V.self)
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
            for i in 0..<g.n {
                for cb in 0..<g.blocks {
                    let d = pdx.baseAddress! + g.base(i, cb)
                    for p in 0..<g.pixels {
                        for l in 0..<g.lanes { d[p * g.lanes + l] = pdy[i * g.channels + cb * g.lanes + l] / Float(g.pixels) }
                    }
                }
            }
        }}
        return dx
    }

    /// The b values of `values` for channel block cb as one vector.
    @inline(__always)
    private static func lanes<V: SIMD>(_ values: [Float], _ cb: Int, _: V.Type) -> V where V.Scalar == Float {
        var v = V()
        for l in 0..<V.scalarCount { v[l] = values[cb * V.scalarCount + l] }
        return v
    }
}
