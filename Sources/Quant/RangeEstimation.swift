// Step-size initialisation (docs/quantization.md §2): the LSQ rule, min-max, and the MSE grid search of
// Nagel et al. 2021 ("A White Paper on Neural Network Quantization", §3.4; QC range_estimators.py
// MSE_Estimator, grid method). Estimators accumulate over several batches and return one step
// size per channel (1 for per-tensor), never below `Quantizer.minimumScale`.
import TensorCore

/// How the initial step size is chosen.
/// The raw values are the words of `quantize … init=` (the shell's default, mse, first).
public enum RangeInitMethod: String, Codable, Sendable, CaseIterable {
    /// Grid search for the threshold minimising Σ(x − Q(x))² (docs/quantization.md §2).
    case mse
    /// s0 = 2·mean|x|/sqrt(Qp) (LSQ paper; LSQF/LSQZ lsq.py), per channel for per-channel scales.
    case lsq
    /// The smallest s that represents the observed [min, max] without clipping.
    case minMax = "minmax"

    /// Also reads "minMax", the raw value of files written before the raw values were the shell's words.
    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        let word = try container.decode(String.self)
        guard let method = RangeInitMethod(rawValue: word == "minMax" ? "minmax" : word) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "range initialisation '\(word)' is not one of mse, lsq, minmax")
        }
        self = method
    }
}

/// Extra room above the observed magnitude for the MSE search bound T.
public enum RangeMargin: Sendable, Equatable, Codable {
    /// T = max|x| + m (QC's default is 0.5, designed for activations of magnitude 1–10).
    case absolute(Float)
    /// T = max|x|·(1 + m): scale-free, so small weights (|w| ~ 0.1) keep a fine grid.
    case relative(Float)
}

public struct MSESearchOptions: Sendable, Equatable {
    /// Number of thresholds t_k = k·T/K, k = 1…K (index 0, t = 0, is excluded as in QC).
    public var candidates: Int
    public var margin: RangeMargin
    /// Per-channel mode: all channels search the same grid (T from the whole tensor, as in QC) when
    /// true; each channel gets its own T_c when false.
    public var sharedChannelGrid: Bool

    public init(candidates: Int = 100, margin: RangeMargin = .relative(0.2), sharedChannelGrid: Bool = true) {
        precondition(candidates >= 1, "MSE search needs at least one candidate")
        self.candidates = candidates
        self.margin = margin
        self.sharedChannelGrid = sharedChannelGrid
    }

    /// QC's exact setting: 100 candidates, T = max|x| + 0.5, shared grid.
    public static let qualcomm = MSESearchOptions(candidates: 100, margin: .absolute(0.5), sharedChannelGrid: true)
}

/// Accumulates statistics of the tensors it observes and turns them into step sizes for the integer
/// range [lowest, highest]. Channels are contiguous blocks along axis 0.
public final class RangeEstimator {
    public let method: RangeInitMethod
    public let options: MSESearchOptions
    public let channels: Int
    public let lowest: Int
    public let highest: Int
    public private(set) var batches = 0

    private var sumAbs: [Double]
    private var counts: [Int]
    private var minimum: [Float]
    private var maximum: [Float]
    /// MSE: search bound T per channel (fixed at the first batch) and loss[c·K + k].
    private(set) var searchBound: [Float] = []
    private(set) var losses: [Double] = []

    public init(method: RangeInitMethod, options: MSESearchOptions = MSESearchOptions(), channels: Int,
                lowest: Int, highest: Int) {
        precondition(highest > 0 && lowest <= 0, "range [\(lowest), \(highest)] must contain 0 and a positive code")
        self.method = method
        self.options = options
        self.channels = channels
        self.lowest = lowest
        self.highest = highest
        sumAbs = [Double](repeating: 0, count: channels)
        counts = [Int](repeating: 0, count: channels)
        minimum = [Float](repeating: .infinity, count: channels)
        maximum = [Float](repeating: -.infinity, count: channels)
    }

    /// Smallest and largest value seen so far (over all channels).
    public var observedMinimum: Float { minimum.min() ?? .infinity }
    public var observedMaximum: Float { maximum.max() ?? -.infinity }

    public func observe(_ x: Tensor) {
        precondition(x.count % channels == 0 && x.count > 0,
                     "RangeEstimator: \(x.shape) does not split into \(channels) channels")
        let blockSize = x.count / channels
        x.data.withUnsafeBufferPointer { p in
            // p: [channels][blockSize]
            for c in 0..<channels {
                var lo = Float.infinity, hi = -Float.infinity, sa = 0.0
                for i in (c * blockSize)..<((c + 1) * blockSize) {
                    let v = p[i]
                    if v < lo { lo = v }
                    if v > hi { hi = v }
                    sa += Double(abs(v))
                }
                minimum[c] = min(minimum[c], lo)
                maximum[c] = max(maximum[c], hi)
                sumAbs[c] += sa
                counts[c] += blockSize
            }
        }
        if method == .mse { accumulateSquaredErrors(x) }
        batches += 1
    }

