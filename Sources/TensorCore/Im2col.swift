// im2col / col2im for 2-D convolution on NCHW tensors.
//
// Geometry: input x is (C, H, W) for one image; kernel (kh, kw), stride (sh, sw), padding (ph, pw);
// output is (OH, OW) with OH = (H + 2ph - kh)/sh + 1. The column matrix has C·kh·kw rows and
// `ldc` columns, of which this image fills [colOffset, colOffset + OH·OW): row r = (c·kh + i)·kw + j
// holds x[c, oh·sh + i − ph, ow·sw + j − pw] (0 outside the image). Putting several images side by
// side (colOffset = n·OH·OW, ldc = N·OH·OW) lets one GEMM cover a whole batch.

public struct ConvGeometry: Equatable, Hashable, Sendable {
    public var channels: Int, height: Int, width: Int
    public var kernelH: Int, kernelW: Int
    public var strideH: Int, strideW: Int
    public var padH: Int, padW: Int

    public init(channels: Int, height: Int, width: Int, kernelH: Int, kernelW: Int,
                strideH: Int = 1, strideW: Int = 1, padH: Int = 0, padW: Int = 0) {
        self.channels = channels; self.height = height; self.width = width
        self.kernelH = kernelH; self.kernelW = kernelW
        self.strideH = strideH; self.strideW = strideW; self.padH = padH; self.padW = padW
        precondition(outHeight > 0 && outWidth > 0,
                     "convolution of \(height)×\(width) with kernel \(kernelH)×\(kernelW), stride \(strideH), padding \(padH) has no output")
    }

    @inlinable public var outHeight: Int { (height + 2 * padH - kernelH) / strideH + 1 }
    @inlinable public var outWidth: Int { (width + 2 * padW - kernelW) / strideW + 1 }
    @inlinable public var colRows: Int { channels * kernelH * kernelW }
    @inlinable public var colCols: Int { outHeight * outWidth }
}

/// Writes the columns of one image `x` (C×H×W) into `col` at column offset `colOffset`, row stride `ldc`.
public func im2col(_ x: UnsafePointer<Float>, _ g: ConvGeometry,
                   _ col: UnsafeMutablePointer<Float>, colOffset: Int = 0, ldc: Int? = nil) {
    let oh = g.outHeight, ow = g.outWidth
    let ld = ldc ?? oh * ow
    let H = g.height, W = g.width
    // "Same" stride-1 convolutions (ow == W) map the valid part of a kernel tap's output block onto one
    // contiguous run of the input: copy it in one go, then zero the columns that wrapped across rows.
    let contiguous = g.strideH == 1 && g.strideW == 1 && ow == W
    for c in 0..<g.channels {
        let xc = x + c * H * W
        for i in 0..<g.kernelH {
            // output rows whose input row y·sh + i − ph lies inside the image: [yLo, yHi)
            var yLo = 0
            while yLo < oh && yLo * g.strideH + i - g.padH < 0 { yLo += 1 }
            var yHi = oh
            while yHi > yLo && (yHi - 1) * g.strideH + i - g.padH >= H { yHi -= 1 }
            for j in 0..<g.kernelW {
                let row = (c * g.kernelH + i) * g.kernelW + j
                let dst = col + row * ld + colOffset
                if yLo > 0 { dst.update(repeating: 0, count: yLo * ow) }
                if yHi < oh { (dst + yHi * ow).update(repeating: 0, count: (oh - yHi) * ow) }
                if yLo >= yHi { continue }
                if g.strideW == 1 {
                    // valid output columns: 0 <= x0 + j − pw < W
                    let lo = max(0, g.padW - j), hi = min(ow, W + g.padW - j)
                    let off = j - g.padW
                    if lo >= hi {
                        (dst + yLo * ow).update(repeating: 0, count: (yHi - yLo) * ow)
                        continue
                    }
                    if contiguous {
                        // dst[y·ow + x0] = x[(y + i − ph)·W + x0 + off] for y in [yLo, yHi), x0 in [lo, hi)
                        let first = yLo * ow + lo, last = (yHi - 1) * ow + hi
                        (dst + first).update(from: xc + (yLo + i - g.padH) * W + lo + off, count: last - first)
                        if lo > 0 || hi < ow {
                            for y in yLo..<yHi {
                                let d = dst + y * ow
                                for x0 in 0..<lo { d[x0] = 0 }
                                for x0 in hi..<ow { d[x0] = 0 }
                            }
                        }
                        continue
                    }
                    for y in yLo..<yHi {
                        let d = dst + y * ow
                        let src = xc + (y * g.strideH + i - g.padH) * W
                        for x0 in 0..<lo { d[x0] = 0 }
                        (d + lo).update(from: src + lo + off, count: hi - lo)
                        for x0 in hi..<ow { d[x0] = 0 }
                    }
                } else {
                    for y in yLo..<yHi {
                        let d = dst + y * ow
                        let src = xc + (y * g.strideH + i - g.padH) * W
                        for x0 in 0..<ow {
                            let ix = x0 * g.strideW + j - g.padW
                            d[x0] = (ix >= 0 && ix < W) ? src[ix] : 0
                        }
                    }
                }
            }
        }
    }
}

/// Adds the columns back into image gradient `dx` (C×H×W): the adjoint of `im2col`.
/// `dx` must be zeroed by the caller if it should not accumulate.
public func col2im(_ col: UnsafePointer<Float>, _ g: ConvGeometry,
                   _ dx: UnsafeMutablePointer<Float>, colOffset: Int = 0, ldc: Int? = nil) {
    let oh = g.outHeight, ow = g.outWidth
    let ld = ldc ?? oh * ow
    let H = g.height, W = g.width
    for c in 0..<g.channels {
        let xc = dx + c * H * W
        for i in 0..<g.kernelH {
            for j in 0..<g.kernelW {
                let row = (c * g.kernelH + i) * g.kernelW + j
                let src = col + row * ld + colOffset
                for y in 0..<oh {
                    let iy = y * g.strideH + i - g.padH
                    if iy < 0 || iy >= H { continue }
                    let s = src + y * ow
                    let d = xc + iy * W
                    if g.strideW == 1 {
                        let lo = max(0, g.padW - j)
                        let hi = min(ow, W + g.padW - j)
                        if lo < hi {
                            let off = j - g.padW
                            for x0 in lo..<hi { d[x0 + off] += s[x0] }
                        }
                    } else {
                        for x0 in 0..<ow {
                            let ix = x0 * g.strideW + j - g.padW
                            if ix >= 0 && ix < W { d[ix] += s[x0] }
                        }
                    }
                }
            }
        }
    }
}
