// A fast 64-bit content hash for cache keys: every byte that determines a surface goes through it
// (all parameter and buffer values, the endpoint model, the options, the grid, the evaluation
// descriptor), so a single changed weight bit yields a different key.
//
// Construction (in the style of xxHash64, written here from its published design, not bit-compatible):
// four 64-bit lanes each absorb one 8-byte little-endian word of every 32-byte stripe with
//   lane ← rotl(lane + word·P2, 31)·P1,
// the lanes are merged by rotations and one more round each, then the remaining tail is absorbed
// word by word and byte by byte, and a final xor-shift-multiply avalanche spreads every input bit
// over the output. Multiplication alone only carries bits upwards; the rotations bring the high
// bits back down, which plain word-wise FNV-1a would not. The four independent lanes let the CPU
// overlap the multiplies (several GB/s).
import Foundation
import TensorCore

/// Streaming 64-bit hasher. Feed values with `combine`, read `finalize()`. Deterministic across runs
/// and machines of the same endianness (unlike Swift's `Hasher`, which is randomly seeded per process).
public struct ContentHasher {
    static let prime1: UInt64 = 0x9E37_79B1_85EB_CA87
    static let prime2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    static let prime3: UInt64 = 0x1656_67B1_9E37_79F9
    static let prime4: UInt64 = 0x85EB_CA77_C2B2_AE63
    static let prime5: UInt64 = 0x27D4_EB2F_1656_67C5

    private var lanes: (UInt64, UInt64, UInt64, UInt64)
    /// Bytes not yet forming a whole 32-byte stripe (at most 31 used).
    private var pending: [UInt8] = []
    private var totalBytes: UInt64 = 0
    private let seed: UInt64

    public init(seed: UInt64 = 0) {
        self.seed = seed
        lanes = (seed &+ Self.prime1 &+ Self.prime2, seed &+ Self.prime2, seed, seed &- Self.prime1)
        pending.reserveCapacity(32)
    }

    @inline(__always) static func round(_ lane: UInt64, _ word: UInt64) -> UInt64 {
        let x = lane &+ word &* prime2
        return ((x << 31) | (x >> 33)) &* prime1
    }

    @inline(__always) static func rotl(_ x: UInt64, _ r: UInt64) -> UInt64 { (x << r) | (x >> (64 - r)) }

    /// Absorbs whole stripes of `bytes` starting at `start`; returns where the unabsorbed tail begins.
    private mutating func absorbStripes(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        var (a, b, c, d) = lanes
        var i = start
        let n = bytes.count
        // bytes is (n) raw; each stripe is 4 little-endian UInt64 words.
        while i + 32 <= n {
            a = Self.round(a, UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)))
            b = Self.round(b, UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self)))
            c = Self.round(c, UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: i + 16, as: UInt64.self)))
            d = Self.round(d, UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: i + 24, as: UInt64.self)))
            i += 32
        }
        lanes = (a, b, c, d)
        return i
    }

    /// Absorbs raw bytes.
    public mutating func combine(bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        totalBytes &+= UInt64(bytes.count)
        var start = 0
        if !pending.isEmpty {
            let take = min(32 - pending.count, bytes.count)
            pending.append(contentsOf: bytes[0..<take])
            start = take
            if pending.count == 32 {
                pending.withUnsafeBytes { _ = absorbStripes($0, from: 0) }
                pending.removeAll(keepingCapacity: true)
            } else {
                return
            }
        }
        let end = absorbStripes(bytes, from: start)
        if end < bytes.count { pending.append(contentsOf: bytes[end..<bytes.count]) }
    }

    public mutating func combine(_ value: UInt64) {
        withUnsafeBytes(of: value.littleEndian) { combine(bytes: $0) }
    }

    public mutating func combine(_ value: Int) { combine(UInt64(bitPattern: Int64(value))) }

    /// Doubles by bit pattern (so -0.0 and 0.0 differ, as they do for the evaluation).
    public mutating func combine(_ value: Double) { combine(value.bitPattern) }

    public mutating func combine(_ value: Bool) { combine(UInt64(value ? 1 : 0)) }

    /// Length-prefixed UTF-8, so ("ab", "c") and ("a", "bc") differ.
    public mutating func combine(_ text: String) {
        var utf8 = Array(text.utf8)
        combine(utf8.count)
        utf8.withUnsafeMutableBytes { combine(bytes: UnsafeRawBufferPointer($0)) }
    }

    /// Shape (rank first) then the raw Float bits of every element.
    public mutating func combine(_ tensor: Tensor) {
        combine(tensor.shape.count)
        for d in tensor.shape { combine(d) }
        tensor.data.withUnsafeBytes { combine(bytes: $0) }
    }

    /// The 64-bit digest of everything combined so far (the hasher can keep absorbing afterwards).
    public func finalize() -> UInt64 {
        var h: UInt64
        if totalBytes >= 32 {
            let (a, b, c, d) = lanes
            h = Self.rotl(a, 1) &+ Self.rotl(b, 7) &+ Self.rotl(c, 12) &+ Self.rotl(d, 18)
            for lane in [a, b, c, d] {
                h = (h ^ Self.round(0, lane)) &* Self.prime1 &+ Self.prime4
            }
        } else {
            h = seed &+ Self.prime5
        }
        h &+= totalBytes
        pending.withUnsafeBytes { tail in
            var i = 0
            // tail is (< 32) bytes: whole words, then single bytes.
            while i + 8 <= tail.count {
                let w = UInt64(littleEndian: tail.loadUnaligned(fromByteOffset: i, as: UInt64.self))
                h ^= Self.round(0, w)
                h = Self.rotl(h, 27) &* Self.prime1 &+ Self.prime4
                i += 8
            }
            while i < tail.count {
                h ^= UInt64(tail[i]) &* Self.prime5
                h = Self.rotl(h, 11) &* Self.prime1
                i += 1
            }
        }
        // Avalanche: every input bit affects every output bit with probability about 1/2.
        h ^= h >> 33
        h &*= Self.prime2
        h ^= h >> 29
        h &*= Self.prime3
        h ^= h >> 32
        return h
    }
}

/// A 64-bit content key, printed as 16 lowercase hex digits.
public struct LandscapeKey: Hashable, Codable, Sendable, CustomStringConvertible {
    public var value: UInt64
    public init(value: UInt64) { self.value = value }
    public var hex: String {
        let s = String(value, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }
    public var description: String { hex }

    /// Parses 1–16 hex digits.
    public init?(hex: String) {
        guard !hex.isEmpty, hex.count <= 16, let v = UInt64(hex, radix: 16) else { return nil }
        value = v
    }

    // Stored as a hex string: JSON numbers above 2^53 do not survive every reader.
    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let k = LandscapeKey(hex: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a hex key: \(text)"))
        }
        self = k
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(hex)
    }
}
