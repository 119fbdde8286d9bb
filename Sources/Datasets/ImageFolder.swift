// DomainBed image folders: `<root>/<Dataset>/<domain>/<class>/<image>` (docs/data.md §2).
//
// Order matters, because DomainBed's 80/20 split indexes examples by position:
// - domains are the sub-folders of the data-set folder, sorted (Python `sorted`, i.e. by code
//   point = UTF-8 byte order), so "Real World" of OfficeHome sorts after "Product";
// - classes are each domain's sub-folders, sorted (torchvision `find_classes`);
// - a class's examples are the image files found walking its folder recursively, folders in
//   sorted path order and files sorted by name (torchvision `make_dataset`), keeping the
//   extensions torchvision accepts (case-insensitive .jpg .jpeg .png .ppm .bmp .pgm .tif .tiff
//   .webp); .tif/.tiff/.webp are rejected because stb cannot decode them.
// Deviation: names starting with "." are skipped (Python would list e.g. ".ipynb_checkpoints").
// Images are decoded by stb (forced to 3 channels) when a batch needs them and kept in a byte-budget
// LRU cache.
import CStb
import Foundation
import Synchronization
import TensorCore

/// A decoded image: H×W×3 bytes, rows top to bottom.
public struct DecodedImage: Equatable, Sendable {
    public var width: Int
    public var height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * 3, "DecodedImage: \(pixels.count) bytes for \(width)x\(height)x3")
        self.width = width; self.height = height; self.pixels = pixels
    }
}

public enum ImageDecoder {
    /// Decodes a JPEG, PNG, BMP, PPM/PGM, GIF or TGA file to 8-bit RGB.
    public static func decode(path: String) throws -> DecodedImage {
        let bytes = try IDX.readFile(path)
        return try decode(bytes: bytes, path: path)
    }

    /// Largest image accepted (width × height), checked from the header before decoding: 50 megapixels
    /// (150 MB as RGB), far above any PACS, OfficeHome or DomainNet image.
    public static let maximumPixels = 50_000_000

    /// Decodes encoded bytes; `path` names the source in errors.
    public static func decode(bytes: [UInt8], path: String) throws -> DecodedImage {
        guard !bytes.isEmpty else { throw DatasetError.undecodableImage(path: path, reason: "the file is empty") }
        var w: Int32 = 0, h: Int32 = 0, channelsInFile: Int32 = 0
        // The header's size first: a 54-byte BMP may declare 5832706×54 pixels (found by fuzzing), which stb
        // would allocate and fill (~1 GB, seconds) before any check of ours.
        let known = bytes.withUnsafeBufferPointer { p in
            stbi_info_from_memory(p.baseAddress, Int32(clamping: p.count), &w, &h, &channelsInFile)
        }
        // stb reports a BMP's height as stored: negative for a top-down image (also found by fuzzing).
        if known != 0, abs(Int(w)) * abs(Int(h)) > maximumPixels {
            throw DatasetError.undecodableImage(path: path, reason: "the header declares \(abs(Int(w)))×\(abs(Int(h))) pixels, more than the \(maximumPixels / 1_000_000) megapixels accepted; the file is damaged or not a data set image")
        }
        if let problem = PNMHeader.truncation(bytes) {
            throw DatasetError.undecodableImage(path: path, reason: problem)
        }
        let decoded: UnsafeMutablePointer<stbi_uc>? = bytes.withUnsafeBufferPointer { p in
            stbi_load_from_memory(p.baseAddress, Int32(clamping: p.count), &w, &h, &channelsInFile, 3)
        }
        guard let pixels = decoded else {
            let reason = stbi_failure_reason().map { String(cString: $0) } ?? "unknown format"
            throw DatasetError.undecodableImage(path: path, reason: "stb: \(reason)")
        }
        defer { stbi_image_free(pixels) }
        guard w > 0 && h > 0 else { throw DatasetError.undecodableImage(path: path, reason: "zero-sized image") }
        let count = Int(w) * Int(h) * 3
        return DecodedImage(width: Int(w), height: Int(h), pixels: Array(UnsafeBufferPointer(start: pixels, count: count)))
    }
}

