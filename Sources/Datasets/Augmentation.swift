// DomainBed / SAGM image transforms (docs/data.md §5), on Float H×W×3 images in [0, 1]:
//   train: RandomResizedCrop(size, scale (0.7, 1), ratio (3/4, 4/3)) → RandomHorizontalFlip(0.5)
//          → ColorJitter(0.3, 0.3, 0.3, 0.3) → RandomGrayscale(0.1) → ToTensor → Normalize
//   eval:  Resize((size, size)) ignoring aspect ratio → ToTensor → Normalize
// The parameter draws follow torchvision's algorithms (RandomResizedCrop.get_params,
// ColorJitter.get_params with its random order of the four adjustments) but use our RNG, so the
// draws are reproducible here, not equal to torch's. The colour adjustments work in Float, where
// Pillow works in bytes; they agree within rounding (≤ 1/255) except hue, which Pillow quantises to
// 1/255 of a turn.
import Foundation
import TensorCore

public struct AugmentationSettings: Codable, Equatable, Sendable {
    /// RandomResizedCrop area fraction range.
    public var cropScale: [Double]
    /// RandomResizedCrop aspect-ratio range (w/h).
    public var cropRatio: [Double]
    public var flipProbability: Double
    public var brightness: Double
    public var contrast: Double
    public var saturation: Double
    public var hue: Double
    public var grayscaleProbability: Double

    public init(cropScale: [Double] = [0.7, 1.0], cropRatio: [Double] = [3.0 / 4.0, 4.0 / 3.0],
                flipProbability: Double = 0.5, brightness: Double = 0.3, contrast: Double = 0.3,
                saturation: Double = 0.3, hue: Double = 0.3, grayscaleProbability: Double = 0.1) {
        precondition(cropScale.count == 2 && cropRatio.count == 2, "crop ranges are [lo, hi]")
        precondition(hue >= 0 && hue <= 0.5, "hue jitter must be in [0, 0.5] (torchvision)")
        self.cropScale = cropScale; self.cropRatio = cropRatio; self.flipProbability = flipProbability
        self.brightness = brightness; self.contrast = contrast; self.saturation = saturation; self.hue = hue
        self.grayscaleProbability = grayscaleProbability
    }

    /// The DomainBed/SAGM training augmentation.
    public static let domainBed = AugmentationSettings()
}

/// A crop window in pixels.
public struct CropBox: Equatable, Sendable {
    public var top: Int, left: Int, height: Int, width: Int
}

public enum Augmentation {
    /// torchvision `RandomResizedCrop.get_params`: 10 tries of (area, log-uniform ratio), then a
    /// centre crop clamped to the ratio range. Python's round() is round-half-even.
    public static func randomResizedCropBox(width: Int, height: Int, scale: [Double], ratio: [Double],
                                            rng: inout RNG) -> CropBox {
        let area = Double(width * height)
        let logLo = log(ratio[0]), logHi = log(ratio[1])
        for _ in 0..<10 {
            let targetArea = area * uniform(scale[0], scale[1], &rng)
            let aspect = exp(uniform(logLo, logHi, &rng))
            let w = Int((targetArea * aspect).squareRoot().rounded(.toNearestOrEven))
            let h = Int((targetArea / aspect).squareRoot().rounded(.toNearestOrEven))
            if w > 0 && w <= width && h > 0 && h <= height {
                let top = rng.int(below: height - h + 1)
                let left = rng.int(below: width - w + 1)
                return CropBox(top: top, left: left, height: h, width: w)
            }
        }
        let inRatio = Double(width) / Double(height)
        var w = width, h = height
        if inRatio < ratio.min()! {
            h = Int((Double(w) / ratio.min()!).rounded(.toNearestOrEven))
        } else if inRatio > ratio.max()! {
            w = Int((Double(h) * ratio.max()!).rounded(.toNearestOrEven))
        }
        return CropBox(top: (height - h) / 2, left: (width - w) / 2, height: h, width: w)
    }

