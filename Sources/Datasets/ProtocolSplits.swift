// DomainBed's per-domain in/out split, reproduced bit for bit (docs/data.md §6):
//   out, in = split_dataset(env, int(len(env) * holdout_fraction), seed_hash(trial_seed, env_i))
//   seed_hash(*args) = int(hashlib.md5(str(args).encode("utf-8")).hexdigest(), 16) % 2**31
//   split_dataset: keys = list(range(n)); np.random.RandomState(seed).shuffle(keys);
//                  the first n_out keys are "out", the rest "in" (in shuffled order).
// So this file holds MD5 (RFC 1321), MT19937 with numpy's legacy integer seeding (init_genrand,
// Matsumoto & Nishimura 1998), numpy's `random_interval` (mask to the next power of two minus one,
// reject draws above the bound, 32-bit draws while the bound fits 32 bits) and the legacy
// `RandomState.shuffle` loop (for i = n−1 … 1: j = random_interval(i); swap x[i], x[j]).
// Tests compare against permutations produced by numpy 2.4 (scripts/make_split_fixture.py).
import Foundation

// MARK: MD5

public enum MD5 {
    /// Per-round left-rotation amounts (RFC 1321 §3.4).
    private static let shifts: [UInt32] = [7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
                                           5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
                                           4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
                                           6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21]
    /// K[i] = floor(2^32 · |sin(i + 1)|).
    private static let constants: [UInt32] = (0..<64).map { UInt32(truncatingIfNeeded: Int64(abs(sin(Double($0 + 1))) * 4_294_967_296.0)) }

