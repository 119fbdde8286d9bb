// Helpers for the Datasets tests: temporary folders and tiny image encoders (PNG via zlib deflate
// and CRC-32, uncompressed 24-bit BMP), so folder tests run on real files stb must decode.
import Foundation
import XCTest
@testable import Datasets

/// A fresh folder under the system temporary directory, removed by `remove()`.
struct TemporaryFolder {
    let path: String

    init(_ label: String = "datasets") {
        path = (NSTemporaryDirectory() as NSString).appendingPathComponent("fqat-\(label)-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ relative: String) -> String { (path as NSString).appendingPathComponent(relative) }

    func makeFolder(_ relative: String) {
        try! FileManager.default.createDirectory(atPath: file(relative), withIntermediateDirectories: true)
    }

    func write(_ relative: String, _ bytes: [UInt8]) {
        let full = file(relative)
        try! FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent,
                                                 withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: full, contents: Data(bytes))
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

enum ImageEncoders {
    /// An 8-bit RGB (channels 3) or grey (channels 1) PNG, filter 0 on every row (PNG spec §4, §11).
    static func png(width: Int, height: Int, channels: Int, pixels: [UInt8]) -> [UInt8] {
        precondition(pixels.count == width * height * channels)
        func be32(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
        func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
            let body = Array(type.utf8) + data
            return be32(data.count) + body + be32(Int(Zlib.crc32(body)))
        }
        var raw: [UInt8] = []
        for y in 0..<height {
            raw.append(0)
            raw += pixels[(y * width * channels)..<((y + 1) * width * channels)]
        }
        let header = be32(width) + be32(height) + [8, channels == 3 ? 2 : 0, 0, 0, 0]
        return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
            + chunk("IHDR", header) + chunk("IDAT", Zlib.compress(raw, format: .zlib)) + chunk("IEND", [])
    }

    /// A 24-bit uncompressed BMP (BITMAPINFOHEADER, bottom-up rows, BGR, rows padded to 4 bytes).
    static func bmp(width: Int, height: Int, rgb: [UInt8]) -> [UInt8] {
        precondition(rgb.count == width * height * 3)
        func le32(_ v: Int) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 24 & 0xff)] }
        func le16(_ v: Int) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8 & 0xff)] }
        let rowBytes = (width * 3 + 3) / 4 * 4
        let imageBytes = rowBytes * height
        var out: [UInt8] = Array("BM".utf8) + le32(54 + imageBytes) + le32(0) + le32(54)
        out += le32(40) + le32(width) + le32(height) + le16(1) + le16(24) + le32(0) + le32(imageBytes)
            + le32(2835) + le32(2835) + le32(0) + le32(0)
        for y in stride(from: height - 1, through: 0, by: -1) {
            var row: [UInt8] = []
            for x in 0..<width {
                let p = (y * width + x) * 3
                row += [rgb[p + 2], rgb[p + 1], rgb[p]]
            }
            row += [UInt8](repeating: 0, count: rowBytes - width * 3)
            out += row
        }
        return out
    }

    /// A solid-colour RGB image's pixels.
    static func solid(width: Int, height: Int, _ r: UInt8, _ g: UInt8, _ b: UInt8) -> [UInt8] {
        var p: [UInt8] = []
        for _ in 0..<(width * height) { p += [r, g, b] }
        return p
    }

    /// Deterministic RGB noise pixels.
    static func noise(width: Int, height: Int, seed: UInt64) -> [UInt8] {
        var rng = SplitMix(seed)
        return (0..<(width * height * 3)).map { _ in UInt8(truncatingIfNeeded: rng.next() >> 56) }
    }
}

/// A tiny local generator for test data (independent of the RNG under test).
struct SplitMix {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func bytes(hex: String) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(hex.utf8.count / 2)
    var high: UInt8 = 0
    for (i, c) in hex.utf8.enumerated() {
        let v: UInt8 = c >= 97 ? c - 87 : c - 48
        if i % 2 == 0 { high = v } else { out.append(high << 4 | v) }
    }
    return out
}

/// Asserts `body` throws a DatasetError whose message contains every fragment.
func assertDatasetError<T>(_ body: @autoclosure () throws -> T, contains fragments: [String],
                           file: StaticString = #filePath, line: UInt = #line) {
    do {
        _ = try body()
        XCTFail("expected an error containing \(fragments)", file: file, line: line)
    } catch let error as DatasetError {
        let text = error.description
        for f in fragments where !text.contains(f) {
            XCTFail("error \"\(text)\" does not contain \"\(f)\"", file: file, line: line)
        }
    } catch {
        XCTFail("expected a DatasetError, got \(error)", file: file, line: line)
    }
}
