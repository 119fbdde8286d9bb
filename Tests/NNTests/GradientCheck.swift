import XCTest
import TensorCore
@testable import NN

/// Central finite differences for a module: L(θ) = Σ r ⊙ f(x; θ) with a fixed random r, accumulated in
/// Double. Every checked element must satisfy |analytic − numeric| ≤ tolerance · max(1, |numeric|);
/// the failure message prints the largest difference and where it occurred.
struct GradientCheck {
    var step: Float = 1e-2
    var tolerance: Float = 1e-3
    /// At most this many elements per tensor are perturbed (a seeded random subset).
    var maxElements = 200
    /// A context for each evaluation (called afresh so stochastic layers can re-seed identically).
    var context: () -> ForwardContext = { ForwardContext(training: true, updateRunningStats: false) }

    struct Result { var maxDifference: Float; var worst: String; var checked: Int }

    func loss(_ module: Module, _ x: Tensor, _ r: Tensor) -> Double {
        var ctx = context()
        ctx.needsBackward = false
        let y = module.forward(x, ctx)
        precondition(y.shape == r.shape)
        var s = 0.0
        for i in 0..<y.count { s += Double(y.data[i]) * Double(r.data[i]) }
        return s
    }

    /// Checks dL/dx and dL/dθ for every parameter of `module`.
    func run(_ module: Module, input x: Tensor, seed: UInt64 = 9, checkInput: Bool = true) -> [String: Result] {
        var rng = RNG(seed: seed)
        module.zeroGrad()
        let y = module.forward(x, context())
        let r = rng.normalTensor(y.shape)
        let dx = module.backward(r)
        XCTAssertEqual(dx.shape, x.shape, "input gradient shape")
        var results: [String: Result] = [:]
        var xCurrent = x
        func compare(_ label: String, count: Int, analytic: (Int) -> Float, perturb: (Int, Float) -> Void) {
            var indices = Array(0..<count)
            if count > maxElements { indices = Array(rng.permutation(count).prefix(maxElements)) }
            var worst: Float = 0, where_ = ""
            for i in indices {
                perturb(i, step)
                let plus = loss(module, xCurrent, r)
                perturb(i, -2 * step)
                let minus = loss(module, xCurrent, r)
                perturb(i, step)
                let numeric = Float((plus - minus) / Double(2 * step))
                let a = analytic(i)
                let d = abs(a - numeric) / max(1, abs(numeric))
                if d > worst || d.isNaN { worst = d.isNaN ? .infinity : d; where_ = "\(label)[\(i)]: analytic \(a), numeric \(numeric)" }
            }
            results[label] = Result(maxDifference: worst, worst: where_, checked: indices.count)
        }
        if checkInput {
            compare("input", count: x.count, analytic: { dx.data[$0] }, perturb: { i, e in xCurrent.data[i] += e })
        }
        for p in module.parameters {
            let g = p.grad
            compare(p.name, count: p.count, analytic: { g.data[$0] }, perturb: { i, e in p.value.data[i] += e })
        }
        return results
    }

    /// Runs the check and asserts every tensor is within tolerance.
    func assertGradients(_ module: Module, input: Tensor, seed: UInt64 = 9, checkInput: Bool = true,
                         _ label: String, file: StaticString = #filePath, line: UInt = #line) {
        let results = run(module, input: input, seed: seed, checkInput: checkInput)
        XCTAssertFalse(results.isEmpty, "\(label): nothing checked", file: file, line: line)
        if ProcessInfo.processInfo.environment["GRADCHECK_VERBOSE"] != nil { for (n, r) in results { print("GRADCHECK \(label) \(n) \(r.maxDifference)") } }
        for (name, r) in results.sorted(by: { $0.key < $1.key }) {
            XCTAssertLessThanOrEqual(r.maxDifference, tolerance,
                "\(label) \(name): max relative difference \(r.maxDifference) > \(tolerance) over \(r.checked) elements; worst \(r.worst)",
                file: file, line: line)
        }
    }
}

/// A tensor of N(0,1) values pushed at least `margin` away from zero, so ReLU kinks are not crossed
/// by a finite-difference step.
func awayFromZero(_ t: Tensor, margin: Float = 0.05) -> Tensor {
    var t = t
    for i in 0..<t.count where abs(t.data[i]) < margin { t.data[i] = t.data[i] < 0 ? t.data[i] - margin : t.data[i] + margin }
    return t
}
