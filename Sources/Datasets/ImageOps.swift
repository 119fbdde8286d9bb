// Geometric image operations with the pixel conventions of Pillow, which torchvision uses for
// PIL images and therefore DomainBed uses for every dataset:
// - rotation = `Image.rotate(angle, BILINEAR, fillcolor=0)` (Pillow Image.py `rotate` builds an
//   affine matrix about the centre (w/2, h/2); Geometry.c samples output pixel centres (x+0.5,
//   y+0.5), fills pixels whose source falls outside [0,w)×[0,h), otherwise interpolates
//   bilinearly with edge clamping and *truncates* to UInt8);
// - resize = `Image.resize(size, BILINEAR)` (Pillow Resample.c: a separable triangle filter whose
//   support widens by the scale factor when shrinking, i.e. antialiased; horizontal pass first).
// Images are interleaved H×W×C (as decoded), one row after another.
import Foundation

/// A pixel component that resampling can read: bytes from decoders, floats from earlier stages.
public protocol PixelComponent { var pixelValue: Float { get } }
extension UInt8: PixelComponent { @inline(__always) public var pixelValue: Float { Float(self) } }
extension Float: PixelComponent { @inline(__always) public var pixelValue: Float { self } }

public enum ImageOps {
    // MARK: Rotation (Pillow `Image.rotate`, BILINEAR, expand=False, fill 0)

    /// Rotates an 8-bit H×W×C image by `degrees` counter-clockwise about its centre, as
    /// `PIL.Image.rotate(degrees, resample=BILINEAR, fillcolor=0)`: same canvas, pixels whose source
    /// lies outside the image are 0. Angles that are multiples of 90° (180° always; 90°/270° on a
    /// square canvas) take Pillow's exact transpose fast paths.
    public static func rotate(_ source: UnsafePointer<UInt8>, width: Int, height: Int, channels: Int = 1,
                              degrees: Double, into destination: UnsafeMutablePointer<UInt8>) {
        let w = width, h = height, c = channels
        // Python's `angle % 360.0` is never negative.
        var angle = degrees.truncatingRemainder(dividingBy: 360)
        if angle < 0 { angle += 360 }
        if angle == 0 {
            destination.update(from: source, count: w * h * c)
            return
        }
        if angle == 180 || ((angle == 90 || angle == 270) && w == h) {
            // out (x, y) ← in (sx, sy), exact index maps of Pillow's transposes.
            for y in 0..<h {
                for x in 0..<w {
                    let sx: Int, sy: Int
                    if angle == 180 { sx = w - 1 - x; sy = h - 1 - y }
                    else if angle == 90 { sx = w - 1 - y; sy = x }   // ROTATE_90 (counter-clockwise)
                    else { sx = y; sy = h - 1 - x }                 // ROTATE_270
                    let d = (y * w + x) * c, s = (sy * w + sx) * c
                    for k in 0..<c { destination[d + k] = source[s + k] }
                }
            }
            return
        }
        // The inverse affine map output → input; Pillow negates the angle and rounds the matrix
        // entries to 15 decimals (round(cos θ, 15)) before composing the centre translation.
        let radians = -angle * Double.pi / 180
        let a = round15(cos(radians)), b = round15(sin(radians))
        let d = round15(-sin(radians)), e = round15(cos(radians))
        let cx = Double(w) / 2, cy = Double(h) / 2
        let cOffset = a * -cx + b * -cy + cx
        let fOffset = d * -cx + e * -cy + cy
        let fw = Double(w), fh = Double(h)
        for y in 0..<h {
            let yo = Double(y) + 0.5
            for x in 0..<w {
                let xo = Double(x) + 0.5
                var xi = a * xo + b * yo + cOffset
                var yi = d * xo + e * yo + fOffset
                let out = destination + (y * w + x) * c
                if xi < 0 || xi >= fw || yi < 0 || yi >= fh {
                    for k in 0..<c { out[k] = 0 }
                    continue
                }
                xi -= 0.5; yi -= 0.5
                let x0 = Int(xi.rounded(.down)), y0 = Int(yi.rounded(.down))
                let dx = xi - Double(x0), dy = yi - Double(y0)
                let xa = min(max(x0, 0), w - 1), xb = min(max(x0 + 1, 0), w - 1)
                let row0 = min(max(y0, 0), h - 1)
                let hasRow1 = y0 + 1 >= 0 && y0 + 1 < h
                for k in 0..<c {
                    let p0 = Double(source[(row0 * w + xa) * c + k]), p1 = Double(source[(row0 * w + xb) * c + k])
                    let v1 = p0 + (p1 - p0) * dx
                    var v2 = v1
                    if hasRow1 {
                        let q0 = Double(source[((y0 + 1) * w + xa) * c + k]), q1 = Double(source[((y0 + 1) * w + xb) * c + k])
                        v2 = q0 + (q1 - q0) * dx
                    }
                    out[k] = UInt8(v1 + (v2 - v1) * dy)   // truncation, as Pillow's (UINT8) cast
                }
            }
        }
    }

    /// Python's round(v, 15) for the |v| ≤ 1 values of a rotation matrix (exact to the last ulp
    /// for the angles used here; Python rounds the decimal expansion, this rounds v·10^15).
    @inline(__always) static func round15(_ v: Double) -> Double { (v * 1e15).rounded() / 1e15 }

