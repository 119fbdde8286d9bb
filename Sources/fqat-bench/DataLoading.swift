// `data`: wall time to prepare one training batch the way Training.Run gets it
// (Datasets.TrainingSampler.next: one with-replacement draw of `batchPerDomain` images from each of
// 3 training domains, concatenated), through TrainingSampler.timeBatchPreparation:
//   style-fmnist         the built-in in-memory benchmark, 1×28×28, 32 per domain (no augmentation:
//                        DomainBed's MNIST-style data sets have none)
//   png / jpeg folders   a temporary DomainBed folder (4 domains × 2 classes) of 227×227 RGB images
//                        (PACS's size), read at 224×224 with the DomainBed training augmentation
//                        (RandomResizedCrop, flip, ColorJitter, grayscale) and ImageNet normalisation;
//                        "decode" with the decoded-image cache off (every image decoded from the file),
//                        "cached" with the cache warm (augmentation only)
// PNGs are written here (zlib deflate + CRC-32, PNG spec §11); JPEGs with stb_image_write's
// stbi_write_jpg (quality 90), which libstb exports but the CStb module map does not declare, so it
// is looked up at run time; without it the JPEG rows are skipped.
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Datasets
import TensorCore

/// Tiny image encoders for the temporary folders.
enum ImageFiles {
    /// An 8-bit RGB PNG, filter type 0 on every row.
    static func png(width: Int, height: Int, rgb: [UInt8]) -> [UInt8] {
        precondition(rgb.count == width * height * 3, "png: \(rgb.count) bytes for \(width)x\(height) RGB")
        func bigEndian(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
        func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
            let body = Array(type.utf8) + data
            return bigEndian(data.count) + body + bigEndian(Int(Zlib.crc32(body)))
        }
        var scanlines: [UInt8] = []
        scanlines.reserveCapacity(height * (width * 3 + 1))
        for y in 0..<height {
            scanlines.append(0)
            scanlines += rgb[(y * width * 3)..<((y + 1) * width * 3)]
        }
        // IHDR: width, height, bit depth 8, colour type 2 (RGB), deflate, filter 0, no interlace.
        let header = bigEndian(width) + bigEndian(height) + [8, 2, 0, 0, 0]
        return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
            + chunk("IHDR", header) + chunk("IDAT", Zlib.compress(scanlines, format: .zlib)) + chunk("IEND", [])
    }

    private typealias WriteJPEG = @convention(c) (UnsafePointer<CChar>, Int32, Int32, Int32, UnsafeRawPointer, Int32) -> Int32
    private static let writeJPEG: WriteJPEG? = {
        let handle = dlopen("libstb.so.0", RTLD_NOW) ?? dlopen(nil, RTLD_NOW)
        guard let f = dlsym(handle, "stbi_write_jpg") else { return nil }
        return unsafeBitCast(f, to: WriteJPEG.self)
    }()

    static var canWriteJPEG: Bool { writeJPEG != nil }

    /// Writes an RGB JPEG at `path`; false when the encoder is unavailable or fails.
    static func writeJPEG(path: String, width: Int, height: Int, rgb: [UInt8], quality: Int32 = 90) -> Bool {
        guard let write = writeJPEG else { return false }
        return rgb.withUnsafeBytes { write(path, Int32(width), Int32(height), 3, $0.baseAddress!, quality) } != 0
    }

    /// A photo-like test image: smooth colour gradients, a few soft discs and mild noise (so PNG
    /// compresses it about as well as a photograph and JPEG has edges to code).
    static func syntheticPhoto(width: Int, height: Int, seed: UInt64) -> [UInt8] {
        var rng = RNG(seed: seed)
        var out = [UInt8](repeating: 0, count: width * height * 3)
        let base = (0..<3).map { _ in rng.uniform(40, 200) }
        let slope = (0..<6).map { _ in rng.uniform(-0.4, 0.4) }
        let discs = (0..<5).map { _ in (rng.uniform(0, Float(width)), rng.uniform(0, Float(height)),
                                        rng.uniform(10, 60), (0..<3).map { _ in rng.uniform(-80, 80) }) }
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<3 {
                    var v = base[c] + slope[2 * c] * Float(x) + slope[2 * c + 1] * Float(y)
                    for (cx, cy, r, colour) in discs {
                        let d = ((Float(x) - cx) * (Float(x) - cx) + (Float(y) - cy) * (Float(y) - cy)).squareRoot()
                        if d < r { v += colour[c] * (1 - d / r) }
                    }
                    v += rng.uniform(-6, 6)
                    out[(y * width + x) * 3 + c] = UInt8(max(0, min(255, v.rounded())))
                }
            }
        }
        return out
    }
}

/// A temporary DomainBed folder `<root>/<domain>/<class>/<n>.<ext>`, removed by `remove()`.
struct TemporaryImageFolder {
    let root: String
    let files: Int
    let bytes: Int

