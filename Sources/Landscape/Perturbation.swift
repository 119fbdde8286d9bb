// Setting the model to the point (α, β) of a landscape. Every point is computed from the saved
// origin, never by adding steps to the previous point, so values do not drift along the grid and the
// same (α, β) always gives the same bits:
//   random directions   θ = w + α·δ + β·η                 (Float, evaluated left to right)
//   interpolation (x)   θ = (1 − α)·θ₁ + α·θ₂ [+ β·η]      (exact at α = 0 and α = 1)
// Entries no direction moves are reset to their saved tensor (a reference assignment, no copy), so
// anything the evaluation closure changed there (e.g. running statistics) is undone at every point.
import Foundation
import NN
import TensorCore

/// Moves a state to grid points and back. Create, `apply` any number of points, then `restore()`.
public final class Perturbation {
    public let state: LandscapeState
    /// The values at creation, bit for bit; `restore()` reassigns exactly these tensors.
    public let origin: [Tensor]
    public let x: LandscapeDirection
    public let y: LandscapeDirection?
    /// Indices of entries some direction moves.
    let moving: [Int]

    public init(state: LandscapeState, x: LandscapeDirection, y: LandscapeDirection? = nil) {
        let names = state.names
        precondition(x.names == names, "Perturbation: the x direction was built for a different model (\(x.names.count) vs \(names.count) entries)")
        precondition(y == nil || y!.names == names, "Perturbation: the y direction was built for a different model")
        precondition(y?.endpoint == nil, "Perturbation: an interpolation direction can only be the x axis")
        self.state = state
        self.origin = state.values()
        self.x = x
        self.y = y
        var moving: [Int] = []
        for i in 0..<state.count {
            if let d = x.tensors[i] { precondition(d.shape == origin[i].shape, "Perturbation: x direction \(names[i]) \(d.shape) vs \(origin[i].shape)") }
            if let d = y?.tensors[i] { precondition(d.shape == origin[i].shape, "Perturbation: y direction \(names[i]) \(d.shape) vs \(origin[i].shape)") }
            if x.tensors[i] != nil || y?.tensors[i] != nil { moving.append(i) }
        }
        self.moving = moving
    }

    /// Number of elements written per point.
    public var movingElementCount: Int { moving.reduce(0) { $0 + origin[$1].count } }

    /// Sets every moving entry to its value at (alpha, beta) and every other entry to its origin.
    public func apply(alpha: Double, beta: Double = 0) {
        let a = Float(alpha), b = Float(beta), oneMinusA = Float(1 - alpha)
        var next = 0
        for i in 0..<state.count {
            if next < moving.count && moving[next] == i {
                next += 1
                write(entry: i, a: a, b: b, oneMinusA: oneMinusA)
            } else if !sameStorage(state.value(at: i), origin[i]) {
                state.setValue(origin[i], at: i)
            }
        }
    }

    /// Puts every entry back to the exact saved tensor.
    public func restore() { state.restore(origin) }

    private func sameStorage(_ a: Tensor, _ b: Tensor) -> Bool {
        a.data.withUnsafeBufferPointer { pa in b.data.withUnsafeBufferPointer { pb in pa.baseAddress == pb.baseAddress } }
            && a.shape == b.shape
    }

    private func write(entry i: Int, a: Float, b: Float, oneMinusA: Float) {
        let w = origin[i]
        let dx = x.tensors[i], dy = y?.tensors[i], ex = x.endpoint?[i]
        let n = w.count
        if n == 0 { return }
        state.withMutableData(at: i) { out in
            precondition(out.count == n, "Perturbation: \(state.name(at: i)) changed size during the landscape")
            let o = out.baseAddress!
            w.data.withUnsafeBufferPointer { wp in
                let w = wp.baseAddress!
                withOptionalPointer(ex) { e in
                    withOptionalPointer(dx) { d in
                        withOptionalPointer(dy) { g in
                            // all pointers are (n) Float; chunks in parallel for big tensors.
                            Parallel.forEach(n, costPerItem: 2, minimumWork: 1 << 20) { range in
                                Perturbation.kernel(out: o, w: w, endpoint: e, x: d, y: g, a: a, b: b,
                                                    oneMinusA: oneMinusA, range: range)
                            }
                        }
                    }
                }
            }
        }
    }

    /// out = (lerp or axpy along x) [+ b·y] over `range`.
    @inline(__always)
    static func kernel(out: UnsafeMutablePointer<Float>, w: UnsafePointer<Float>, endpoint e: UnsafePointer<Float>?,
                       x d: UnsafePointer<Float>?, y g: UnsafePointer<Float>?, a: Float, b: Float, oneMinusA: Float,
                       range: Range<Int>) {
        switch (e, d, g) {
        case let (e?, _?, g?):
            for j in range { out[j] = oneMinusA * w[j] + a * e[j] + b * g[j] }
        case let (e?, _?, nil):
            for j in range { out[j] = oneMinusA * w[j] + a * e[j] }
        case let (nil, d?, g?):
            for j in range { out[j] = w[j] + a * d[j] + b * g[j] }
        case let (nil, d?, nil):
            for j in range { out[j] = w[j] + a * d[j] }
        case let (_, nil, g?):
            for j in range { out[j] = w[j] + b * g[j] }
        case (_, nil, nil):
            for j in range { out[j] = w[j] }
        }
    }
}

@inline(__always)
private func withOptionalPointer<R>(_ t: Tensor?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let t else { return body(nil) }
    return t.data.withUnsafeBufferPointer { body($0.baseAddress) }
}