    /// Uniform in [lo, hi) with 53 random bits.
    @inline(__always) static func uniform(_ lo: Double, _ hi: Double, _ rng: inout RNG) -> Double {
        lo + (hi - lo) * (Double(rng.next() >> 11) * 0x1.0p-53)
    }

    /// The training transform of one decoded H×W×3 byte image: writes [3, size, size] normalised
    /// floats at `destination`.
    public static func train(_ pixels: UnsafePointer<UInt8>, width: Int, height: Int, size: Int,
                             settings: AugmentationSettings, normalization: Normalization?,
                             rng: inout RNG, into destination: UnsafeMutablePointer<Float>) {
        let box = randomResizedCropBox(width: width, height: height, scale: settings.cropScale,
                                       ratio: settings.cropRatio, rng: &rng)
        var image = [Float](repeating: 0, count: size * size * 3)
        image.withUnsafeMutableBufferPointer { out in
            ImageOps.resize(pixels, rowStride: width * 3, channels: 3, left: box.left, top: box.top,
                            cropWidth: box.width, cropHeight: box.height,
                            outWidth: size, outHeight: size, into: out.baseAddress!)
            for i in 0..<out.count { out[i] = min(max(out[i] * (1 / 255), 0), 1) }
        }
        if uniform(0, 1, &rng) < settings.flipProbability { flipHorizontally(&image, width: size, height: size) }
        colorJitter(&image, settings: settings, rng: &rng)
        if uniform(0, 1, &rng) < settings.grayscaleProbability { toGrayscale(&image) }
        writeCHW(image, width: size, height: size, normalization: normalization, into: destination)
    }

    /// The evaluation transform: Resize((size, size)) of the whole image, then normalise.
    public static func evaluation(_ pixels: UnsafePointer<UInt8>, width: Int, height: Int, size: Int,
                                  normalization: Normalization?, into destination: UnsafeMutablePointer<Float>) {
        var image = [Float](repeating: 0, count: size * size * 3)
        image.withUnsafeMutableBufferPointer { out in
            ImageOps.resize(pixels, rowStride: width * 3, channels: 3, cropWidth: width, cropHeight: height,
                            outWidth: size, outHeight: size, into: out.baseAddress!)
            for i in 0..<out.count { out[i] = min(max(out[i] * (1 / 255), 0), 1) }
        }
        writeCHW(image, width: size, height: size, normalization: normalization, into: destination)
    }

    /// H×W×3 → [3, H, W] with (x − mean) / std per channel.
    static func writeCHW(_ image: [Float], width: Int, height: Int, normalization: Normalization?,
                         into destination: UnsafeMutablePointer<Float>) {
        let plane = width * height
        for c in 0..<3 {
            let mean = normalization?.mean[c] ?? 0
            let inverseStd = 1 / (normalization?.std[c] ?? 1)
            let out = destination + c * plane
            for p in 0..<plane { out[p] = (image[p * 3 + c] - mean) * inverseStd }
        }
    }

    public static func flipHorizontally(_ image: inout [Float], width: Int, height: Int) {
        for y in 0..<height {
            for x in 0..<(width / 2) {
                let a = (y * width + x) * 3, b = (y * width + width - 1 - x) * 3
                for k in 0..<3 { image.swapAt(a + k, b + k) }
            }
        }
    }

    /// ITU-R 601-2 luma, as Pillow's convert("L").
    @inline(__always) static func luma(_ r: Float, _ g: Float, _ b: Float) -> Float {
        0.299 * r + 0.587 * g + 0.114 * b
    }

    public static func toGrayscale(_ image: inout [Float]) {
        for p in stride(from: 0, to: image.count, by: 3) {
            let l = luma(image[p], image[p + 1], image[p + 2])
            image[p] = l; image[p + 1] = l; image[p + 2] = l
        }
    }