    /// nil when the format cannot be written (JPEG without stbi_write_jpg).
    init?(format: String, domains: Int, classes: Int, perClass: Int, side: Int) {
        if format == "jpg" && !ImageFiles.canWriteJPEG { return nil }
        root = (NSTemporaryDirectory() as NSString).appendingPathComponent("fqat-bench-\(getpid())-\(format)")
        try? FileManager.default.removeItem(atPath: root)
        var written = 0, total = 0
        for d in 0..<domains {
            for c in 0..<classes {
                let folder = "\(root)/domain\(d)/class\(c)"
                try! FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                for i in 0..<perClass {
                    let rgb = ImageFiles.syntheticPhoto(width: side, height: side, seed: UInt64(((d * classes + c) * perClass + i) + 1))
                    let path = "\(folder)/\(i).\(format)"
                    if format == "png" {
                        let bytes = ImageFiles.png(width: side, height: side, rgb: rgb)
                        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
                    } else if !ImageFiles.writeJPEG(path: path, width: side, height: side, rgb: rgb) {
                        try? FileManager.default.removeItem(atPath: root)
                        return nil
                    }
                    total += ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
                    written += 1
                }
            }
        }
        files = written
        bytes = total
    }

    func remove() { try? FileManager.default.removeItem(atPath: root) }
}

extension Bench {
    func runDataLoading() {
        let perDomain = quick ? 4 : 32
        let trainingDomains = [1, 2, 3]
        let repeats = plan.repeats

        // Built-in style-fmnist (building it is a one-off cost, reported beside the batch time).
        let t0 = now()
        let style: DomainDataset
        do {
            style = try Benchmarks.make("style-fmnist", options: BenchmarkOptions(seed: 0, perDomain: quick ? 200 : nil))
        } catch {
            FileHandle.standardError.write("fqat-bench: data: style-fmnist unavailable (\(error)); skipping it\n".data(using: .utf8)!)
            return
        }
        let buildSeconds = now() - t0

        // 227×227 image folders, about 1.25 batches' worth of distinct files per training domain.
        let perClass = quick ? 3 : 20
        let folders = ["png", "jpg"].compactMap { format -> (String, TemporaryImageFolder)? in
            guard let f = TemporaryImageFolder(format: format, domains: 4, classes: 2, perClass: perClass, side: 227) else {
                FileHandle.standardError.write("fqat-bench: data: cannot write .\(format) files (stbi_write_jpg not found); skipping\n".data(using: .utf8)!)
                return nil
            }
            return (format, f)
        }
        defer { for (_, f) in folders { f.remove() } }

        struct Source { var detail: String; var dataset: DomainDataset; var batches: Int; var extra: [String: Double] }
        var sources = [Source(detail: "style-fmnist 1x28x28", dataset: style, batches: quick ? 2 : 20,
                              extra: ["build_seconds": buildSeconds])]
        for (format, folder) in folders {
            for cached in [false, true] {
                let options = ImageFolderOptions(imageSize: 224, normalization: .imageNet, augmentation: .domainBed,
                                                 cacheBytes: cached ? 512 << 20 : 0)
                guard let dataset = try? DomainBedFolders.load(folder: folder.root, name: format, options: options) else { continue }
                if cached {
                    // Warm the cache: decode every file once.
                    for d in dataset.domains { if case .files(let store) = d.images { for i in 0..<store.count { _ = try? store.decoded(i) } } }
                }
                sources.append(Source(detail: "\(format) 227->224 augment \(cached ? "cached" : "decode")", dataset: dataset,
                                      batches: quick ? 1 : 2,
                                      extra: ["files": Double(folder.files), "mean_file_kib": Double(folder.bytes) / Double(max(1, folder.files)) / 1024]))
            }
        }

        for threads in plan.threadCounts {
            setThreads(threads)
            for source in sources {
                let splits = source.dataset.domainBedSplits(trialSeed: 0)
                var sampler = TrainingSampler(splits: splits, trainingDomains: trainingDomains, batchPerDomain: perDomain,
                                              seed: 0, augment: true)
                do {
                    _ = try sampler.timeBatchPreparation(dataset: source.dataset, batches: 1)   // warm-up
                    var samples: [Double] = []
                    var imagesPerBatch = 0
                    for _ in 0..<repeats {
                        let timing = try sampler.timeBatchPreparation(dataset: source.dataset, batches: source.batches)
                        samples.append(timing.secondsPerBatch)
                        imagesPerBatch = timing.imagesPerBatch
                    }
                    let perBatch = median(samples)
                    var extra = source.extra
                    extra["per_domain"] = Double(perDomain)
                    emit(Measurement(workload: "data", detail: source.detail, batch: imagesPerBatch, threads: threads,
                                     imagesPerSecond: Double(imagesPerBatch) / perBatch, seconds: perBatch, extra: extra))
                } catch {
                    FileHandle.standardError.write("fqat-bench: data: \(source.detail) failed: \(error)\n".data(using: .utf8)!)
                }
            }
        }
    }
}
