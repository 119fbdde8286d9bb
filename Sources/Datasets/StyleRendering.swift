// Renderings of a grey [0, 1] image for the style-fmnist benchmark, each a different "camera" or
// "artist", in the spirit of PACS (photo / art / cartoon / sketch). Every style changes low-level
// statistics a classifier trained on the other styles relies on:
// - clean:    the Fashion-MNIST image (bright garment on black).
// - sketch:   pencil outline — Sobel gradient magnitude, inverted to dark strokes on light paper,
//             with random stroke strength, ink darkness and paper grain. Polarity and texture flip.
// - fog:      contrast cut to 25–45 % and a smooth uneven haze (a 4×4 random field upsampled) added,
//             after a 3×3 blur: shapes stay, the dynamic range and background level do not.
// - noise:    heavy sensor noise — Gaussian σ ∈ [0.3, 0.45] plus 5 % salt-and-pepper pixels.
// - negative: 1 − x (optional).
// - blur:     Gaussian blur σ = 1.5 px (optional).
// All randomness comes from the per-image RNG the caller seeds, so renderings are reproducible.
import Foundation
import TensorCore

public enum StyleRendering {
    public enum Style: String, CaseIterable, Sendable {
        case clean, sketch, fog, noise, negative, blur
    }

    /// The four domains of style-fmnist by default, in domain order.
    public static let defaultStyles = ["clean", "sketch", "fog", "noise"]

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
        case .sketch:
            let gradient = sobelMagnitude(image, width: width, height: height)
            let strength = rng.uniform(0.6, 1.0)
            let ink = rng.uniform(0.75, 1.0)
            let paper = rng.uniform(0.88, 1.0)
            return gradient.map { g in
                let stroke = min(g * strength, 1)
                return clamp01(paper - ink * stroke + 0.03 * rng.normal())
            }
        case .fog:
            let contrast = rng.uniform(0.25, 0.45)
            var grid = [Float](repeating: 0, count: 16)
            for i in 0..<16 { grid[i] = rng.uniform(0.35, 0.75) }
            let haze = ImageOps.resized(grid, width: 4, height: 4, channels: 1, outWidth: width, outHeight: height)
            let soft = boxBlur3(image, width: width, height: height)
            return (0..<image.count).map { p in clamp01(contrast * soft[p] + (1 - contrast) * haze[p]) }
        case .noise:
            let sigma = rng.uniform(0.3, 0.45)
            return image.map { x in
                let u = rng.uniform()
                if u < 0.025 { return 0 }
                if u < 0.05 { return 1 }
                return clamp01(x + sigma * rng.normal())
            }
        }
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
