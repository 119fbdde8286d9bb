// Gradient disorder of quantizer scale factors (FQAT Definition 4.1, Eq. 4; docs/fqat.md, Gradient disorder).
//
// Over a window of K steps with gradients g_{t−K+1} … g_t of one scale factor, A = (g_{t−K+1} …
// g_{t−1}) and B = (g_{t−K+2} … g_t), and
//
//   D = (1/(K−1)) · Σ_{k=1}^{K−1} 1[ A_k · B_k < 0 ]
//
// the share of consecutive gradients with opposite signs. For a per-channel scale with M elements
// the indicator is averaged over elements too: D = flips / (M·(K−1)) [CHOICE: the paper's
// mechanism is layer-wise].
//
// Zeros (our choice, docs/fqat.md, Gradient disorder): by default a flip needs A·B < 0, so a zero gradient never flips. With
// `zeroCountsAsFlip` the literal reading sgn(A) ≠ sgn(B) is used: 0 against ±1 counts, 0 against 0
// does not.
//
// Incremental form: per element the last sign (Int8) and a flip counter; K−1 pairs per window, the
// first gradient of a window pairs with nothing (windows do not overlap, docs/fqat.md, Gradient disorder). Cost is
// O(#scale elements) per step and O(#scale elements) memory. The tracker measures whatever it is
// fed; FQAT feeds g_QAT of every factor at every step, frozen or not.
import TensorCore

/// The disorder of every tracked factor over one completed window.
public struct DisorderWindow: Codable, Equatable, Sendable {
    /// 1-based training step that completed the window (a multiple of K).
    public var endStep: Int
    /// D per factor, aligned with the tracker's `names`; each in [0, 1].
    public var disorder: [Float]
}

public struct DisorderTracker: Codable, Equatable, Sendable {
    /// K: gradients per window (≥ 2, so that a window holds at least one pair).
    public let windowLength: Int
    /// Count 0 against ±1 as a flip (the literal sgn(A) ≠ sgn(B)); default false.
    public let zeroCountsAsFlip: Bool
    /// Factor names, in the order gradients are recorded.
    public let names: [String]

    /// Gradients recorded in the current window (0 ..< K).
    public private(set) var stepsInWindow: Int = 0
    /// Steps recorded over the tracker's life.
    public private(set) var stepsRecorded: Int = 0
    /// Per factor: the sign (−1, 0, 1) of each element's latest gradient in this window.
    private var lastSigns: [[Int8]]
    /// Per factor: flips of each element between consecutive gradients in this window.
    private var flips: [[Int32]]

    public init(names: [String], windowLength: Int, zeroCountsAsFlip: Bool = false) {
        precondition(windowLength >= 2, "a disorder window needs K ≥ 2 steps to hold a pair of gradients; got \(windowLength)")
        precondition(Set(names).count == names.count, "disorder tracker: duplicate factor names in \(names)")
        self.names = names
        self.windowLength = windowLength
        self.zeroCountsAsFlip = zeroCountsAsFlip
        lastSigns = Array(repeating: [], count: names.count)
        flips = Array(repeating: [], count: names.count)
    }

    /// Records one step's gradient of every factor (aligned with `names`). Returns the window's
    /// disorder when this step completes it (every K-th step), and starts a new window.
    public mutating func record(_ gradients: [Tensor]) -> DisorderWindow? {
        precondition(gradients.count == names.count, "disorder tracker: \(gradients.count) gradients for \(names.count) factors")
        let firstOfWindow = stepsInWindow == 0
        for f in 0..<names.count {
            let g = gradients[f]
            if firstOfWindow {
                if lastSigns[f].count != g.count {
                    precondition(stepsRecorded == 0, "disorder tracker: '\(names[f])' changed size from \(lastSigns[f].count) to \(g.count)")
                    lastSigns[f] = [Int8](repeating: 0, count: g.count)
                    flips[f] = [Int32](repeating: 0, count: g.count)
                }
            }
            precondition(g.count == lastSigns[f].count, "disorder tracker: '\(names[f])' gradient has \(g.count) elements, expected \(lastSigns[f].count)")
            let zeroFlips = zeroCountsAsFlip
            // g, last, count are all (M,)
            g.data.withUnsafeBufferPointer { g in
                lastSigns[f].withUnsafeMutableBufferPointer { last in
                    flips[f].withUnsafeMutableBufferPointer { count in
                        for i in 0..<g.count {
                            let s: Int8 = g[i] > 0 ? 1 : (g[i] < 0 ? -1 : 0)
                            if !firstOfWindow {
                                let flipped = zeroFlips ? s != last[i] : Int(s) * Int(last[i]) < 0
                                if flipped { count[i] += 1 }
                            } else {
                                count[i] = 0
                            }
                            last[i] = s
                        }
                    }
                }
            }
        }
        stepsInWindow += 1
        stepsRecorded += 1
        guard stepsInWindow == windowLength else { return nil }
        let window = DisorderWindow(endStep: stepsRecorded, disorder: currentDisorder())
        stepsInWindow = 0
        return window
    }

    /// Disorder of the pairs seen so far in the current window (flips / (M · pairs)); 0 before the
    /// second step of a window. At a window's last step this is Eq. 4.
    public func currentDisorder() -> [Float] {
        let pairs = stepsInWindow - 1
        return (0..<names.count).map { f in
            guard pairs > 0, !flips[f].isEmpty else { return 0 }
            var total = 0
            for c in flips[f] { total += Int(c) }
            return Float(Double(total) / Double(flips[f].count * pairs))
        }
    }
}
