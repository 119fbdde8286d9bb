// IDX files (LeCun's MNIST format, also used by Fashion-MNIST), raw or gzip-compressed.
//
// Layout: bytes 0-1 are zero; byte 2 is the element type (0x08 = unsigned byte, the only type
// MNIST-like files use); byte 3 is the rank r; then r big-endian UInt32 dimensions; then the
// elements in row-major order. A file must hold exactly product(dims) elements: a shorter body is
// "truncated", a longer one is rejected too (it is not the file the header describes).
import Foundation

/// An unsigned-byte IDX array: dimensions outermost first, elements row-major.
public struct IDXArray: Equatable, Sendable {
    public var dimensions: [Int]
    public var bytes: [UInt8]

    public init(dimensions: [Int], bytes: [UInt8]) {
        precondition(dimensions.reduce(1, *) == bytes.count,
                     "IDX dimensions \(dimensions) hold \(dimensions.reduce(1, *)) elements, got \(bytes.count)")
        self.dimensions = dimensions
        self.bytes = bytes
    }

    /// The file's bytes (uncompressed), for writing test fixtures.
    public func encoded() -> [UInt8] {
        var out: [UInt8] = [0, 0, 0x08, UInt8(dimensions.count)]
        for d in dimensions {
            let v = UInt32(d)
            out += [UInt8(v >> 24), UInt8((v >> 16) & 0xff), UInt8((v >> 8) & 0xff), UInt8(v & 0xff)]
        }
        out += bytes
        return out
    }
}

public enum IDX {
    /// Largest element count accepted (guards against absurd headers before allocating): 2^31.
    static let maximumElements = 1 << 31

    /// Reads an IDX file, gunzipping it first when it starts with the gzip magic 1f 8b.
    public static func read(path: String) throws -> IDXArray {
        let raw = try readFile(path)
        return try parse(raw, path: path)
    }

    /// Parses IDX bytes (gzip or raw). `path` only names the source in errors.
    public static func parse(_ raw: [UInt8], path: String) throws -> IDXArray {
        var bytes = raw
        if raw.count >= 2 && raw[0] == 0x1f && raw[1] == 0x8b {
            // The header (at most 4 + 4·255 bytes) first: its dimensions bound what the data may inflate to,
            // so a small file declaring gigabytes is refused before anything large is allocated.
            do {
                let head = try Zlib.decompress(raw, format: .gzip, limit: 4 + 4 * 255, truncating: true)
                let expected: Int
                do { expected = try dataLength(head, path: path, complete: false) } catch {
                    // A bad header may come from a damaged stream: say so when the stream itself is bad.
                    try Zlib.verify(raw, format: .gzip)
                    throw error
                }
                bytes = try Zlib.decompress(raw, format: .gzip, limit: expected)
            } catch let failure as Zlib.Failure {
                throw DatasetError.corruptCompressedFile(path: path, reason: failure.message)
            }
        }
        guard bytes.count >= 4 else {
            throw DatasetError.malformedIDX(path: path, reason: "the file has \(bytes.count) bytes, shorter than the 4-byte header")
        }
        guard bytes[0] == 0, bytes[1] == 0 else {
            throw DatasetError.badIDXMagic(path: path, found: Array(bytes[0..<4]))
        }
        let type = bytes[2]
        let rank = Int(bytes[3])
        guard type == 0x08 else {
            let names: [UInt8: String] = [0x09: "signed byte", 0x0B: "int16", 0x0C: "int32", 0x0D: "float32", 0x0E: "float64"]
            if let name = names[type] {
                throw DatasetError.malformedIDX(path: path, reason: "element type \(name) (0x\(String(type, radix: 16))) is not supported; MNIST-style files hold unsigned bytes (0x08)")
            }
            throw DatasetError.badIDXMagic(path: path, found: Array(bytes[0..<4]))
        }
        guard rank >= 1 else {
            throw DatasetError.malformedIDX(path: path, reason: "rank 0 in the header")
        }
        let headerLength = 4 + 4 * rank
        guard bytes.count >= headerLength else {
            throw DatasetError.malformedIDX(path: path, reason: "truncated header: rank \(rank) needs \(headerLength) bytes, the file has \(bytes.count)")
        }
        var dimensions: [Int] = []
        var total = 1
        for i in 0..<rank {
            let o = 4 + 4 * i
            let d = Int(bytes[o]) << 24 | Int(bytes[o + 1]) << 16 | Int(bytes[o + 2]) << 8 | Int(bytes[o + 3])
            guard d > 0 else {
                throw DatasetError.malformedIDX(path: path, reason: "dimension \(i) is 0")
            }
            dimensions.append(d)
            total = total.multipliedReportingOverflow(by: d).overflow ? Int.max : total * d
            guard total <= maximumElements else {
                throw DatasetError.malformedIDX(path: path, reason: "dimensions \(dimensions) describe more than 2^31 elements")
            }
        }
        let body = bytes.count - headerLength
        if body < total {
            throw DatasetError.malformedIDX(path: path, reason: "truncated: dimensions \(dimensions) need \(total) data bytes, the file has \(body)")
        }
        if body > total {
            throw DatasetError.malformedIDX(path: path, reason: "\(body - total) bytes after the \(total) data bytes that dimensions \(dimensions) describe")
        }
        return IDXArray(dimensions: dimensions, bytes: Array(bytes[headerLength...]))
    }

