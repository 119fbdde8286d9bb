// The multi-domain data model: a data set is a list of domains (DomainBed's "environments"), each
// with its labels and its images, either held in memory as one [N, C, H, W] tensor (built-in
// benchmarks) or as files decoded on demand (DomainBed folders). All domains produce images of the
// same shape, so a batch from several domains concatenates along N.
import Foundation
import TensorCore

/// Per-channel normalisation after conversion to [0, 1]: x ← (x − mean[c]) / std[c].
public struct Normalization: Codable, Equatable, Sendable {
    public var mean: [Float]
    public var std: [Float]

    public init(mean: [Float], std: [Float]) {
        precondition(mean.count == std.count && std.allSatisfy { $0 > 0 }, "Normalization: mean \(mean), std \(std)")
        self.mean = mean; self.std = std
    }

    /// torchvision's ImageNet statistics, used by DomainBed for every image-folder data set.
    public static let imageNet = Normalization(mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225])
}

/// Where a domain's images live.
public enum DomainImages: Sendable {
    /// [N, C, H, W] Float, already in the form the model consumes.
    case memory(Tensor)
    /// Image files decoded, resized (and augmented for training) when a batch asks for them.
    case files(ImageFileStore)
}

/// One domain: a name, a label per example and the examples' images.
public struct Domain: Sendable {
    public var name: String
    public var labels: [Int]
    public var images: DomainImages
    /// Positions of the examples in the source image set (built-in benchmarks; nil for folders).
    public var origin: [Int]?

    public init(name: String, labels: [Int], images: DomainImages, origin: [Int]? = nil) {
        switch images {
        case .memory(let t):
            precondition(t.rank == 4 && t.shape[0] == labels.count,
                         "domain \(name): images \(t.shape) for \(labels.count) labels")
        case .files(let store):
            precondition(store.count == labels.count, "domain \(name): \(store.count) files for \(labels.count) labels")
        }
        precondition(origin == nil || origin!.count == labels.count, "domain \(name): origin of \(origin!.count) for \(labels.count) labels")
        self.name = name; self.labels = labels; self.images = images; self.origin = origin
    }

    public var count: Int { labels.count }
}

/// A batch of images with their labels.
public struct LabeledBatch: Sendable {
    /// [B, C, H, W]
    public var images: Tensor
    public var labels: [Int]

    public init(images: Tensor, labels: [Int]) {
        precondition(images.rank == 4 && images.shape[0] == labels.count,
                     "LabeledBatch: images \(images.shape) for \(labels.count) labels")
        self.images = images; self.labels = labels
    }
}

/// A multi-domain classification data set.
public struct DomainDataset: Sendable {
    /// "rotated-fmnist", "PACS", …
    public var name: String
    /// Class names in label order.
    public var classNames: [String]
    /// [C, H, W] of every image a batch returns.
    public var imageShape: [Int]
    public var domains: [Domain]
    /// How the data set was made (source, seed, options), for results records.
    public var provenance: [String: String]

    public init(name: String, classNames: [String], imageShape: [Int], domains: [Domain],
                provenance: [String: String] = [:]) {
        precondition(imageShape.count == 3, "imageShape is [C, H, W], got \(imageShape)")
        for d in domains {
            if case .memory(let t) = d.images {
                precondition(Array(t.shape.dropFirst()) == imageShape,
                             "domain \(d.name) holds images \(t.shape), the data set declares \(imageShape)")
            }
            precondition(d.labels.allSatisfy { $0 >= 0 && $0 < classNames.count },
                         "domain \(d.name) has a label outside 0..<\(classNames.count)")
        }
        self.name = name; self.classNames = classNames; self.imageShape = imageShape
        self.domains = domains; self.provenance = provenance
    }

    public var domainNames: [String] { domains.map(\.name) }
    public var classCount: Int { classNames.count }
    /// Elements of one image (C·H·W).
    public var imageSize: Int { imageShape.reduce(1, *) }
    public var totalCount: Int { domains.reduce(0) { $0 + $1.count } }

    /// Index of the domain called `name` (exact match, then case-insensitive).
    public func domainIndex(named name: String) throws -> Int {
        if let i = domains.firstIndex(where: { $0.name == name }) { return i }
        let lower = name.lowercased()
        let matches = domains.indices.filter { domains[$0].name.lowercased() == lower }
        if matches.count == 1 { return matches[0] }
        throw DatasetError.unknownDomain(name: name, available: domainNames)
    }

    /// Images and labels of `indices` (positions within `domain`), in that order.
    /// `augment` applies the training augmentation to file-backed domains (built-in in-memory
    /// benchmarks have none, as DomainBed's RotatedMNIST); it draws one value from `rng` per image.
    public func batch(domain: Int, indices: [Int], augment: Bool = false, rng: inout RNG) throws -> LabeledBatch {
        var images = Tensor(shape: [indices.count] + imageShape)
        try images.data.withUnsafeMutableBufferPointer { out in
            try fill(domain: domain, indices: indices, augment: augment, rng: &rng, into: out.baseAddress!)
        }
        let labels = domains[domain].labels
        return LabeledBatch(images: images, labels: indices.map { labels[$0] })
    }

    /// An un-augmented batch (evaluation).
    public func batch(domain: Int, indices: [Int]) throws -> LabeledBatch {
        var unused = RNG(seed: 0)
        return try batch(domain: domain, indices: indices, augment: false, rng: &unused)
    }

    /// Writes the images of `indices` of `domain` contiguously ([indices.count, C, H, W]) at `destination`.
    public func fill(domain: Int, indices: [Int], augment: Bool, rng: inout RNG,
                     into destination: UnsafeMutablePointer<Float>) throws {
        precondition(domain >= 0 && domain < domains.count, "domain \(domain) of \(domains.count)")
        let d = domains[domain]
        let size = imageSize
        switch d.images {
        case .memory(let tensor):
            tensor.data.withUnsafeBufferPointer { src in
                for (row, i) in indices.enumerated() {
                    precondition(i >= 0 && i < d.count, "index \(i) outside domain \(d.name) of \(d.count)")
                    (destination + row * size).update(from: src.baseAddress! + i * size, count: size)
                }
            }
        case .files(let store):
            // One seed per image drawn in order, so the result does not depend on thread timing.
            let seeds: [UInt64] = augment ? indices.map { _ in rng.next() } : []
            try store.write(indices: indices, augmentSeeds: augment ? seeds : nil, into: destination)
        }
    }

    /// The same data set restricted to the first `perDomain` examples of every domain
    /// (for smoke tests; in-memory domains only copy the kept rows).
    public func limited(perDomain: Int) -> DomainDataset {
        precondition(perDomain > 0, "limited(perDomain:) needs a positive count")
        var copy = self
        copy.domains = domains.map { d in
            let n = min(perDomain, d.count)
            switch d.images {
            case .memory(let t):
                return Domain(name: d.name, labels: Array(d.labels.prefix(n)), images: .memory(t.rows(0, n)),
                              origin: d.origin.map { Array($0.prefix(n)) })
            case .files(let store):
                return Domain(name: d.name, labels: Array(d.labels.prefix(n)), images: .files(store.prefix(n)))
            }
        }
        copy.provenance["perDomain"] = String(perDomain)
        return copy
    }
}
