// A seeded, reproducible random number generator: xoshiro256** seeded through SplitMix64
// (Blackman & Vigna, "Scrambled linear pseudorandom number generators", 2021).
// Same seed, same stream, on every machine: no system randomness anywhere in the engine.

public struct RNG: RandomNumberGenerator, Codable, Equatable, Sendable {
    public var state: [UInt64]
    /// A spare standard normal from the last Box-Muller pair, so draws come in order.
    public var spareNormal: Float?

    public init(seed: UInt64) {
        var sm = seed
        var s = [UInt64](repeating: 0, count: 4)
        for i in 0..<4 {
            sm &+= 0x9E37_79B9_7F4A_7C15
            var z = sm
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            s[i] = z ^ (z >> 31)
        }
        state = s
    }

    @inline(__always) private static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 {
        (x << k) | (x >> (64 - k))
    }

    public mutating func next() -> UInt64 {
        let result = RNG.rotl(state[1] &* 5, 7) &* 9
        let t = state[1] << 17
        state[2] ^= state[0]
        state[3] ^= state[1]
        state[1] ^= state[2]
        state[0] ^= state[3]
        state[2] ^= t
        state[3] = RNG.rotl(state[3], 45)
        return result
    }

    /// A new independent generator derived from this one's stream (for per-domain samplers etc.).
    public mutating func split() -> RNG { RNG(seed: next()) }

    /// Uniform in [0, 1) with 24 random bits.
    @inline(__always) public mutating func uniform() -> Float {
        Float(next() >> 40) * (1.0 / 16_777_216.0)
    }

    /// Uniform in [lo, hi).
    public mutating func uniform(_ lo: Float, _ hi: Float) -> Float { lo + (hi - lo) * uniform() }

    /// Uniform integer in 0..<n (Lemire's nearly-divisionless method, unbiased).
    public mutating func int(below n: Int) -> Int {
        precondition(n > 0, "int(below:) needs n > 0")
        return Int(next(upperBound: UInt64(n)))
    }

    /// Standard normal by Box-Muller in Double, returned as Float.
    public mutating func normal() -> Float {
        if let s = spareNormal { spareNormal = nil; return s }
        var u1 = 0.0
        repeat { u1 = Double(next() >> 11) * 0x1.0p-53 } while u1 <= 0
        let u2 = Double(next() >> 11) * 0x1.0p-53
        let r = (-2 * log(u1)).squareRoot()
        let th = 2 * Double.pi * u2
        spareNormal = Float(r * sin(th))
        return Float(r * cos(th))
    }

    public mutating func normal(mean: Float, std: Float) -> Float { mean + std * normal() }

    /// A uniformly random permutation of 0..<n (Fisher-Yates).
    public mutating func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<n)
        if n < 2 { return p }
        for i in stride(from: n - 1, to: 0, by: -1) {
            let j = int(below: i + 1)
            p.swapAt(i, j)
        }
        return p
    }

    /// A tensor of independent N(mean, std²) draws.
    public mutating func normalTensor(_ shape: [Int], mean: Float = 0, std: Float = 1) -> Tensor {
        var t = Tensor(shape: shape)
        for i in 0..<t.count { t.data[i] = mean + std * normal() }
        return t
    }

    /// A tensor of independent U[lo, hi) draws.
    public mutating func uniformTensor(_ shape: [Int], _ lo: Float, _ hi: Float) -> Tensor {
        var t = Tensor(shape: shape)
        for i in 0..<t.count { t.data[i] = uniform(lo, hi) }
        return t
    }
}

import Foundation

extension RNG {
    /// A seed derived from several parts (SplitMix64 finaliser over each part), so independent
    /// streams — per-domain samplers, dropout, calibration — come from one session seed.
    public static func seed(combining parts: UInt64...) -> UInt64 {
        mix(parts, from: 0x243F_6A88_85A3_08D3)
    }

    /// The mixer behind `seed(combining:)`, from a chosen starting word. Datasets' `mixSeed` starts
    /// from another constant, kept so that the built-in benchmarks stay the same images.
    public static func mix(_ parts: [UInt64], from start: UInt64) -> UInt64 {
        var h = start
        for p in parts {
            h ^= p &+ 0x9E37_79B9_7F4A_7C15 &+ (h << 6) &+ (h >> 2)
            var z = h
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            h = z ^ (z >> 31)
        }
        return h
    }
}