/// The header of a binary PGM/PPM (P5/P6, the two stb reads), parsed as stb parses it: whitespace
/// and `#` comments before each of width, height and maxval; the character after maxval's digits is
/// consumed, and the pixels follow. stb 2.27 (Debian's libstb) reads a 16-bit file's samples without
/// checking that the file holds them: a 18-byte `P5` declaring 2552552×5 pixels with maxval 52552
/// made it read far past the buffer (SEGV, found by fuzzing). So the declared pixel data must be in
/// the file before stb sees it.
enum PNMHeader {
    /// Why the file cannot be decoded, or nil when it is not a binary PNM or its pixels are all there.
    static func truncation(_ bytes: [UInt8]) -> String? {
        guard bytes.count >= 2, bytes[0] == UInt8(ascii: "P"), bytes[1] == UInt8(ascii: "5") || bytes[1] == UInt8(ascii: "6") else { return nil }
        let channels = bytes[1] == UInt8(ascii: "5") ? 1 : 3
        var i = 2
        func isSpace(_ c: UInt8) -> Bool { c == 32 || (9...13).contains(c) }
        func integer() -> Int? {
            while i < bytes.count, isSpace(bytes[i]) || bytes[i] == UInt8(ascii: "#") {
                if bytes[i] == UInt8(ascii: "#") {
                    while i < bytes.count, bytes[i] != 10, bytes[i] != 13 { i += 1 }
                } else { i += 1 }
            }
            var value = 0, digits = 0
            while i < bytes.count, (48...57).contains(bytes[i]) {
                value = value * 10 + Int(bytes[i] - 48)
                digits += 1
                i += 1
                if value > 1 << 30 { return nil }
            }
            return digits > 0 ? value : nil
        }
        guard let width = integer(), let height = integer(), let maxval = integer() else {
            return "the PGM/PPM header is incomplete or its numbers are out of range"
        }
        guard width > 0, height > 0 else { return "the PGM/PPM header declares \(width)×\(height) pixels" }
        guard (1...65535).contains(maxval) else { return "the PGM/PPM header's maximum value \(maxval) is outside 1…65535" }
        i += 1  // the character after maxval, which stb consumes
        let needed = width * height * channels * (maxval > 255 ? 2 : 1)
        let present = max(0, bytes.count - i)
        guard present >= needed else {
            return "the file is truncated: its header declares \(width)×\(height) pixels (\(needed) bytes of samples) but \(present) bytes follow it"
        }
        return nil
    }
}

/// How image-folder data are turned into tensors.
public struct ImageFolderOptions: Equatable, Sendable {
    /// Side of the square images batches return (DomainBed: 224; smaller sizes for CPU runs).
    public var imageSize: Int
    /// Applied after [0, 1] conversion; DomainBed uses ImageNet statistics.
    public var normalization: Normalization?
    /// Training augmentation used when a batch asks for `augment: true`.
    public var augmentation: AugmentationSettings
    /// Budget of the decoded-image cache in bytes (0 disables caching).
    public var cacheBytes: Int
    /// When set, decoded images whose shorter side exceeds this are shrunk (aspect kept,
    /// antialiased bilinear) before caching, so more of a data set fits in the cache. Crops are then
    /// taken from the shrunk image: a deviation from DomainBed worth it when `imageSize` is small.
    public var storageSize: Int?

    public init(imageSize: Int = 224, normalization: Normalization? = .imageNet,
                augmentation: AugmentationSettings = .domainBed, cacheBytes: Int = 512 << 20,
                storageSize: Int? = nil) {
        self.imageSize = imageSize; self.normalization = normalization; self.augmentation = augmentation
        self.cacheBytes = cacheBytes; self.storageSize = storageSize
    }
}

