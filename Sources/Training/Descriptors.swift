// What a checkpoint needs to rebuild the things a run does not own: the data set (built-in
// benchmarks are regenerated from their options, folders re-read) and the model's architecture.
// Both are plain Codable descriptions written by whoever built the data and the model (the shell),
// and a fingerprint that tells whether rebuilt data is the data the run was trained on.
import Datasets
import NN

/// How to rebuild a data set: a built-in benchmark from its options, or a folder data set.
public struct DataDescriptor: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, Sendable {
        /// `Benchmarks.make(name, options:)`.
        case builtin
        /// `DomainBedFolders.load(root: path, dataset: name, options:)`.
        case domainBed
        /// `DomainBedFolders.load(folder: path, name: name, options:)`.
        case folder
    }

    public var kind: Kind
    /// Benchmark name, or the data set's name.
    public var name: String
    /// DomainBed root (`domainBed`) or the data-set folder (`folder`).
    public var path: String?
    /// Built-in options. A folder data set uses their `imageSize` and `normalization`; the others keep
    /// their defaults there (`channels` 3). Saved as fields of the descriptor itself, beside the ones below.
    public var benchmarkOptions: BenchmarkOptions
    /// Folder options (`ImageFolderOptions`).
    public var augmentation: AugmentationSettings?
    public var cacheBytes: Int?
    public var storageSize: Int?
    /// `DomainDataset.limited(perDomain:)` applied after loading (smoke runs on folders).
    public var limitPerDomain: Int?

    /// A built-in benchmark.
    public static func builtin(_ name: String, options: BenchmarkOptions = BenchmarkOptions()) -> DataDescriptor {
        DataDescriptor(kind: .builtin, name: name, path: nil, benchmarkOptions: options,
                       augmentation: nil, cacheBytes: nil, storageSize: nil, limitPerDomain: nil)
    }

    /// `<root>/<dataset>` in DomainBed's layout.
    public static func domainBed(root: String, dataset: String, options: ImageFolderOptions = ImageFolderOptions(),
                                 limitPerDomain: Int? = nil) -> DataDescriptor {
        folderDescriptor(.domainBed, name: dataset, path: root, options: options, limitPerDomain: limitPerDomain)
    }

    /// A folder `<folder>/<domain>/<class>/<image>`.
    public static func folder(_ folder: String, name: String, options: ImageFolderOptions = ImageFolderOptions(),
                              limitPerDomain: Int? = nil) -> DataDescriptor {
        folderDescriptor(.folder, name: name, path: folder, options: options, limitPerDomain: limitPerDomain)
    }

    static func folderDescriptor(_ kind: Kind, name: String, path: String, options: ImageFolderOptions,
                                 limitPerDomain: Int?) -> DataDescriptor {
        DataDescriptor(kind: kind, name: name, path: path,
                       benchmarkOptions: BenchmarkOptions(imageSize: options.imageSize, channels: 3,
                                                          normalization: options.normalization),
                       augmentation: options.augmentation, cacheBytes: options.cacheBytes,
                       storageSize: options.storageSize, limitPerDomain: limitPerDomain)
    }

    public var folderOptions: ImageFolderOptions {
        let d = ImageFolderOptions()
        return ImageFolderOptions(imageSize: benchmarkOptions.imageSize, normalization: benchmarkOptions.normalization,
                                  augmentation: augmentation ?? d.augmentation, cacheBytes: cacheBytes ?? d.cacheBytes,
                                  storageSize: storageSize)
    }

    /// Builds the data set (reads files; throws the Datasets errors).
    public func make() throws -> DomainDataset {
        var data: DomainDataset
        switch kind {
        case .builtin:
            data = try Benchmarks.make(name, options: benchmarkOptions)
        case .domainBed:
            data = try DomainBedFolders.load(root: path ?? ".", dataset: name, options: folderOptions)
        case .folder:
            data = try DomainBedFolders.load(folder: path ?? ".", name: name, options: folderOptions)
        }
        if let n = limitPerDomain { data = data.limited(perDomain: n) }
        return data
    }
}