    /// Header length plus data bytes that an IDX header declares (the file size it must have), checked
    /// against `maximumElements`. `complete: false` accepts a prefix of the file.
    static func dataLength(_ bytes: [UInt8], path: String, complete: Bool) throws -> Int {
        guard bytes.count >= 4 else {
            throw DatasetError.malformedIDX(path: path, reason: "the file has \(bytes.count) bytes, shorter than the 4-byte header")
        }
        guard bytes[0] == 0, bytes[1] == 0 else { throw DatasetError.badIDXMagic(path: path, found: Array(bytes[0..<4])) }
        let rank = Int(bytes[3])
        let headerLength = 4 + 4 * rank
        guard bytes.count >= headerLength else {
            throw DatasetError.malformedIDX(path: path, reason: "truncated header: rank \(rank) needs \(headerLength) bytes, the file has \(bytes.count)")
        }
        var total = 1
        for i in 0..<rank {
            let o = 4 + 4 * i
            let d = Int(bytes[o]) << 24 | Int(bytes[o + 1]) << 16 | Int(bytes[o + 2]) << 8 | Int(bytes[o + 3])
            total = total.multipliedReportingOverflow(by: max(d, 0)).overflow ? Int.max : total * max(d, 0)
            guard total <= maximumElements else {
                throw DatasetError.malformedIDX(path: path, reason: "the header's dimensions describe more than 2^31 elements")
            }
        }
        return headerLength + total
    }

    static func readFile(_ path: String) throws -> [UInt8] {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            let exists = FileManager.default.fileExists(atPath: path)
            throw DatasetError.unreadableFile(path: path, reason: exists ? "permission denied or not a regular file" : "no such file")
        }
        defer { try? handle.close() }
        do {
            let data = try handle.readToEnd() ?? Data()
            return [UInt8](data)
        } catch {
            throw DatasetError.unreadableFile(path: path, reason: "\(error)")
        }
    }
}

/// Images and labels of an MNIST-style pair of IDX files, as bytes.
public struct IDXImageSet: Sendable {
    /// [count, rows, columns] unsigned bytes, row-major.
    public var pixels: [UInt8]
    public var labels: [Int]
    public var rows: Int
    public var columns: Int
    public var count: Int { labels.count }

    public init(pixels: [UInt8], labels: [Int], rows: Int, columns: Int) {
        precondition(pixels.count == labels.count * rows * columns,
                     "IDXImageSet: \(pixels.count) pixels for \(labels.count) images of \(rows)x\(columns)")
        self.pixels = pixels; self.labels = labels; self.rows = rows; self.columns = columns
    }

    /// Reads an images file (rank 3) and a labels file (rank 1) and checks they match.
    public static func read(images imagesPath: String, labels labelsPath: String, classes: Int = 10) throws -> IDXImageSet {
        let images = try IDX.read(path: imagesPath)
        let labels = try IDX.read(path: labelsPath)
        guard images.dimensions.count == 3 else {
            throw DatasetError.malformedIDX(path: imagesPath, reason: "an images file has rank 3 [count, rows, columns], this one has dimensions \(images.dimensions)")
        }
        guard labels.dimensions.count == 1 else {
            throw DatasetError.malformedIDX(path: labelsPath, reason: "a labels file has rank 1 [count], this one has dimensions \(labels.dimensions)")
        }
        guard images.dimensions[0] == labels.dimensions[0] else {
            throw DatasetError.mismatchedIDXFiles(images: imagesPath, labels: labelsPath,
                                                  reason: "\(images.dimensions[0]) images but \(labels.dimensions[0]) labels")
        }
        if let bad = labels.bytes.first(where: { Int($0) >= classes }) {
            throw DatasetError.mismatchedIDXFiles(images: imagesPath, labels: labelsPath,
                                                  reason: "label \(bad) is outside 0..<\(classes)")
        }
        return IDXImageSet(pixels: images.bytes, labels: labels.bytes.map { Int($0) },
                           rows: images.dimensions[1], columns: images.dimensions[2])
    }

    /// Appends another set with the same image size (e.g. train followed by test).
    public mutating func append(_ other: IDXImageSet) {
        precondition(other.rows == rows && other.columns == columns,
                     "IDXImageSet.append: \(rows)x\(columns) vs \(other.rows)x\(other.columns)")
        pixels += other.pixels
        labels += other.labels
    }
}