/// The files of one domain, decoded on demand, with a least-recently-used cache of decoded images.
public final class ImageFileStore: Sendable {
    public let paths: [String]
    public let options: ImageFolderOptions
    private let cache: DecodedImageCache

    public init(paths: [String], options: ImageFolderOptions) {
        self.paths = paths
        self.options = options
        self.cache = DecodedImageCache(capacityBytes: options.cacheBytes)
    }

    private init(paths: [String], options: ImageFolderOptions, cache: DecodedImageCache) {
        self.paths = paths; self.options = options; self.cache = cache
    }

    public var count: Int { paths.count }

    /// The first `n` files, sharing this store's cache.
    public func prefix(_ n: Int) -> ImageFileStore {
        ImageFileStore(paths: Array(paths.prefix(n)), options: options, cache: cache)
    }

    /// Decoded bytes of file `index` (from the cache when present).
    public func decoded(_ index: Int) throws -> DecodedImage {
        precondition(index >= 0 && index < paths.count, "image index \(index) of \(paths.count)")
        if let hit = cache.get(index) { return hit }
        var image = try ImageDecoder.decode(path: paths[index])
        if let limit = options.storageSize, min(image.width, image.height) > limit {
            image = ImageFileStore.shrink(image, shorterSide: limit)
        }
        cache.put(index, image)
        return image
    }

    /// Writes [indices.count, 3, S, S] floats; with `augmentSeeds` (one per index) the training
    /// transform, otherwise the evaluation transform. Images are processed in parallel; each uses
    /// only its own seed, so the output does not depend on thread timing.
    public func write(indices: [Int], augmentSeeds: [UInt64]?, into destination: UnsafeMutablePointer<Float>) throws {
        let size = options.imageSize
        let stride = 3 * size * size
        let failure = FirstError()
        Parallel.forEach(indices.count, costPerItem: 40 * stride, minimumWork: 1) { range in
            for j in range {
                if failure.isSet { return }
                do {
                    let image = try self.decoded(indices[j])
                    let out = destination + j * stride
                    image.pixels.withUnsafeBufferPointer { px in
                        if let seeds = augmentSeeds {
                            var rng = RNG(seed: seeds[j])
                            Augmentation.train(px.baseAddress!, width: image.width, height: image.height, size: size,
                                               settings: self.options.augmentation, normalization: self.options.normalization,
                                               rng: &rng, into: out)
                        } else {
                            Augmentation.evaluation(px.baseAddress!, width: image.width, height: image.height, size: size,
                                                    normalization: self.options.normalization, into: out)
                        }
                    }
                } catch {
                    failure.set(error)
                }
            }
        }
        if let error = failure.error { throw error }
    }

    static func shrink(_ image: DecodedImage, shorterSide: Int) -> DecodedImage {
        let scale = Double(shorterSide) / Double(min(image.width, image.height))
        let w = max(1, Int((Double(image.width) * scale).rounded())), h = max(1, Int((Double(image.height) * scale).rounded()))
        var out = [Float](repeating: 0, count: w * h * 3)
        image.pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                ImageOps.resize(src.baseAddress!, rowStride: image.width * 3, channels: 3,
                                cropWidth: image.width, cropHeight: image.height, outWidth: w, outHeight: h,
                                into: dst.baseAddress!)
            }
        }
        return DecodedImage(width: w, height: h, pixels: out.map { UInt8(min(max($0.rounded(), 0), 255)) })
    }
}

/// The first error thrown by any worker of a parallel loop.
final class FirstError: Sendable {
    private let stored = Mutex<Error?>(nil)
    var isSet: Bool { stored.withLock { $0 != nil } }
    var error: Error? { stored.withLock { $0 } }
    func set(_ e: Error) { stored.withLock { if $0 == nil { $0 = e } } }
}