/// The options' fields stand at the top level of a saved descriptor, beside its own (the format from
/// before they were one struct). In an extension, so that the memberwise initialiser stays.
extension DataDescriptor {
    enum CodingKeys: String, CodingKey {
        case kind, name, path, augmentation, cacheBytes, storageSize, limitPerDomain
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(kind: try c.decode(Kind.self, forKey: .kind), name: try c.decode(String.self, forKey: .name),
                  path: try c.decodeIfPresent(String.self, forKey: .path),
                  benchmarkOptions: try BenchmarkOptions(from: decoder),
                  augmentation: try c.decodeIfPresent(AugmentationSettings.self, forKey: .augmentation),
                  cacheBytes: try c.decodeIfPresent(Int.self, forKey: .cacheBytes),
                  storageSize: try c.decodeIfPresent(Int.self, forKey: .storageSize),
                  limitPerDomain: try c.decodeIfPresent(Int.self, forKey: .limitPerDomain))
    }

    public func encode(to encoder: Encoder) throws {
        try benchmarkOptions.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(kind, forKey: .kind)
        try c.encode(name, forKey: .name)
        try c.encodeIfPresent(path, forKey: .path)
        try c.encodeIfPresent(augmentation, forKey: .augmentation)
        try c.encodeIfPresent(cacheBytes, forKey: .cacheBytes)
        try c.encodeIfPresent(storageSize, forKey: .storageSize)
        try c.encodeIfPresent(limitPerDomain, forKey: .limitPerDomain)
    }
}

/// How to rebuild a model before loading its weights: `Network.make` arguments.
public struct ModelDescriptor: Codable, Equatable, Sendable {
    public var architecture: String
    public var inChannels: Int
    public var classes: Int
    /// Channel multiplier (`Network` does not record it).
    public var width: Double
    /// "A" (zero padding) or "B" (projection); CIFAR ResNets only.
    public var shortcut: String
    /// Initialisation seed (irrelevant after loading weights; kept for the record).
    public var seed: UInt64

    public init(architecture: String, inChannels: Int, classes: Int, width: Double = 1,
                shortcut: ResidualShortcut = .zeroPadding, seed: UInt64 = 0) {
        self.architecture = architecture; self.inChannels = inChannels; self.classes = classes
        self.width = width; self.shortcut = shortcut.rawValue; self.seed = seed
    }

    /// A fresh full-precision network of this shape.
    public func make() throws -> Network {
        guard let s = ResidualShortcut(rawValue: shortcut) else {
            throw NNError.invalidConfiguration("shortcut must be A or B, got '\(shortcut)'")
        }
        return try Network.make(architecture: architecture, inChannels: inChannels, classes: classes, width: width,
                                shortcut: s, seed: seed)
    }
}

/// Enough of a data set to tell whether it is the one a checkpoint was trained on: names, sizes,
/// image shape and a hash of every label (the splits and sampler pools depend on exactly these).
public struct DataFingerprint: Codable, Equatable, Sendable {
    public var name: String
    public var domainNames: [String]
    public var domainSizes: [Int]
    public var imageShape: [Int]
    public var classCount: Int
    /// FNV-1a 64 over (domain, label) of every example, as a hex string.
    public var labelHash: String

    public init(_ data: DomainDataset) {
        name = data.name
        domainNames = data.domainNames
        domainSizes = data.domains.map(\.count)
        imageShape = data.imageShape
        classCount = data.classCount
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        func mix(_ v: Int) {
            var x = UInt64(bitPattern: Int64(v))
            for _ in 0..<8 {
                h ^= x & 0xFF
                h = h &* 0x0000_0100_0000_01B3
                x >>= 8
            }
        }
        for (d, domain) in data.domains.enumerated() {
            mix(-1 - d)
            for l in domain.labels { mix(l) }
        }
        labelHash = String(h, radix: 16)
    }

    /// What differs, in words; nil when they match.
    public func difference(from other: DataFingerprint) -> String? {
        if domainNames != other.domainNames { return "domains \(other.domainNames) instead of \(domainNames)" }
        if domainSizes != other.domainSizes { return "domain sizes \(other.domainSizes) instead of \(domainSizes)" }
        if imageShape != other.imageShape { return "images \(other.imageShape) instead of \(imageShape)" }
        if classCount != other.classCount { return "\(other.classCount) classes instead of \(classCount)" }
        if labelHash != other.labelHash { return "different labels (hash \(other.labelHash), checkpoint \(labelHash))" }
        return nil
    }
}
