// Adam and SGD against hand computations and torch.optim (2.15, CPU, float32) reference values.
//
// The reference values were printed by this script (python3, numpy, torch):
/*
import numpy as np, torch
def f32(xs): return [float(np.float32(x)) for x in xs]
def show(name, t): print(name, "[" + ", ".join(str(np.float32(v)) for v in t.detach().numpy().ravel()) + "]")
w = torch.tensor(f32([0.5, -1.25, 2.0]), requires_grad=True)
s = torch.tensor(f32([0.1, 0.05]), requires_grad=True)
opt = torch.optim.Adam([{"params": [w], "lr": 1e-3, "weight_decay": 1e-2},
                        {"params": [s], "lr": 1e-2, "weight_decay": 0.0}])
gw = [[0.3, -0.7, 0.0], [0.25, 0.1, 1e-9], [-0.4, 0.2, 0.0], [0.5, -0.3, 2.0], [0.05, 0.0, -1.0]]
gs = [[1.5, -2.0], [-0.5, 0.75], None, [0.2, 3.0], [-1.0, 1e-6]]
for t in range(5):
    w.grad = torch.tensor(f32(gw[t]))
    s.grad = None if gs[t] is None else torch.tensor(f32(gs[t]))
    opt.step()
    show(f"adam w{t+1}", w); show(f"adam s{t+1}", s)
show("adam w exp_avg", opt.state[w]["exp_avg"]); show("adam w exp_avg_sq", opt.state[w]["exp_avg_sq"])
show("adam s exp_avg", opt.state[s]["exp_avg"]); show("adam s exp_avg_sq", opt.state[s]["exp_avg_sq"])
print("adam steps", int(opt.state[w]["step"]), int(opt.state[s]["step"]))
for nesterov in (False, True):
    p = torch.tensor(f32([0.5, -1.25, 2.0]), requires_grad=True)
    o = torch.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=1e-2, nesterov=nesterov)
    for t in range(4):
        p.grad = torch.tensor(f32(gw[t])); o.step()
    show(f"sgd nesterov={nesterov} p4", p); show(f"sgd nesterov={nesterov} buf", o.state[p]["momentum_buffer"])
*/
import Foundation
import NN
import TensorCore
import XCTest
@testable import Optim

final class OptimizerTests: XCTestCase {
    static let weightGradients: [[Float]] = [[0.3, -0.7, 0.0], [0.25, 0.1, 1e-9], [-0.4, 0.2, 0.0], [0.5, -0.3, 2.0], [0.05, 0.0, -1.0]]
    static let scaleGradients: [[Float]?] = [[1.5, -2.0], [-0.5, 0.75], nil, [0.2, 3.0], [-1.0, 1e-6]]
    // torch.optim.Adam after steps 1...5.
    static let torchWeights: [[Float]] = [
        [0.499, -1.249, 1.999], [0.4980086, -1.2484256, 1.998], [0.49791566, -1.2481577, 1.9970001],
        [0.4974699, -1.2477297, 1.996405], [0.49705446, -1.2473594, 1.9961907]]
    static let torchScales: [[Float]] = [
        [0.09, 0.060000002], [0.08599782, 0.06365958], [0.08599782, 0.06365958],
        [0.082126215, 0.06009381], [0.08253279, 0.057172947]]

    func makeAdam() -> (Adam, Parameter, Parameter) {
        let w = parameter("w", .weight, [0.5, -1.25, 2.0])
        let s = parameter("s", .scale, [0.1, 0.05])
        let adam = Adam(weights: [w], scales: [s], learningRate: 1e-3, weightDecay: 1e-2, scaleLearningRate: 1e-2)
        return (adam, w, s)
    }

    /// Runs steps `range` of the fixture's gradient sequence (a nil scale gradient = skip).
    func runAdam(_ adam: Adam, _ w: Parameter, _ s: Parameter, steps: Range<Int>, check: Bool = true) {
        for t in steps {
            w.grad = Tensor(shape: [3], data: Self.weightGradients[t])
            var skip = Set<String>()
            if let g = Self.scaleGradients[t] { s.grad = Tensor(shape: [2], data: g) } else { skip.insert("s") }
            adam.step(skipping: skip)
            guard check else { continue }
            // Tolerance: a few float32 ulps (values ≈ 0.05…2); we follow torch's operation order.
            let dw = maxAbsDifference(w.value.data, Self.torchWeights[t])
            let ds = maxAbsDifference(s.value.data, Self.torchScales[t])
            XCTAssertLessThanOrEqual(dw, 4e-7, "step \(t + 1): weights \(w.value.data) vs torch \(Self.torchWeights[t]), max diff \(dw)")
            XCTAssertLessThanOrEqual(ds, 4e-8, "step \(t + 1): scales \(s.value.data) vs torch \(Self.torchScales[t]), max diff \(ds)")
        }
    }