    /// The 16-byte digest of `message`.
    public static func digest(_ message: [UInt8]) -> [UInt8] {
        var a0: UInt32 = 0x6745_2301, b0: UInt32 = 0xefcd_ab89, c0: UInt32 = 0x98ba_dcfe, d0: UInt32 = 0x1032_5476
        // Padding: 0x80, zeros to 56 mod 64, then the bit length little-endian.
        var bytes = message
        bytes.append(0x80)
        while bytes.count % 64 != 56 { bytes.append(0) }
        let bitLength = UInt64(message.count) &* 8
        for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: bitLength >> (8 * UInt64(i)))) }
        var words = [UInt32](repeating: 0, count: 16)
        for chunk in stride(from: 0, to: bytes.count, by: 64) {
            for i in 0..<16 {
                let o = chunk + 4 * i
                words[i] = UInt32(bytes[o]) | UInt32(bytes[o + 1]) << 8 | UInt32(bytes[o + 2]) << 16 | UInt32(bytes[o + 3]) << 24
            }
            var a = a0, b = b0, c = c0, d = d0
            for i in 0..<64 {
                var f: UInt32
                let g: Int
                switch i {
                case 0..<16: f = (b & c) | (~b & d); g = i
                case 16..<32: f = (d & b) | (~d & c); g = (5 * i + 1) % 16
                case 32..<48: f = b ^ c ^ d; g = (3 * i + 5) % 16
                default: f = c ^ (b | ~d); g = (7 * i) % 16
                }
                f = f &+ a &+ constants[i] &+ words[g]
                a = d; d = c; c = b
                b = b &+ ((f << shifts[i]) | (f >> (32 - shifts[i])))
            }
            a0 = a0 &+ a; b0 = b0 &+ b; c0 = c0 &+ c; d0 = d0 &+ d
        }
        var out: [UInt8] = []
        for v in [a0, b0, c0, d0] { for i in 0..<4 { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) } }
        return out
    }

    /// Lower-case hex digest of the UTF-8 bytes of `text` (Python's `hexdigest()`).
    public static func hexDigest(_ text: String) -> String {
        digest(Array(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}

// MARK: MT19937 and numpy's legacy RandomState

/// The 32-bit Mersenne Twister, seeded as numpy's `RandomState(seed)` for an integer seed.
public struct MersenneTwister: Codable, Equatable, Sendable {
    public var state: [UInt32]
    public var index: Int

    /// init_genrand: key[0] = seed, key[i] = 1812433253 · (key[i−1] ⊕ (key[i−1] ≫ 30)) + i.
    public init(seed: UInt32) {
        var s = [UInt32](repeating: 0, count: 624)
        s[0] = seed
        for i in 1..<624 { s[i] = 1_812_433_253 &* (s[i - 1] ^ (s[i - 1] >> 30)) &+ UInt32(i) }
        state = s
        index = 624
    }

    private mutating func twist() {
        let upper: UInt32 = 0x8000_0000, lower: UInt32 = 0x7fff_ffff
        for i in 0..<624 {
            let y = (state[i] & upper) | (state[(i + 1) % 624] & lower)
            var v = state[(i + 397) % 624] ^ (y >> 1)
            if y & 1 != 0 { v ^= 0x9908_b0df }
            state[i] = v
        }
        index = 0
    }

    /// genrand_int32 with the standard tempering.
    public mutating func nextUInt32() -> UInt32 {
        if index >= 624 { twist() }
        var y = state[index]
        index += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9d2c_5680
        y ^= (y << 15) & 0xefc6_0000
        y ^= y >> 18
        return y
    }

    /// numpy's next_uint64 for MT19937: high word first.
    public mutating func nextUInt64() -> UInt64 {
        let hi = UInt64(nextUInt32())
        return hi << 32 | UInt64(nextUInt32())
    }
}

/// The parts of `numpy.random.RandomState` the DomainBed split uses.
public struct NumpyRandomState: Codable, Equatable, Sendable {
    public var twister: MersenneTwister

    /// `np.random.RandomState(seed)` for 0 ≤ seed < 2^32.
    public init(seed: UInt32) { twister = MersenneTwister(seed: seed) }

    /// numpy `random_interval(max)`: uniform in 0...max by masked rejection.
    public mutating func interval(_ max: UInt64) -> UInt64 {
        if max == 0 { return 0 }
        var mask = max
        mask |= mask >> 1; mask |= mask >> 2; mask |= mask >> 4
        mask |= mask >> 8; mask |= mask >> 16; mask |= mask >> 32
        if max <= 0xffff_ffff {
            while true {
                let v = UInt64(twister.nextUInt32()) & mask
                if v <= max { return v }
            }
        }
        while true {
            let v = twister.nextUInt64() & mask
            if v <= max { return v }
        }
    }

    /// `RandomState.shuffle(x)` for a list or 1-d array.
    public mutating func shuffle<T>(_ x: inout [T]) {
        guard x.count > 1 else { return }
        for i in stride(from: x.count - 1, through: 1, by: -1) {
            let j = Int(interval(UInt64(i)))
            x.swapAt(i, j)
        }
    }
}

// MARK: DomainBed split

public enum DomainBedHash {
    /// `str(tuple)` of Python integers: "(0, 1)", "(5,)", "()".
    public static func pythonTupleString(_ values: [Int]) -> String {
        if values.count == 1 { return "(\(values[0]),)" }
        return "(" + values.map(String.init).joined(separator: ", ") + ")"
    }

    /// DomainBed `misc.seed_hash(*args)` for integer arguments.
    public static func seedHash(_ args: [Int]) -> UInt32 {
        let digest = MD5.digest(Array(pythonTupleString(args).utf8))
        // The hex digest read as a big-endian 128-bit integer, mod 2^31: its low 31 bits.
        let low = UInt32(digest[12]) << 24 | UInt32(digest[13]) << 16 | UInt32(digest[14]) << 8 | UInt32(digest[15])
        return low & 0x7fff_ffff
    }
}

/// Which half of a domain's split.
public enum SplitPart: String, Codable, Sendable {
    /// 80 %: training data of training domains; the test accuracy of test domains.
    case `in`
    /// 20 %: validation data (train-domain validation selection).
    case out
}

/// A domain's in/out split as positions into the domain.
public struct DomainSplit: Codable, Equatable, Sendable {
    public var inIndices: [Int]
    public var outIndices: [Int]

    public init(inIndices: [Int], outIndices: [Int]) { self.inIndices = inIndices; self.outIndices = outIndices }

    public func indices(_ part: SplitPart) -> [Int] { part == .in ? inIndices : outIndices }

    /// DomainBed's split of a domain of `count` examples, environment `domainIndex`, trial `trialSeed`.
    public static func domainBed(count: Int, trialSeed: Int, domainIndex: Int, holdoutFraction: Double = 0.2) -> DomainSplit {
        precondition(count >= 0 && holdoutFraction >= 0 && holdoutFraction <= 1,
                     "split of \(count) examples with holdout \(holdoutFraction)")
        // Python int(len * fraction): Double product truncated toward zero.
        let outCount = Int(Double(count) * holdoutFraction)
        var keys = Array(0..<count)
        var state = NumpyRandomState(seed: DomainBedHash.seedHash([trialSeed, domainIndex]))
        state.shuffle(&keys)
        return DomainSplit(inIndices: Array(keys[outCount...]), outIndices: Array(keys[..<outCount]))
    }
}

extension DomainDataset {
    /// DomainBed splits of every domain for one trial seed (environment index = domain position).
    public func domainBedSplits(trialSeed: Int, holdoutFraction: Double = 0.2) -> [DomainSplit] {
        domains.enumerated().map { i, d in
            DomainSplit.domainBed(count: d.count, trialSeed: trialSeed, domainIndex: i, holdoutFraction: holdoutFraction)
        }
    }
}