    /// The step sizes implied by everything observed so far.
    public func scales() -> [Float] {
        precondition(batches > 0, "RangeEstimator: no data observed")
        let qp = Float(highest), qn = Float(lowest)
        var s = [Float](repeating: 1, count: channels)
        for c in 0..<channels {
            switch method {
            case .lsq:
                s[c] = Float(2 * (sumAbs[c] / Double(counts[c])) / Double(highest).squareRoot())
            case .minMax:
                // Positive side needs s ≥ max/Qp; the negative side s ≥ min/Qn (Qn < 0 only).
                let positive = maximum[c] > 0 ? maximum[c] / qp : 0
                let negative = (qn < 0 && minimum[c] < 0) ? minimum[c] / qn : 0
                s[c] = max(positive, negative)
            case .mse:
                let k = bestCandidate(channel: c)
                s[c] = candidateStep(channel: c, k: k)
            }
            s[c] = max(s[c], Quantizer.minimumScale)
        }
        return s
    }

    // MARK: - MSE grid search

    /// Step of candidate k (1-based): t_k/Qp with t_k = k·T/K.
    func candidateStep(channel c: Int, k: Int) -> Float {
        let t = Float(k) * searchBound[c] / Float(options.candidates)
        return t / Float(highest)
    }

    /// First minimum over k = 1…K.
    func bestCandidate(channel c: Int) -> Int {
        let kCount = options.candidates
        return RangeEstimator.firstMinimum(losses[(c * kCount)..<((c + 1) * kCount)]) + 1
    }

    /// Offset (from the slice start) of the first smallest loss: ties go to the smaller threshold.
    static func firstMinimum(_ losses: ArraySlice<Double>) -> Int {
        var best = 0
        var bestLoss = Double.infinity
        for (offset, l) in losses.enumerated() where l < bestLoss {
            bestLoss = l
            best = offset
        }
        return best
    }

    private func bound(forMagnitude m: Float) -> Float {
        var t: Float
        switch options.margin {
        case .absolute(let a): t = m + a
        case .relative(let r): t = m * (1 + r)
        }
        // An all-zero tensor: any grid gives zero loss; keep the steps finite and positive.
        if !(t > 0) { t = Quantizer.minimumScale * Float(highest) * Float(options.candidates) }
        return t
    }

    private func accumulateSquaredErrors(_ x: Tensor) {
        let kCount = options.candidates
        if losses.isEmpty {
            // The grid is fixed at the first batch (QC), so losses of later batches add up.
            if options.sharedChannelGrid || channels == 1 {
                let m = max(abs(minimum.min()!), maximum.max()!)
                searchBound = [Float](repeating: bound(forMagnitude: m), count: channels)
            } else {
                searchBound = (0..<channels).map { bound(forMagnitude: max(abs(minimum[$0]), maximum[$0])) }
            }
            losses = [Double](repeating: 0, count: channels * kCount)
        }
        let blockSize = x.count / channels
        let qn = Float(lowest), qp = Float(highest)
        var batchLoss = [Double](repeating: 0, count: channels * kCount)
        x.data.withUnsafeBufferPointer { xp in
            batchLoss.withUnsafeMutableBufferPointer { lp in
                let lbase = lp.baseAddress!
                // One candidate per work item: each loss is computed by one thread in a fixed order.
                Parallel.forEach(kCount, costPerItem: x.count * 8) { ks in
                    for kIndex in ks {
                        for c in 0..<channels {
                            let step = self.candidateStep(channel: c, k: kIndex + 1)
                            lbase[c * kCount + kIndex] = squaredQuantizationError(
                                xp.baseAddress! + c * blockSize, count: blockSize, step: step, lowest: qn, highest: qp)
                        }
                    }
                }
            }
        }
        for i in 0..<losses.count { losses[i] += batchLoss[i] }
    }
}

/// Σ (x − s·clamp(round½even(x/s), Qn, Qp))² over n elements, in the quantizer's own arithmetic.
/// Float lanes for up to 4096 elements, then Double.
func squaredQuantizationError(_ x: UnsafePointer<Float>, count n: Int, step: Float, lowest: Float, highest: Float) -> Double {
    let vs = SIMD8<Float>(repeating: step)
    let vqn = SIMD8<Float>(repeating: lowest), vqp = SIMD8<Float>(repeating: highest)
    var total = 0.0
    var i = 0
    while i < n {
        let end = min(n, i + 4096)
        var acc = SIMD8<Float>()
        while i + 8 <= end {
            let xv = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
            var v = xv / vs
            v = v.replacing(with: vqn, where: v .< vqn)
            v = v.replacing(with: vqp, where: v .> vqp)
            let e = xv - roundHalfEven(v) * vs
            acc += e * e
            i += 8
        }
        var tail: Float = 0
        while i < end {
            let v = min(max(x[i] / step, lowest), highest)
            let e = x[i] - roundHalfEven(v) * step
            tail += e * e
            i += 1
        }
        total += Double(acc.sum()) + Double(tail)
    }
    return total
}