    func testAdamMatchesTorchIncludingSkippedStepAndGroups() {
        let (adam, w, s) = makeAdam()
        runAdam(adam, w, s, steps: 0..<5)
        XCTAssertEqual(adam.states["w"]?.step, 5)
        XCTAssertEqual(adam.states["s"]?.step, 4, "the skipped step must not count for the scale")
        let pairs: [([Float]?, [Float])] = [
            (adam.states["w"]?.firstMoment, [0.057548802, -0.05454994, 0.08818155]),
            (adam.states["w"]?.secondMoment, [0.0005709785, 0.00064605847, 0.005037864]),
            (adam.states["s"]?.firstMoment, [-0.013149996, 0.1849501]),
            (adam.states["s"]?.secondMoment, [0.003532717, 0.013540388])]
        // Moments agree to a few ulps, not bit for bit: torch's vectorised lerp uses a fused
        // multiply-add, which baseline x86-64 Swift code cannot use without a libm call per element.
        for (mine, torch) in pairs {
            let d = maxAbsDifference(mine ?? [], torch)
            XCTAssertLessThanOrEqual(d, 4e-8, "moments \(mine ?? []) vs torch \(torch): max diff \(d)")
        }
    }

    /// Hand computation of the first two Adam steps of one element, in Double:
    /// m̂₁ = g₁, v̂₁ = g₁² so p₁ = p₀ − lr·g₁/(|g₁| + ε); then with L2 decay.
    func testAdamFirstStepsByHand() {
        let lr = 0.01, wd = 0.1, b1 = 0.9, b2 = 0.999, eps = 1e-8
        let p = parameter("p", .weight, [1.5, -0.25, 0.0])
        let adam = Adam(parameters: [p], learningRate: lr, weightDecay: wd)
        let g1: [Double] = [0.2, -3.0, 0.0], g2: [Double] = [-0.1, 0.5, 0.0]
        var expected: [Double] = [1.5, -0.25, 0.0]
        var m = [0.0, 0, 0], v = [0.0, 0, 0]
        for (t, g) in [g1, g2].enumerated() {
            p.grad = Tensor(shape: [3], data: g.map(Float.init))
            adam.step()
            for i in 0..<3 {
                let gi = g[i] + wd * expected[i]
                m[i] = b1 * m[i] + (1 - b1) * gi
                v[i] = b2 * v[i] + (1 - b2) * gi * gi
                let mh = m[i] / (1 - pow(b1, Double(t + 1))), vh = v[i] / (1 - pow(b2, Double(t + 1)))
                expected[i] -= lr * mh / (vh.squareRoot() + eps)
            }
            let d = maxAbsDifference(p.value.data, expected.map(Float.init))
            XCTAssertLessThanOrEqual(d, 2e-7, "step \(t + 1): \(p.value.data) vs hand \(expected): max diff \(d)")
        }
        // Step 1 moved each element by (almost exactly) lr·sign(g + wd·p).
        XCTAssertEqual(Double(p.value[2]), 0, "a parameter at 0 with zero gradient stays at 0")
    }

    func testEpsilonIsAddedAfterTheSquareRootOfTheCorrectedMoment() {
        // A tiny gradient: lr·g/(|g| + ε) with g = 1e-8 gives lr/2, not lr (ε inside the sqrt would differ).
        let p = parameter("p", .weight, [0])
        let adam = Adam(parameters: [p], learningRate: 1)
        p.grad = Tensor(shape: [1], data: [1e-8])
        adam.step()
        XCTAssertEqual(p.value[0], -0.5, accuracy: 1e-6)
    }

    func testSkippedAndUntrainableParametersAreUntouched() {
        let (adam, w, s) = makeAdam()
        runAdam(adam, w, s, steps: 0..<2, check: false)
        let before = adam.states["s"]
        let value = s.value
        s.grad = Tensor(shape: [2], data: [5, 5])
        adam.step(skipping: ["s"])
        XCTAssertEqual(adam.states["s"], before)
        XCTAssertEqual(s.value, value)
        w.trainable = false
        let wv = w.value, ws = adam.states["w"]
        adam.step()
        XCTAssertEqual(w.value, wv)
        XCTAssertEqual(adam.states["w"], ws)
        XCTAssertNotEqual(s.value, value)
    }