    // MARK: Resize (Pillow `Image.resize`, BILINEAR, with antialiasing when shrinking)

    /// Taps of one output coordinate: the first input index and one weight per tap.
    public struct ResampleTaps: Equatable {
        public var start: [Int]
        public var count: [Int]
        /// `weights[o * width + t]`, normalised to sum 1 per output.
        public var weights: [Float]
        public var width: Int
    }

    /// Pillow's `precompute_coeffs` for the bilinear (triangle, support 1) filter, mapping input
    /// span [0, inSize) onto outSize samples. Shrinking widens the support by the scale factor.
    public static func resampleTaps(inSize: Int, outSize: Int) -> ResampleTaps {
        precondition(inSize > 0 && outSize > 0, "resample \(inSize) → \(outSize)")
        let scale = Double(inSize) / Double(outSize)
        let filterScale = max(scale, 1)
        let support = 1.0 * filterScale
        let width = Int(support.rounded(.up)) * 2 + 1
        var taps = ResampleTaps(start: [], count: [], weights: [Float](repeating: 0, count: outSize * width), width: width)
        var weights = [Double](repeating: 0, count: width)
        let inverseScale = 1.0 / filterScale
        for o in 0..<outSize {
            let center = (Double(o) + 0.5) * scale
            // (int) casts truncate toward zero, as in C.
            var lo = Int(center - support + 0.5)
            if lo < 0 { lo = 0 }
            var hi = Int(center + support + 0.5)
            if hi > inSize { hi = inSize }
            let n = hi - lo
            var total = 0.0
            for t in 0..<n {
                let u = abs((Double(t + lo) - center + 0.5) * inverseScale)
                let wgt = u < 1 ? 1 - u : 0
                weights[t] = wgt
                total += wgt
            }
            for t in 0..<n { taps.weights[o * width + t] = Float(total != 0 ? weights[t] / total : weights[t]) }
            taps.start.append(lo)
            taps.count.append(n)
        }
        return taps
    }

    /// Resizes the `cropWidth`×`cropHeight` window at (`left`, `top`) of an H×W×C image with row
    /// stride `rowStride` (elements) to `outWidth`×`outHeight`, writing Float H×W×C at `destination`
    /// in the source's value scale (no rounding between the passes, unlike Pillow's 8-bit path:
    /// results differ from Pillow's by at most 1/255 of the range).
    public static func resize<T: PixelComponent>(_ source: UnsafePointer<T>, rowStride: Int, channels: Int,
                                                 left: Int = 0, top: Int = 0, cropWidth: Int, cropHeight: Int,
                                                 outWidth: Int, outHeight: Int,
                                                 into destination: UnsafeMutablePointer<Float>) {
        let c = channels
        let horizontal = resampleTaps(inSize: cropWidth, outSize: outWidth)
        let vertical = resampleTaps(inSize: cropHeight, outSize: outHeight)
        // Horizontal pass: [cropHeight, outWidth, C].
        var middle = [Float](repeating: 0, count: cropHeight * outWidth * c)
        middle.withUnsafeMutableBufferPointer { mid in
            horizontal.weights.withUnsafeBufferPointer { hw in
                for y in 0..<cropHeight {
                    let row = source + (top + y) * rowStride + left * c
                    let out = mid.baseAddress! + y * outWidth * c
                    for o in 0..<outWidth {
                        let n = horizontal.count[o]
                        let w = hw.baseAddress! + o * horizontal.width
                        var p = row + horizontal.start[o] * c
                        if c == 3 {
                            // RGB: three accumulators, one pass over the taps.
                            var r: Float = 0, g: Float = 0, b: Float = 0
                            for t in 0..<n {
                                let wt = w[t]
                                r += wt * p[0].pixelValue; g += wt * p[1].pixelValue; b += wt * p[2].pixelValue
                                p += 3
                            }
                            out[o * 3] = r; out[o * 3 + 1] = g; out[o * 3 + 2] = b
                        } else {
                            for k in 0..<c {
                                var acc: Float = 0
                                for t in 0..<n { acc += w[t] * p[t * c + k].pixelValue }
                                out[o * c + k] = acc
                            }
                        }
                    }
                }
            }
            // Vertical pass: [outHeight, outWidth, C].
            let rowLength = outWidth * c
            for o in 0..<outHeight {
                let s = vertical.start[o], n = vertical.count[o]
                let out = destination + o * rowLength
                for i in 0..<rowLength { out[i] = 0 }
                for t in 0..<n {
                    let wgt = vertical.weights[o * vertical.width + t]
                    let src = mid.baseAddress! + (s + t) * rowLength
                    for i in 0..<rowLength { out[i] += wgt * src[i] }
                }
            }
        }
    }

    /// Convenience: resize a whole Float image.
    public static func resized(_ image: [Float], width: Int, height: Int, channels: Int,
                               outWidth: Int, outHeight: Int) -> [Float] {
        precondition(image.count == width * height * channels, "resized: \(image.count) values for \(height)x\(width)x\(channels)")
        var out = [Float](repeating: 0, count: outWidth * outHeight * channels)
        image.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                resize(src.baseAddress!, rowStride: width * channels, channels: channels,
                       cropWidth: width, cropHeight: height, outWidth: outWidth, outHeight: outHeight,
                       into: dst.baseAddress!)
            }
        }
        return out
    }
}
