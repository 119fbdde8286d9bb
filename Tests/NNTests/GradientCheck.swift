import XCTest
import TensorCore
@testable import NN

/// Central finite differences for a module: L(θ) = Σ r ⊙ f(x; θ) with a fixed random r, accumulated in
/// Double. Every checked element must satisfy |analytic − numeric| ≤ tolerance · max(1, |numeric|);
/// the failure message prints the largest difference and where it occurred.
struct GradientCheck {
    var step: Float = 1e-2
    /// Further steps to try for an element that misses the tolerance at `step`: a ReLU kink spoils a
    /// central difference only for steps that cross it, while a wrong gradient disagrees at every step.
    /// With fallbacks, one-sided differences (L(θ+h) − L(θ))/h and (L(θ) − L(θ−h))/h are tried too: when a
    /// kink lies within h on one side, the other side's difference is still the local derivative.
    /// The element's difference is the smallest over all tried. Empty for single smooth layers.
    var fallbackSteps: [Float] = []
    var tolerance: Float = 1e-3
    /// At most this many elements per tensor are perturbed (a seeded random subset).
    var maxElements = 200
    /// A context for each evaluation (called afresh so stochastic layers can re-seed identically).
    var context: () -> ForwardContext = { ForwardContext(training: true, updateRunningStats: false) }

    struct Result { var maxDifference: Float; var worst: String; var checked: Int; var outliers: Int }

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
        func compare(_ label: String, count: Int, analytic: (Int) -> Float, get: (Int) -> Float, set: (Int, Float) -> Void) {
            var indices = Array(0..<count)
            if count > maxElements { indices = Array(rng.permutation(count).prefix(maxElements)) }
            var worst: Float = 0, where_ = "", outliers = 0
            for i in indices {
                let a = analytic(i)
                var d = Float.infinity, numeric: Float = .nan
                let original = get(i)
                var base: Double?
                for h in [step] + fallbackSteps {
                    set(i, original + h)
                    let plus = loss(module, xCurrent, r)
                    set(i, original - h)
                    let minus = loss(module, xCurrent, r)
                    set(i, original)
                    var candidates = [Float((plus - minus) / Double(2 * h))]
                    if !fallbackSteps.isEmpty {
                        if base == nil { base = loss(module, xCurrent, r) }
                        candidates += [Float((plus - base!) / Double(h)), Float((base! - minus) / Double(h))]
                    }
                    for n in candidates {
                        let dh = abs(a - n) / max(1, abs(n))
                        if dh < d || dh.isNaN { d = dh; numeric = n }
                    }
                    if d <= tolerance { break }
                }
                if !(d <= tolerance) { outliers += 1 }
                if d > worst || d.isNaN { worst = d.isNaN ? .infinity : d; where_ = "\(label)[\(i)]: analytic \(a), numeric \(numeric)" }
            }
            results[label] = Result(maxDifference: worst, worst: where_, checked: indices.count, outliers: outliers)
        }
        if checkInput {
            compare("input", count: x.count, analytic: { dx.data[$0] }, get: { xCurrent.data[$0] }, set: { xCurrent.data[$0] = $1 })
        }
        for p in module.parameters {
            let g = p.grad
            compare(p.name, count: p.count, analytic: { g.data[$0] }, get: { p.value.data[$0] }, set: { p.value.data[$0] = $1 })
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
            XCTAssertEqual(r.outliers, 0,
                "\(label) \(name): \(r.outliers) of \(r.checked) elements beyond relative tolerance \(tolerance); max difference \(r.maxDifference), worst \(r.worst)",
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

/// A seeded N(mean, std²) tensor in one expression.
func randomTensor(_ shape: [Int], seed: UInt64, mean: Float = 0, std: Float = 1) -> Tensor {
    var rng = RNG(seed: seed)
    return rng.normalTensor(shape, mean: mean, std: std)
}

extension GradientCheck {
    /// Directional derivative along `directions` random unit directions in (input, parameters) space
    /// plus the gradient direction itself: (L(θ + h·d) − L(θ − h·d)) / 2h against ∇L·d. Robust to the
    /// odd ReLU kink. Returns, per direction, |numeric − analytic| / max(|analytic|, 1e-2·|∇L|), the
    /// smallest over the steps h, h/3, h/10.
    func directionalErrors(_ module: Module, input x: Tensor, seed: UInt64 = 9, directions: Int = 3) -> [Double] {
        var rng = RNG(seed: seed)
        module.zeroGrad()
        let y = module.forward(x, context())
        let r = rng.normalTensor(y.shape)
        let dx = module.backward(r)
        let params = module.parameters
        let grads = [dx] + params.map(\.grad)
        let gradNorm = grads.reduce(0.0) { $0 + $1.squaredNorm() }.squareRoot()
        var errors: [Double] = []
        for k in 0...directions {
            // k == 0: along the gradient; otherwise a Gaussian direction; all scaled to unit norm.
            var d: [Tensor] = k == 0 ? grads : grads.map { rng.normalTensor($0.shape) }
            let norm = d.reduce(0.0) { $0 + $1.squaredNorm() }.squareRoot()
            for i in d.indices { d[i].scale(by: Float(1 / norm)) }
            let analytic = zip(grads, d).reduce(0.0) { $0 + $1.0.dot($1.1) }
            func shifted(_ h: Float) -> Double {
                for (p, dp) in zip(params, d.dropFirst()) { p.value.add(dp, scaled: h) }
                var xs = x; xs.add(d[0], scaled: h)
                let l = loss(module, xs, r)
                for (p, dp) in zip(params, d.dropFirst()) { p.value.add(dp, scaled: -h) }
                return l
            }
            // Smallest error over steps h, h/3, h/10: a kink near θ spoils only steps that reach it.
            var best = Double.infinity
            for h in [step, step / 3, step / 10] {
                let numeric = (shifted(h) - shifted(-h)) / Double(2 * h)
                best = min(best, abs(numeric - analytic) / max(1e-2 * gradNorm, abs(analytic)))
            }
            errors.append(best)
        }
        return errors
    }
}
