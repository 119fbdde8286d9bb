// Built-in multi-domain benchmarks made from Fashion-MNIST (or MNIST), deterministic from a seed.
//
// rotated-fmnist / rotated-mnist: DomainBed's RotatedMNIST recipe (docs/data.md §4) — the 70,000
//   train+test images are shuffled, domain i takes shuffled images i, i+6, i+12, … and rotates them
//   by angle[i] ∈ {0, 15, 30, 45, 60, 75}° counter-clockwise (Pillow bilinear, fill 0), to [0, 1].
//   DomainBed shuffles with torch.randperm under the run seed, which cannot be replicated without
//   torch; we shuffle with our RNG (Fisher-Yates over xoshiro256**), so the *recipe* and sizes match
//   (11,667 ×4 and 11,666 ×2) but not the image-to-domain assignment.
// style-fmnist: a PACS-like style shift — disjoint random image subsets, each rendered in one style
//   (clean photo, pencil sketch, fog, sensor noise; also negative and blur on request).
import Foundation
import TensorCore

/// Options shared by the built-in benchmarks (Codable: checkpoints and sessions save them inside
/// Training's `DataDescriptor`).
public struct BenchmarkOptions: Codable, Equatable, Sendable {
    /// Seeds the shuffle and every random rendering choice.
    public var seed: UInt64
    /// Keep at most this many images per domain (smoke tests); style-fmnist: images per domain.
    public var perDomain: Int?
    /// Side of the square output images (28 = the native size; others resize with Pillow-style bilinear).
    public var imageSize: Int
    /// 1 (grey) or 3 (grey replicated, for RGB models).
    public var channels: Int
    /// Optional per-channel normalisation after [0, 1] (none in DomainBed's RotatedMNIST).
    public var normalization: Normalization?
    /// Domains of style-fmnist, by style name (default `StyleRendering.defaultStyles`).
    public var styles: [String]?
    /// Angles of the rotated benchmarks in degrees (default 0, 15, 30, 45, 60, 75).
    public var angles: [Double]?
    /// Folder of the IDX files (default: Debian's Fashion-MNIST; required for rotated-mnist).
    public var sourceDirectory: String?

    public init(seed: UInt64 = 0, perDomain: Int? = nil, imageSize: Int = 28, channels: Int = 1,
                normalization: Normalization? = nil, styles: [String]? = nil, angles: [Double]? = nil,
                sourceDirectory: String? = nil) {
        self.seed = seed; self.perDomain = perDomain; self.imageSize = imageSize; self.channels = channels
        self.normalization = normalization; self.styles = styles; self.angles = angles
        self.sourceDirectory = sourceDirectory
    }
}

public enum Benchmarks {
    /// Names `make` accepts.
    public static let names = ["rotated-fmnist", "style-fmnist", "rotated-mnist"]
    /// DomainBed's RotatedMNIST angles.
    public static let rotationAngles: [Double] = [0, 15, 30, 45, 60, 75]
    /// Images per style-fmnist domain unless `perDomain` says otherwise (4 domains → 10,000 images).
    public static let defaultStyleImagesPerDomain = 2500

    /// Builds a benchmark by name.
    public static func make(_ name: String, options: BenchmarkOptions = BenchmarkOptions()) throws -> DomainDataset {
        try validate(options)
        switch name.lowercased() {
        case "rotated-fmnist", "rotatedfmnist", "rotated-fashion-mnist":
            let source = try MNISTFamily.fashionMNIST(directory: options.sourceDirectory ?? MNISTFamily.fashionMNISTDirectory)
            return rotated(source: source, name: "rotated-fmnist", classNames: MNISTFamily.fashionClassNames, options: options)
        case "rotated-mnist", "rotatedmnist":
            guard let folder = options.sourceDirectory else {
                throw DatasetError.invalidOption(name: "source", value: "(none)",
                                                 expected: "rotated-mnist reads MNIST IDX files from a folder you name (no MNIST package is installed)")
            }
            let source = try MNISTFamily.mnist(directory: folder)
            return rotated(source: source, name: "rotated-mnist", classNames: MNISTFamily.digitClassNames, options: options)
        case "style-fmnist", "stylefmnist", "style-fashion-mnist":
            let source = try MNISTFamily.fashionMNIST(directory: options.sourceDirectory ?? MNISTFamily.fashionMNISTDirectory)
            return try styled(source: source, name: "style-fmnist", classNames: MNISTFamily.fashionClassNames, options: options)
        default:
            throw DatasetError.unknownName(kind: "benchmark", name: name, available: names)
        }
    }

