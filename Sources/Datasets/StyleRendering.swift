// Renderings of a grey [0, 1] image for the style-fmnist benchmark, each a different "camera" or
// "artist", in the spirit of PACS (photo / art / cartoon / sketch). Every style changes low-level
// statistics a classifier trained on the other styles relies on:
// - clean:    the Fashion-MNIST image (bright garment on black).
// - chalk:    a chalk outline on a dark board — Sobel gradient magnitude above a threshold as light
//             strokes of random strength, on a board of random darkness with smudges and dust.
//             Filled shapes become outlines; the texture inside the garment mostly disappears.
// - fog:      contrast cut to 45–65 % and a smooth uneven haze (a 4×4 random field upsampled)
//             added after a 3×3 blur: shapes stay, the dynamic range and background level do not.
// - noise:    heavy sensor noise — Gaussian σ ∈ [0.25, 0.4] plus 5 % salt-and-pepper pixels.
// - sketch:   (optional) pencil outline — the chalk strokes dark on light paper, with light shading
//             inside the garment. Polarity flips, so an ERM model trained on the bright-on-dark
//             styles is near chance on it (measured ≈ 20 %): a very hard held-out domain.
// - negative: (optional) 1 − x.
// - blur:     (optional) Gaussian blur σ = 1.5 px.
// All randomness comes from the per-image RNG the caller seeds, so renderings are reproducible.
// The parameter ranges were chosen by measuring leave-one-style-out ERM (docs/data.md).
import Foundation
import TensorCore

public enum StyleRendering {
    public enum Style: String, CaseIterable, Sendable {
        case clean, chalk, fog, noise, sketch, negative, blur
    }

    /// The four domains of style-fmnist by default, in domain order.
    public static let defaultStyles = ["clean", "chalk", "fog", "noise"]

    /// Renders grey `image` (H×W, [0, 1]) in `style`; the result is in [0, 1].
    public static func render(_ style: Style, _ image: [Float], width: Int, height: Int, rng: inout RNG) -> [Float] {
        precondition(image.count == width * height, "render: \(image.count) pixels for \(height)x\(width)")
        switch style {
        case .clean:
            return image
        case .negative:
            return image.map { 1 - $0 }
        case .blur:
            return gaussianBlur(image, width: width, height: height, sigma: 1.5)
        case .chalk:
            let gradient = sobelMagnitude(image, width: width, height: height)
            let strength = rng.uniform(0.5, 0.9)
            let board = rng.uniform(0.08, 0.25)
            let pressure = rng.uniform(0.7, 1.0)
            let smudge = lowFrequencyField(width: width, height: height, range: -0.05...0.05, rng: &rng)
            return (0..<image.count).map { p in
                let stroke = min(max((gradient[p] - 0.2) * strength, 0), 1)
                let background = board + smudge[p]
                return clamp01(background + (0.95 - background) * pressure * stroke + 0.04 * rng.normal())
            }
        case .sketch:
            let gradient = sobelMagnitude(image, width: width, height: height)
            let strength = rng.uniform(0.5, 0.9)
            let paper = rng.uniform(0.85, 1.0)
            let ink = rng.uniform(0.7, 0.95)
            return (0..<image.count).map { p in
                let stroke = min(max((gradient[p] - 0.25) * strength, 0), 1)
                return clamp01(paper - ink * stroke - 0.15 * image[p] + 0.03 * rng.normal())
            }
        case .fog:
            let contrast = rng.uniform(0.45, 0.65)
            let haze = lowFrequencyField(width: width, height: height, range: 0.25...0.6, rng: &rng)
            let soft = boxBlur3(image, width: width, height: height)
            return (0..<image.count).map { p in clamp01(contrast * soft[p] + (1 - contrast) * haze[p]) }
        case .noise:
            let sigma = rng.uniform(0.25, 0.4)
            return image.map { x in
                let u = rng.uniform()
                if u < 0.025 { return 0 }
                if u < 0.05 { return 1 }
                return clamp01(x + sigma * rng.normal())
            }
        }
    }

    /// A smooth random field: a 4×4 grid of uniform values in `range`, upsampled bilinearly.
    static func lowFrequencyField(width: Int, height: Int, range: ClosedRange<Float>, rng: inout RNG) -> [Float] {
        var grid = [Float](repeating: 0, count: 16)
        for i in 0..<16 { grid[i] = rng.uniform(range.lowerBound, range.upperBound) }
        return ImageOps.resized(grid, width: 4, height: 4, channels: 1, outWidth: width, outHeight: height)
    }

    @inline(__always) static func clamp01(_ v: Float) -> Float { min(max(v, 0), 1) }

    /// |∇x| by the 3×3 Sobel operator, zero outside the image. Input [H, W], output [H, W].
    public static func sobelMagnitude(_ image: [Float], width: Int, height: Int) -> [Float] {
        func at(_ y: Int, _ x: Int) -> Float {
            (y < 0 || y >= height || x < 0 || x >= width) ? 0 : image[y * width + x]
        }
        var out = [Float](repeating: 0, count: image.count)
        for y in 0..<height {
            for x in 0..<width {
                let gx = (at(y - 1, x + 1) + 2 * at(y, x + 1) + at(y + 1, x + 1))
                       - (at(y - 1, x - 1) + 2 * at(y, x - 1) + at(y + 1, x - 1))
                let gy = (at(y + 1, x - 1) + 2 * at(y + 1, x) + at(y + 1, x + 1))
                       - (at(y - 1, x - 1) + 2 * at(y - 1, x) + at(y - 1, x + 1))
                out[y * width + x] = (gx * gx + gy * gy).squareRoot()
            }
        }
        return out
    }

    /// Mean over the 3×3 neighbourhood inside the image.
    static func boxBlur3(_ image: [Float], width: Int, height: Int) -> [Float] {
        var out = [Float](repeating: 0, count: image.count)
        for y in 0..<height {
            for x in 0..<width {
                var s: Float = 0, n: Float = 0
                for yy in max(0, y - 1)...min(height - 1, y + 1) {
                    for xx in max(0, x - 1)...min(width - 1, x + 1) { s += image[yy * width + xx]; n += 1 }
                }
                out[y * width + x] = s / n
            }
        }
        return out
    }

    /// Separable Gaussian blur, kernel radius ⌈3σ⌉, edges clamped.
    static func gaussianBlur(_ image: [Float], width: Int, height: Int, sigma: Float) -> [Float] {
        let radius = Int((3 * sigma).rounded(.up))
        var kernel = (-radius...radius).map { exp(-Float($0 * $0) / (2 * sigma * sigma)) }
        let total = kernel.reduce(0, +)
        kernel = kernel.map { $0 / total }
        var tmp = [Float](repeating: 0, count: image.count)
        var out = [Float](repeating: 0, count: image.count)
        for y in 0..<height {
            for x in 0..<width {
                var s: Float = 0
                for k in -radius...radius { s += kernel[k + radius] * image[y * width + min(max(x + k, 0), width - 1)] }
                tmp[y * width + x] = s
            }
        }
        for y in 0..<height {
            for x in 0..<width {
                var s: Float = 0
                for k in -radius...radius { s += kernel[k + radius] * tmp[min(max(y + k, 0), height - 1) * width + x] }
                out[y * width + x] = s
            }
        }
        return out
    }
}