/// Decoded images by index, evicting the least recently used beyond a byte budget.
final class DecodedImageCache: Sendable {
    private struct State {
        var entries: [Int: (image: DecodedImage, lastUse: UInt64)] = [:]
        var bytes = 0
        var clock: UInt64 = 0
    }
    private let state = Mutex(State())
    let capacityBytes: Int

    init(capacityBytes: Int) { self.capacityBytes = capacityBytes }

    func get(_ index: Int) -> DecodedImage? {
        state.withLock { s in
            guard let entry = s.entries[index] else { return nil }
            s.clock += 1
            s.entries[index] = (entry.image, s.clock)
            return entry.image
        }
    }

    func put(_ index: Int, _ image: DecodedImage) {
        let size = image.pixels.count
        guard size <= capacityBytes else { return }
        state.withLock { s in
            if s.entries[index] != nil { return }
            while s.bytes + size > capacityBytes, let oldest = s.entries.min(by: { $0.value.lastUse < $1.value.lastUse }) {
                s.bytes -= oldest.value.image.pixels.count
                s.entries[oldest.key] = nil
            }
            s.clock += 1
            s.entries[index] = (image, s.clock)
            s.bytes += size
        }
    }

    var count: Int { state.withLock { $0.entries.count } }
}

public enum DomainBedFolders {
    /// Folder names DomainBed's download script creates, by the data set names users type.
    public static let folderNames: [String: String] = [
        "pacs": "PACS", "officehome": "office_home", "office_home": "office_home",
        "domainnet": "domain_net", "domain_net": "domain_net", "vlcs": "VLCS",
        "terraincognita": "terra_incognita", "terra_incognita": "terra_incognita",
    ]

    /// DomainNet's leave-one-group-out groups (Yu et al. 2024b; FQAT §5.1).
    public static let domainNetGroups: [[String]] = [["clipart", "infograph"], ["painting", "quickdraw"], ["real", "sketch"]]

    /// Extensions torchvision's ImageFolder accepts, lower-case.
    static let acceptedExtensions: Set<String> = ["jpg", "jpeg", "png", "ppm", "bmp", "pgm", "tif", "tiff", "webp"]
    /// Of those, the ones stb cannot decode.
    static let undecodableExtensions: Set<String> = ["tif", "tiff", "webp"]

    /// Loads `<root>/<dataset>` where `dataset` is a folder name ("PACS", "office_home", …) or a
    /// name DomainBed uses ("OfficeHome", "DomainNet"; case-insensitive).
    public static func load(root: String, dataset: String, options: ImageFolderOptions = ImageFolderOptions()) throws -> DomainDataset {
        let direct = (root as NSString).appendingPathComponent(dataset)
        var folder = direct
        if !isDirectory(direct), let mapped = folderNames[dataset.lowercased()] {
            folder = (root as NSString).appendingPathComponent(mapped)
        }
        guard isDirectory(folder) else {
            throw DatasetError.datasetMissing(dataset: dataset, path: folder,
                                              remedy: "expected the DomainBed layout <root>/<Dataset>/<domain>/<class>/<image> (e.g. \(root)/PACS/photo/dog/*.jpg); download it with DomainBed's scripts/download.py")
        }
        return try load(folder: folder, name: dataset, options: options)
    }