    static func validate(_ options: BenchmarkOptions) throws {
        if let n = options.perDomain, n <= 0 {
            throw DatasetError.invalidOption(name: "perDomain", value: String(n), expected: "a positive number of images")
        }
        guard options.imageSize >= 4 && options.imageSize <= 1024 else {
            throw DatasetError.invalidOption(name: "size", value: String(options.imageSize), expected: "an image side between 4 and 1024")
        }
        guard options.channels == 1 || options.channels == 3 else {
            throw DatasetError.invalidOption(name: "channels", value: String(options.channels), expected: "1 or 3")
        }
        if let n = options.normalization, n.mean.count != options.channels {
            throw DatasetError.invalidOption(name: "normalization", value: "\(n.mean.count) channels",
                                             expected: "one mean/std per image channel (\(options.channels))")
        }
        // Style names are checked before any file is read, so a typo is reported as such.
        for n in options.styles ?? [] where StyleRendering.Style(rawValue: n.lowercased()) == nil {
            throw DatasetError.unknownName(kind: "style", name: n, available: StyleRendering.Style.allCases.map(\.rawValue))
        }
        if let angles = options.angles, angles.isEmpty {
            throw DatasetError.invalidOption(name: "angles", value: "[]", expected: "at least one angle")
        }
    }

    /// DomainBed's rotated-domains recipe on any MNIST-style image set.
    public static func rotated(source: IDXImageSet, name: String, classNames: [String],
                               options: BenchmarkOptions) -> DomainDataset {
        let angles = options.angles ?? rotationAngles
        let rows = source.rows, columns = source.columns
        let order = shuffledOrder(source, options)
        let domains = angles.enumerated().map { d, angle -> Domain in
            // Domain d takes shuffled positions d, d + D, d + 2D, … (DomainBed `images[i::D]`).
            var members = Array(stride(from: d, to: order.count, by: angles.count).map { order[$0] })
            if let limit = options.perDomain { members = Array(members.prefix(limit)) }
            return renderDomain(source, name: angleName(angle), members: members, options: options, costPerPixel: 40) { src, _ in
                var rotatedBytes = [UInt8](repeating: 0, count: rows * columns)
                rotatedBytes.withUnsafeMutableBufferPointer { r in
                    ImageOps.rotate(src, width: columns, height: rows, degrees: angle, into: r.baseAddress!)
                }
                return rotatedBytes.map { Float($0) / 255 }
            }
        }
        return DomainDataset(name: name, classNames: classNames, imageShape: outputShape(options), domains: domains,
                             provenance: provenance(name, options, extra: ["angles": angles.map(angleName).joined(separator: ",")]))
    }

    /// The style-shift benchmark: the shuffled images are dealt into disjoint blocks of
    /// `perDomain` (default 2,500), block d rendered in style d.
    public static func styled(source: IDXImageSet, name: String, classNames: [String],
                              options: BenchmarkOptions) throws -> DomainDataset {
        let styleNames = options.styles ?? StyleRendering.defaultStyles
        guard !styleNames.isEmpty else {
            throw DatasetError.invalidOption(name: "styles", value: "[]", expected: "at least one style")
        }
        let styles = try styleNames.map { n -> StyleRendering.Style in
            guard let s = StyleRendering.Style(rawValue: n.lowercased()) else {
                throw DatasetError.unknownName(kind: "style", name: n, available: StyleRendering.Style.allCases.map(\.rawValue))
            }
            return s
        }
        guard Set(styles).count == styles.count else {
            throw DatasetError.invalidOption(name: "styles", value: styleNames.joined(separator: ","), expected: "each style at most once")
        }
        let perDomain = options.perDomain ?? defaultStyleImagesPerDomain
        guard perDomain * styles.count <= source.count else {
            throw DatasetError.invalidOption(name: "perDomain", value: String(perDomain),
                                             expected: "at most \(source.count / styles.count) images per domain for \(styles.count) disjoint domains of \(source.count) images")
        }
        let rows = source.rows, columns = source.columns
        let order = shuffledOrder(source, options)
        let domains = styles.enumerated().map { d, style -> Domain in
            let members = Array(order[(d * perDomain)..<((d + 1) * perDomain)])
            return renderDomain(source, name: style.rawValue, members: members, options: options, costPerPixel: 200) { src, member in
                var grey = [Float](repeating: 0, count: rows * columns)
                for p in 0..<grey.count { grey[p] = Float(src[p]) / 255 }
                // Each image's randomness depends only on (seed, style, image), not on threads.
                var imageRNG = RNG(seed: mixSeed(options.seed, UInt64(d), UInt64(member)))
                return StyleRendering.render(style, grey, width: columns, height: rows, rng: &imageRNG)
            }
        }
        return DomainDataset(name: name, classNames: classNames, imageShape: outputShape(options), domains: domains,
                             provenance: provenance(name, options, extra: ["styles": styles.map(\.rawValue).joined(separator: ","),
                                                                           "perDomain": String(perDomain)]))
    }