    /// torchvision ColorJitter: factors b, c, s ∈ [max(0, 1 − x), 1 + x], hue h ∈ [−x, x], applied
    /// in a random order (randperm(4)); each result is clamped to [0, 1].
    public static func colorJitter(_ image: inout [Float], settings: AugmentationSettings, rng: inout RNG) {
        let order = rng.permutation(4)
        let b = uniform(max(0, 1 - settings.brightness), 1 + settings.brightness, &rng)
        let c = uniform(max(0, 1 - settings.contrast), 1 + settings.contrast, &rng)
        let s = uniform(max(0, 1 - settings.saturation), 1 + settings.saturation, &rng)
        let h = uniform(-settings.hue, settings.hue, &rng)
        for step in order {
            switch step {
            case 0 where settings.brightness > 0: adjustBrightness(&image, Float(b))
            case 1 where settings.contrast > 0: adjustContrast(&image, Float(c))
            case 2 where settings.saturation > 0: adjustSaturation(&image, Float(s))
            case 3 where settings.hue > 0: adjustHue(&image, Float(h))
            default: break
            }
        }
    }

    /// Blend with black (Pillow ImageEnhance.Brightness).
    public static func adjustBrightness(_ image: inout [Float], _ factor: Float) {
        for i in image.indices { image[i] = min(max(image[i] * factor, 0), 1) }
    }

    /// Blend with the mean grey level, rounded to a byte as Pillow does (ImageEnhance.Contrast).
    public static func adjustContrast(_ image: inout [Float], _ factor: Float) {
        var sum = 0.0
        for p in stride(from: 0, to: image.count, by: 3) { sum += Double(luma(image[p], image[p + 1], image[p + 2])) }
        // Pillow: int(mean of the L image + 0.5), on the byte scale.
        let mean = Float((sum / Double(image.count / 3) * 255 + 0.5).rounded(.down)) / 255
        for i in image.indices { image[i] = min(max(mean + factor * (image[i] - mean), 0), 1) }
    }

    /// Blend with the pixel's own grey level (ImageEnhance.Color).
    public static func adjustSaturation(_ image: inout [Float], _ factor: Float) {
        for p in stride(from: 0, to: image.count, by: 3) {
            let l = luma(image[p], image[p + 1], image[p + 2])
            for k in 0..<3 { image[p + k] = min(max(l + factor * (image[p + k] - l), 0), 1) }
        }
    }

    /// Rotate the hue by `shift` turns (torchvision adjust_hue: RGB → HSV, h += shift mod 1, → RGB).
    /// HSV → RGB uses the closed form channel(n) = v − v·s·clamp(min(k, 4 − k), 0, 1) with
    /// k = (n + 6h) mod 6 and n = 5, 3, 1 for R, G, B, which avoids a branch per sector.
    public static func adjustHue(_ image: inout [Float], _ shift: Float) {
        image.withUnsafeMutableBufferPointer { px in
            for p in stride(from: 0, to: px.count, by: 3) {
                let r = px[p], g = px[p + 1], b = px[p + 2]
                let v = max(r, max(g, b)), minC = min(r, min(g, b))
                let delta = v - minC
                if delta <= 0 { continue }   // grey: hue undefined, unchanged
                let s = delta / v
                let inverseDelta = 1 / delta
                var hue: Float
                if v == r { hue = (g - b) * inverseDelta }
                else if v == g { hue = 2 + (b - r) * inverseDelta }
                else { hue = 4 + (r - g) * inverseDelta }
                // Sector units: hue ∈ [−1, 5) plus 6·shift with |shift| ≤ 0.5, wrapped into [0, 6).
                hue += 6 * shift
                while hue < 0 { hue += 6 }
                while hue >= 6 { hue -= 6 }
                let vs = v * s
                @inline(__always) func channel(_ n: Float) -> Float {
                    var k = n + hue
                    if k >= 6 { k -= 6 }
                    return v - vs * min(max(min(k, 4 - k), 0), 1)
                }
                px[p] = channel(5); px[p + 1] = channel(3); px[p + 2] = channel(1)
            }
        }
    }
}
