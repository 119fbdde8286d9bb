// Gradient disorder (FQAT Definition 4.1) on constructed sign sequences.
import TensorCore
import XCTest
@testable import Optim

final class DisorderTests: XCTestCase {
    /// Feeds a window of per-step gradients of one factor and returns D.
    func disorder(_ sequence: [[Float]], zeroCountsAsFlip: Bool = false) -> Float? {
        var tracker = DisorderTracker(names: ["s"], windowLength: sequence.count, zeroCountsAsFlip: zeroCountsAsFlip)
        var result: DisorderWindow?
        for (k, g) in sequence.enumerated() {
            result = tracker.record([Tensor(shape: [g.count], data: g)])
            if k < sequence.count - 1 { XCTAssertNil(result, "window closed early at step \(k + 1)") }
        }
        return result?.disorder[0]
    }

    func testAlternatingIsOneConstantIsZero() {
        XCTAssertEqual(disorder([[0.3], [-0.1], [2], [-5], [1e-6]]), 1)
        XCTAssertEqual(disorder([[0.3], [0.1], [2], [5], [1e-6]]), 0)
        XCTAssertEqual(disorder([[-0.3], [-0.1], [-2]]), 0)
    }

    func testProportionOfFlippedPairs() {
        // K = 4 → 3 pairs; + − − + flips at pairs 1 and 3.
        XCTAssertEqual(disorder([[1], [-1], [-1], [1]]), Float(2.0 / 3.0))
        // K = 5 → 4 pairs; + + − − + flips at pairs 2 and 4: exactly 0.5.
        XCTAssertEqual(disorder([[1], [1], [-1], [-1], [1]]), 0.5)
    }

    func testPerChannelScaleAveragesOverElements() {
        // Element 0 alternates (3 flips of 3), element 1 constant (0), element 2 flips once: (3+0+1)/(3·3).
        let d = disorder([[1, 2, 1], [-1, 2, 1], [1, 2, -1], [-1, 2, -1]])
        XCTAssertEqual(d, Float(4.0 / 9.0))
    }

    func testZeroRule() {
        // Default: a flip needs A·B < 0, so + 0 − 0 has none; the literal sgn rule counts 3 of 3.
        XCTAssertEqual(disorder([[1], [0], [-1], [0]]), 0)
        XCTAssertEqual(disorder([[1], [0], [-1], [0]], zeroCountsAsFlip: true), 1)
        // 0 against 0 is never a flip.
        XCTAssertEqual(disorder([[0], [0], [0]], zeroCountsAsFlip: true), 0)
        // + − is a flip under both rules.
        XCTAssertEqual(disorder([[0], [1], [-1]]), 0.5)
    }

    func testWindowsAreIndependentAndEndOnMultiplesOfK() {
        // K = 3: [+ + +] then [− − −]. The sign change between windows is not a pair of either window.
        var tracker = DisorderTracker(names: ["a", "b"], windowLength: 3)
        var windows: [DisorderWindow] = []
        for step in 1...7 {
            let g: Float = step <= 3 ? 1 : -1
            let b: Float = step % 2 == 0 ? 1 : -1
            if let w = tracker.record([Tensor(shape: [1], data: [g]), Tensor(shape: [1], data: [b])]) { windows.append(w) }
        }
        XCTAssertEqual(windows.map(\.endStep), [3, 6])
        XCTAssertEqual(windows.map(\.disorder), [[0, 1], [0, 1]])
        XCTAssertEqual(tracker.stepsInWindow, 1)
        XCTAssertEqual(tracker.currentDisorder(), [0, 0], "one gradient holds no pair yet")
    }

    func testCodableMidWindowContinuesIdentically() throws {
        var a = DisorderTracker(names: ["s"], windowLength: 4)
        let seq: [Float] = [1, -1, -1, 1, 1, -1, 1, 1]
        var outA: [DisorderWindow] = []
        for g in seq { if let w = a.record([Tensor(shape: [1], data: [g])]) { outA.append(w) } }

        var b = DisorderTracker(names: ["s"], windowLength: 4)
        var outB: [DisorderWindow] = []
        for g in seq[0..<2] { if let w = b.record([Tensor(shape: [1], data: [g])]) { outB.append(w) } }
        b = try jsonRoundTrip(b)
        for g in seq[2...] { if let w = b.record([Tensor(shape: [1], data: [g])]) { outB.append(w) } }
        XCTAssertEqual(outA, outB)
        XCTAssertEqual(a, b)
        XCTAssertEqual(outA.map(\.disorder), [[Float(2.0 / 3.0)], [Float(2.0 / 3.0)]])
    }
}
