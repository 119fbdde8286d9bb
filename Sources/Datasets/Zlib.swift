// gzip / zlib streams through the system zlib (Foundation on Linux has no decompression).
// `inflateInit2` and `deflateInit2` are C macros that Swift cannot import, so the underlying
// `inflateInit2_` / `deflateInit2_` are called with the version string and struct size the
// macros would pass (zlib.h).
import CZlib
import Foundation

public enum Zlib {
    /// Container of a deflate stream.
    public enum Format: Sendable {
        /// RFC 1952 gzip (what `.gz` files hold).
        case gzip
        /// RFC 1950 zlib (what PNG IDAT chunks hold).
        case zlib
        /// RFC 1951 raw deflate, no header.
        case raw

        /// zlib's `windowBits` for this container (15 = 32 KiB window).
        var windowBits: Int32 {
            switch self {
            case .gzip: return 15 + 16
            case .zlib: return 15
            case .raw: return -15
            }
        }
    }

    /// Why a stream could not be decompressed; `message` is zlib's own text when it has one.
    public struct Failure: Error, Equatable, CustomStringConvertible {
        public var code: Int32
        public var message: String
        public var description: String { "zlib error \(code): \(message)" }
    }

    /// Inflates `data`. With `format == nil` the header is detected (gzip or zlib, windowBits 15+32).
    /// Concatenated gzip members are inflated one after another, as `gunzip` does.
    /// With `limit`, at most `limit` bytes are produced: `truncating` true returns the first `limit`
    /// bytes (to read a header without inflating the rest), false throws once the output would exceed it.
    /// Inflates the whole stream and checks it (CRC, length) without keeping the output: constant memory,
    /// for telling a corrupt file from a well-formed one whose content is wrong.
    public static func verify(_ data: [UInt8], format: Format? = nil) throws {
        _ = try decompress(data, format: format, limit: Int.max, truncating: false, keep: false)
    }

    public static func decompress(_ data: [UInt8], format: Format? = nil, limit: Int = Int.max, truncating: Bool = false) throws -> [UInt8] {
        try decompress(data, format: format, limit: limit, truncating: truncating, keep: true)
    }

    static func decompress(_ data: [UInt8], format: Format?, limit: Int, truncating: Bool, keep: Bool) throws -> [UInt8] {
        if data.isEmpty { throw Failure(code: Z_BUF_ERROR, message: "empty input") }
        var output = [UInt8]()
        if keep { output.reserveCapacity(min(max(data.count * 4, 1024), limit)) }
        var stream = z_stream()
        let bits = format?.windowBits ?? (15 + 32)
        var status = inflateInit2_(&stream, bits, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else { throw Failure(code: status, message: "inflateInit2 failed") }
        defer { inflateEnd(&stream) }

        let chunk = 1 << 18
        var scratch = [UInt8](repeating: 0, count: chunk)
        try data.withUnsafeBufferPointer { input in
            stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress!)
            stream.avail_in = uInt(input.count)
            while true {
                let produced: Int = scratch.withUnsafeMutableBufferPointer { out in
                    stream.next_out = out.baseAddress!
                    stream.avail_out = uInt(chunk)
                    status = inflate(&stream, Z_NO_FLUSH)
                    return chunk - Int(stream.avail_out)
                }
                if output.count + produced > limit {
                    if truncating {
                        output.append(contentsOf: scratch[0..<(limit - output.count)])
                        return
                    }
                    throw Failure(code: Z_DATA_ERROR, message: "the data inflates to more than \(limit) bytes")
                }
                if keep { output.append(contentsOf: scratch[0..<produced]) }
                if truncating && output.count == limit { return }
                if status == Z_STREAM_END {
                    // Another gzip member may follow (concatenated .gz files).
                    if stream.avail_in > 0 && (format == nil || format == .gzip) {
                        status = inflateReset(&stream)
                        guard status == Z_OK else { throw Failure(code: status, message: "inflateReset failed") }
                        continue
                    }
                    break
                }
                if status == Z_OK { continue }
                if status == Z_BUF_ERROR && stream.avail_in == 0 {
                    throw Failure(code: Z_BUF_ERROR, message: "unexpected end of compressed data (truncated file?)")
                }
                let text = stream.msg.map { String(cString: $0) } ?? "corrupt compressed data"
                throw Failure(code: status, message: text)
            }
        }
        return output
    }

    /// Deflates `data` into the given container (level 6 by default, zlib's default).
    public static func compress(_ data: [UInt8], format: Format = .gzip, level: Int32 = 6) -> [UInt8] {
        var stream = z_stream()
        let status = deflateInit2_(&stream, level, Z_DEFLATED, format.windowBits, 8, Z_DEFAULT_STRATEGY,
                                   ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        precondition(status == Z_OK, "deflateInit2 failed with \(status)")
        defer { deflateEnd(&stream) }
        let bound = Int(deflateBound(&stream, uLong(data.count))) + 64
        var output = [UInt8](repeating: 0, count: bound)
        var written = 0
        data.withUnsafeBufferPointer { input in
            output.withUnsafeMutableBufferPointer { out in
                stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress ?? UnsafePointer(out.baseAddress!))
                stream.avail_in = uInt(input.count)
                stream.next_out = out.baseAddress!
                stream.avail_out = uInt(bound)
                let result = deflate(&stream, Z_FINISH)
                precondition(result == Z_STREAM_END, "deflate did not finish in one call (\(result))")
                written = bound - Int(stream.avail_out)
            }
        }
        output.removeSubrange(written...)
        return output
    }

    /// CRC-32 (ISO 3309, as used by gzip and PNG) of `data`, continuing from `crc`.
    public static func crc32(_ data: [UInt8], continuing crc: UInt32 = 0) -> UInt32 {
        data.withUnsafeBufferPointer { p in
            UInt32(CZlib.crc32(uLong(crc), p.baseAddress, uInt(p.count)))
        }
    }
}