    func testAdamCheckpointResumesBitExactly() throws {
        let (straight, w1, s1) = makeAdam()
        runAdam(straight, w1, s1, steps: 0..<5, check: false)

        let (first, w2, s2) = makeAdam()
        runAdam(first, w2, s2, steps: 0..<2, check: false)
        let saved = try jsonRoundTrip(first.checkpoint())
        XCTAssertEqual(saved, first.checkpoint())
        let (second, w3, s3) = makeAdam()
        second.setLearningRate(0.5, group: "model")   // restored from the checkpoint
        w3.value = w2.value; s3.value = s2.value
        try second.restore(saved)
        XCTAssertEqual(second.groups[0].learningRate, 1e-3)
        runAdam(second, w3, s3, steps: 2..<5, check: false)
        XCTAssertEqual(bitPatterns(w3.value.data), bitPatterns(w1.value.data))
        XCTAssertEqual(bitPatterns(s3.value.data), bitPatterns(s1.value.data))
        XCTAssertEqual(second.checkpoint(), straight.checkpoint())
    }

    func testRestoreRejectsCheckpointsThatDoNotFit() throws {
        let (adam, w, s) = makeAdam()
        runAdam(adam, w, s, steps: 0..<1, check: false)
        let checkpoint = adam.checkpoint()
        let other = Adam(parameters: [parameter("w", .weight, [1, 2])], learningRate: 1)
        XCTAssertThrowsError(try other.restore(checkpoint)) { error in
            XCTAssertEqual(error as? OptimizerStateError, .unknownGroup("scales", known: ["model"]))
        }
        let resized = Adam(weights: [parameter("w", .weight, [1, 2])], scales: [parameter("s", .scale, [1, 2])],
                           learningRate: 1, weightDecay: 0, scaleLearningRate: 1)
        XCTAssertThrowsError(try resized.restore(checkpoint)) { error in
            XCTAssertEqual(error as? OptimizerStateError, .sizeMismatch(parameter: "w", expected: 2, found: 3))
            XCTAssertTrue("\(error)".contains("architecture changed"))
        }
        let sgd = SGD(parameters: [w], learningRate: 1)
        XCTAssertThrowsError(try sgd.restore(checkpoint)) { error in
            XCTAssertEqual(error as? OptimizerStateError, .wrongAlgorithm(expected: "sgd", found: "adam"))
        }
        XCTAssertTrue(resized.states.isEmpty, "a failed restore changes nothing")
    }

    func testSGDMatchesTorch() {
        let cases: [(Bool, [Float], [Float])] = [
            (false, [0.35088813, -1.0336499, 1.7819296], [0.57648253, -0.5889969, 2.0685995]),
            (true, [0.29924148, -0.98104745, 1.5957804], [0.5757613, -0.58775514, 2.0685055])]
        for (nesterov, torchValue, torchBuffer) in cases {
            let p = parameter("p", .weight, [0.5, -1.25, 2.0])
            let sgd = SGD(parameters: [p], learningRate: 0.1, momentum: 0.9, weightDecay: 1e-2, nesterov: nesterov)
            for t in 0..<4 {
                p.grad = Tensor(shape: [3], data: Self.weightGradients[t])
                sgd.step()
            }
            let dv = maxAbsDifference(p.value.data, torchValue)
            let db = maxAbsDifference(sgd.states["p"]?.momentumBuffer ?? [], torchBuffer)
            XCTAssertLessThanOrEqual(dv, 4e-7, "nesterov \(nesterov): \(p.value.data) vs torch \(torchValue)")
            XCTAssertLessThanOrEqual(db, 4e-7, "nesterov \(nesterov): buffer vs torch \(torchBuffer)")
        }
    }

    func testPlainSGDByHand() throws {
        let p = parameter("p", .weight, [1, -2])
        let sgd = SGD(parameters: [p], learningRate: 0.5, weightDecay: 0.1)
        p.grad = Tensor(shape: [2], data: [0.2, 0.4])
        sgd.step()
        // p − lr·(g + wd·p) = [1 − 0.5·0.3, −2 − 0.5·0.2]
        XCTAssertEqual(p.value.data, [0.85, -2.1])
        let restored = SGD(parameters: [p], learningRate: 0.1)
        try restored.restore(try jsonRoundTrip(sgd.checkpoint()))
        XCTAssertEqual(restored.groups[0].learningRate, 0.5)
        XCTAssertEqual(restored.groups[0].weightDecay, 0.1)
    }
}