    /// Loads a data-set folder `<folder>/<domain>/<class>/<image>` directly.
    public static func load(folder: String, name: String? = nil, options: ImageFolderOptions = ImageFolderOptions()) throws -> DomainDataset {
        precondition(options.imageSize > 0, "imageSize must be positive")
        guard isDirectory(folder) else {
            throw DatasetError.datasetMissing(dataset: name ?? folder, path: folder, remedy: "give a folder laid out as <domain>/<class>/<image>")
        }
        let domainFolders = try nonEmptySubfolders(of: folder, expected: "domain folders (expected <domain>/<class>/<image>)")
        var classNames: [String] = []
        var domains: [Domain] = []
        for (d, domain) in domainFolders.enumerated() {
            let classFolders = try nonEmptySubfolders(of: domain.path, expected: "class folders (expected <class>/<image>)")
            let classes = classFolders.map(\.name)
            if d == 0 { classNames = classes }
            guard classes == classNames else {
                throw DatasetError.inconsistentClasses(domain: domain.name, expected: classNames, found: classes)
            }
            var paths: [String] = []
            var labels: [Int] = []
            for (label, classFolder) in classFolders.enumerated() {
                let files = try imageFiles(under: classFolder.path)
                guard !files.isEmpty else {
                    throw DatasetError.emptyFolder(path: classFolder.path, expected: "image files (.jpg, .jpeg, .png, .bmp, .ppm, .pgm)")
                }
                paths += files
                labels += Array(repeating: label, count: files.count)
            }
            domains.append(Domain(name: domain.name, labels: labels, images: .files(ImageFileStore(paths: paths, options: options))))
        }
        let displayName = name ?? (folder as NSString).lastPathComponent
        return DomainDataset(name: displayName, classNames: classNames,
                             imageShape: [3, options.imageSize, options.imageSize], domains: domains,
                             provenance: ["source": folder, "kind": "domainbed-folder",
                                          "imageSize": String(options.imageSize)])
    }

    /// Python's sorted() on str: code-point order, which is UTF-8 byte order.
    public static func pythonSorted(_ names: [String]) -> [String] {
        names.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }

    static func isDirectory(_ path: String) -> Bool {
        var flag: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &flag) && flag.boolValue
    }

    static func listing(_ path: String) throws -> [String] {
        do {
            return try FileManager.default.contentsOfDirectory(atPath: path).filter { !$0.hasPrefix(".") }
        } catch {
            throw DatasetError.unreadableFile(path: path, reason: "cannot list the folder (\(error.localizedDescription))")
        }
    }

    /// The sorted sub-folders of `path` (name, full path); the error that `path` holds no `expected` when there
    /// are none.
    static func nonEmptySubfolders(of path: String, expected: String) throws -> [(name: String, path: String)] {
        let names = try subfolders(of: path)
        guard !names.isEmpty else { throw DatasetError.emptyFolder(path: path, expected: expected) }
        return names.map { ($0, (path as NSString).appendingPathComponent($0)) }
    }

    /// Sorted names of the sub-folders (symbolic links followed).
    static func subfolders(of path: String) throws -> [String] {
        pythonSorted(try listing(path).filter { isDirectory((path as NSString).appendingPathComponent($0)) })
    }

    /// Image files under `path`, recursively, in torchvision `make_dataset` order.
    static func imageFiles(under path: String) throws -> [String] {
        var folders: [(path: String, files: [String])] = []
        var pending = [path]
        var visited = Set<String>()
        while let current = pending.popLast() {
            let resolved = (current as NSString).resolvingSymlinksInPath
            if visited.contains(resolved) { continue }   // a symlink cycle
            visited.insert(resolved)
            var files: [String] = []
            for entry in try listing(current) {
                let full = (current as NSString).appendingPathComponent(entry)
                if isDirectory(full) { pending.append(full); continue }
                let ext = (entry as NSString).pathExtension.lowercased()
                guard acceptedExtensions.contains(ext) else { continue }
                if undecodableExtensions.contains(ext) {
                    throw DatasetError.undecodableImage(path: full, reason: ".\(ext) is not supported (stb decodes JPEG, PNG, BMP, PPM/PGM); convert it to PNG or JPEG")
                }
                files.append(entry)
            }
            folders.append((current, pythonSorted(files)))
        }
        folders.sort { Array($0.path.utf8).lexicographicallyPrecedes(Array($1.path.utf8)) }
        return folders.flatMap { folder in folder.files.map { (folder.path as NSString).appendingPathComponent($0) } }
    }
}