    /// The source images in the seed's shuffled order (Fisher-Yates over `RNG(seed:)`).
    static func shuffledOrder(_ source: IDXImageSet, _ options: BenchmarkOptions) -> [Int] {
        var rng = RNG(seed: options.seed)
        return rng.permutation(source.count)
    }

    /// [C, S, S] of every output image.
    static func outputShape(_ options: BenchmarkOptions) -> [Int] {
        [options.channels, options.imageSize, options.imageSize]
    }

    /// One domain named `name` of `members` (indices into `source`), its [members, C, S, S] images
    /// rendered in parallel: `grey` turns one source image (row-major bytes) and its index into grey
    /// H×W in [0, 1]; `finish` resizes, replicates channels and normalises. `costPerPixel` sizes the
    /// work for `Parallel.forEach`.
    static func renderDomain(_ source: IDXImageSet, name: String, members: [Int], options: BenchmarkOptions,
                             costPerPixel: Int, grey: (UnsafePointer<UInt8>, Int) -> [Float]) -> Domain {
        let rows = source.rows, columns = source.columns
        let pixelsPerImage = rows * columns
        let outShape = outputShape(options)
        let outSize = outShape.reduce(1, *)
        var images = Tensor(shape: [members.count] + outShape)
        images.data.withUnsafeMutableBufferPointer { out in
            let base = out.baseAddress!
            source.pixels.withUnsafeBufferPointer { pixels in
                Parallel.forEach(members.count, costPerItem: costPerPixel * pixelsPerImage + 20 * outSize) { range in
                    for j in range {
                        let image = grey(pixels.baseAddress! + members[j] * pixelsPerImage, members[j])
                        finish(image, width: columns, height: rows, options: options, into: base + j * outSize)
                    }
                }
            }
        }
        return Domain(name: name, labels: members.map { source.labels[$0] }, images: .memory(images), origin: members)
    }

    /// "0", "15", … ; non-integral angles keep their decimals ("22.5").
    public static func angleName(_ angle: Double) -> String {
        angle == angle.rounded() ? String(Int(angle)) : String(angle)
    }

    /// Resize (if the size differs), replicate channels, normalise: grey H×W in [0, 1] → [C, S, S].
    static func finish(_ grey: [Float], width: Int, height: Int, options: BenchmarkOptions,
                       into destination: UnsafeMutablePointer<Float>) {
        let size = options.imageSize
        var plane = grey
        if size != width || size != height {
            plane = ImageOps.resized(grey, width: width, height: height, channels: 1, outWidth: size, outHeight: size)
            for i in plane.indices { plane[i] = min(max(plane[i], 0), 1) }
        }
        let n = size * size
        for c in 0..<options.channels {
            let mean = options.normalization?.mean[c] ?? 0
            let inverseStd = 1 / (options.normalization?.std[c] ?? 1)
            let out = destination + c * n
            for p in 0..<n { out[p] = (plane[p] - mean) * inverseStd }
        }
    }

    static func provenance(_ name: String, _ options: BenchmarkOptions, extra: [String: String]) -> [String: String] {
        var p: [String: String] = ["kind": "builtin", "benchmark": name, "seed": String(options.seed),
                                   "imageSize": String(options.imageSize), "channels": String(options.channels),
                                   "source": options.sourceDirectory ?? MNISTFamily.fashionMNISTDirectory]
        if let n = options.perDomain { p["perDomain"] = String(n) }
        if options.normalization != nil { p["normalized"] = "true" }
        for (k, v) in extra { p[k] = v }
        return p
    }
}

/// SplitMix64 finaliser over several words: a seed for a sub-stream that depends on all of them
/// (`RNG.mix` from this module's own starting word).
public func mixSeed(_ parts: UInt64...) -> UInt64 {
    RNG.mix(parts, from: 0x6A09_E667_F3BC_C909)
}
