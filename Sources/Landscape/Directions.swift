// Directions in parameter space for loss landscapes (Li et al. 2018; docs/landscape.md).
//
// Random directions: one N(0,1) tensor per state entry, drawn in state order from RNG(seed) (the x
// direction first, then y, like the original drawing both from one torch stream). Each entry is
// then treated by its kind:
//   weights, ndim > 1      filter normalisation over dim 0: d_f ← d_f·‖w_f‖/(‖d_f‖ + 1e-10)
//                          (net_plotter.py `normalize_direction`, norm = "filter")
//   ndim ≤ 1 (biases, BN γ/β, per-tensor scales, buffers)
//                          "biasbn" ignore: d = 0 (default); or d = w (the original without
//                          --xignore); or normalised like the weights (elementwise for a vector)
//   quantizer scales       `.authors`: as in the authors' fork, whose per-channel weight scales are
//                          (C,1,1,1) tensors, so filter normalisation makes each channel's step
//                          move by ±|s_c|, while per-tensor scales (shape [1]) follow the ndim ≤ 1
//                          rule (zero under biasbn). Here every scale is stored as [C], so
//                          "per-channel" means count > 1.
//                          `.elementwise`: every scale, per-tensor ones included, gets
//                          d_i ← d_i·|s_i|/(|d_i| + 1e-10), so a scales-only surface of a model with
//                          per-tensor weight scales is not empty.
// The perturbation target then zeroes what must stay fixed: `weights` keeps every scale at its
// trained value (the fork's set_weights skips ".s" names), `scales` moves only scales (--disturb_s),
// `both` moves both.
//
// Interpolation direction: d = θ₂ − θ₁ over the selected entries (the original's --model_file2 with
// --dir_type states includes the BN running statistics). It also keeps θ₂ so a surface can evaluate
// (1 − α)·θ₁ + α·θ₂, which reproduces both models bit for bit at α = 0 and α = 1.
import Foundation
import NN
import TensorCore

/// Which parameters a direction moves.
public enum PerturbationTarget: String, Codable, CaseIterable, Hashable, Sendable {
    /// Every non-scale parameter; quantizer step sizes stay at their trained values (FQAT Fig. 1/7).
    case weights
    /// Only quantizer step sizes (`.scale` parameters), the fork's --disturb_s.
    case scales
    /// Both.
    case both
}

/// How a Gaussian direction tensor is rescaled against its weight (net_plotter.py `--xnorm`).
public enum DirectionNormalization: String, Codable, CaseIterable, Hashable, Sendable {
    /// Per output filter (dim 0): d_f ← d_f·‖w_f‖/(‖d_f‖ + 1e-10). For a vector, per element.
    case filter
    /// Whole tensor: d ← d·‖w‖/(‖d‖ + 1e-10).
    case layer
    /// The raw N(0,1) draw.
    case none
}

/// Direction of parameters with ndim ≤ 1 (biases, norm γ/β, per-tensor scales, buffers).
public enum SmallTensorDirection: String, Codable, CaseIterable, Hashable, Sendable {
    /// d = 0: not perturbed (the original's and the fork's `--xignore biasbn`).
    case ignore
    /// d = w (the original without the ignore flag).
    case copy
    /// Normalised like the weights (with `.filter`: d_i ← d_i·|w_i|/(|d_i| + 1e-10)).
    case normalized
}

/// Direction of quantizer step sizes when the target includes them.
public enum ScaleDirection: String, Codable, CaseIterable, Hashable, Sendable {
    /// The authors' fork: per-channel scales (count > 1) normalised per channel like weight filters;
    /// per-tensor scales follow `SmallTensorDirection` (zero under the default `.ignore`).
    case authors
    /// Every scale normalised elementwise against its value: d_i ← d_i·|s_i|/(|d_i| + 1e-10).
    case elementwise
}

/// Everything that determines random directions besides the weights themselves.
public struct DirectionOptions: Codable, Hashable, Sendable, CustomStringConvertible {
    /// RNG seed (the fork used torch.manual_seed(0), the original 123; the streams differ anyway).
    public var seed: UInt64
    public var target: PerturbationTarget
    public var normalization: DirectionNormalization
    public var smallTensors: SmallTensorDirection
    public var scales: ScaleDirection
    /// Also give BatchNorm running statistics a direction (the original's --dir_type states; they are
    /// ndim 1, so under `.ignore` they stay zero anyway). Interpolation includes them by default.
    public var includeBuffers: Bool

    public init(seed: UInt64 = 0, target: PerturbationTarget = .weights, normalization: DirectionNormalization = .filter,
                smallTensors: SmallTensorDirection = .ignore, scales: ScaleDirection = .authors,
                includeBuffers: Bool = false) {
        self.seed = seed
        self.target = target
        self.normalization = normalization
        self.smallTensors = smallTensors
        self.scales = scales
        self.includeBuffers = includeBuffers
    }

    public var description: String {
        "seed \(seed), target \(target.rawValue), \(normalization.rawValue) normalisation, small tensors \(smallTensors.rawValue), "
            + "scales \(scales.rawValue)" + (includeBuffers ? ", buffers included" : "")
    }
}

/// One direction over a `LandscapeState`: a tensor per entry, nil where the direction is zero.
public struct LandscapeDirection: Sendable {
    /// Entry names, in state order (a direction only applies to a state with the same names).
    public var names: [String]
    /// Direction per entry; nil = zero (entry not perturbed).
    public var tensors: [Tensor?]
    /// For an interpolation direction: θ₂ per moving entry, so surfaces can use the exact lerp form.
    public var endpoint: [Tensor?]?

    public init(names: [String], tensors: [Tensor?], endpoint: [Tensor?]? = nil) {
        precondition(names.count == tensors.count, "LandscapeDirection: \(names.count) names, \(tensors.count) tensors")
        precondition(endpoint == nil || endpoint!.count == names.count, "LandscapeDirection: endpoint count mismatch")
        self.names = names
        self.tensors = tensors
        self.endpoint = endpoint
    }

    /// ⟨self, other⟩ over all entries, in Double.
    public func dot(_ other: LandscapeDirection) -> Double {
        precondition(names == other.names, "LandscapeDirection.dot: directions over different states")
        var s = 0.0
        for i in tensors.indices {
            if let a = tensors[i], let b = other.tensors[i] { s += a.dot(b) }
        }
        return s
    }

    public var norm: Double { tensors.reduce(0.0) { $0 + ($1?.squaredNorm() ?? 0) }.squareRoot() }

    /// cos ∠(self, other) (the original prints it for 2-D plots); nil when either is zero.
    public func cosine(with other: LandscapeDirection) -> Double? {
        let a = norm, b = other.norm
        guard a > 0, b > 0 else { return nil }
        return dot(other) / (a * b)
    }

    /// Number of elements with a nonzero direction.
    public var movingElementCount: Int {
        tensors.reduce(0) { total, t in total + (t?.data.reduce(0) { $0 + ($1 != 0 ? 1 : 0) } ?? 0) }
    }

    /// Names of the entries this direction moves.
    public var movingNames: [String] { names.indices.filter { tensors[$0] != nil }.map { names[$0] } }

    // MARK: Random directions

    /// `count` random directions (x first, then y) from `options.seed`, normalised against the
    /// current values of `state`. Throws `LandscapeError.emptyDirection` when the options leave
    /// nothing to move (e.g. target scales on a model with only per-tensor scales under `.authors`
    /// and `.ignore`).
    public static func random(state: LandscapeState, options: DirectionOptions, count: Int = 1) throws -> [LandscapeDirection] {
        precondition(count >= 1, "LandscapeDirection.random: count \(count)")
        var rng = RNG(seed: options.seed)
        let names = state.names
        var out: [LandscapeDirection] = []
        for _ in 0..<count {
            var tensors: [Tensor?] = []
            tensors.reserveCapacity(state.count)
            for i in 0..<state.count {
                let kind = state.kind(at: i)
                let w = state.value(at: i)
                // Draw for every parameter (zeroed or not) so one entry's direction does not depend
                // on the options of another; buffers draw only when included.
                if kind == .buffer && !options.includeBuffers { tensors.append(nil); continue }
                var d = rng.normalTensor(w.shape)
                switch treatment(kind: kind, value: w, options: options) {
                case .zero: tensors.append(nil); continue
                case .copyValue: d = w
                case .filter: normalizePerFilter(&d, like: w)
                case .layer: normalizeLayer(&d, like: w)
                case .raw: break
                }
                tensors.append(d.data.contains(where: { $0 != 0 }) ? d : nil)
            }
            let direction = LandscapeDirection(names: names, tensors: tensors)
            if direction.tensors.allSatisfy({ $0 == nil }) { throw LandscapeError.emptyDirection(emptyReason(state, options)) }
            out.append(direction)
        }
        return out
    }

    enum Treatment { case zero, copyValue, filter, layer, raw }

    static func treatment(kind: StateEntryKind, value w: Tensor, options: DirectionOptions) -> Treatment {
        func normalized() -> Treatment {
            switch options.normalization {
            case .filter: return .filter
            case .layer: return .layer
            case .none: return .raw
            }
        }
        func small() -> Treatment {
            switch options.smallTensors {
            case .ignore: return .zero
            case .copy: return .copyValue
            case .normalized: return normalized()
            }
        }
        switch kind {
        case .scale:
            if options.target == .weights { return .zero }
            switch options.scales {
            case .elementwise: return .filter          // a vector: per element
            case .authors: return w.count > 1 ? normalized() : small()
            }
        case .buffer:
            return w.rank <= 1 ? small() : normalized()
        case .weight, .bias, .normWeight, .normBias:
            if options.target == .scales { return .zero }
            return w.rank <= 1 ? small() : normalized()
        }
    }

    static func emptyReason(_ state: LandscapeState, _ options: DirectionOptions) -> String {
        let scales = state.kinds.filter { $0 == .scale }.count
        switch options.target {
        case .scales where scales == 0:
            return "target scales, but the model has no quantizer scales; attach quantizers first or use target weights"
        case .scales:
            return "target scales moves nothing: with scales authors, per-tensor scales follow small tensors "
                + "(\(options.smallTensors.rawValue)) and no scale is per-channel; use scales elementwise "
                + "or small tensors normalized"
        default:
            return "the direction is zero everywhere for target \(options.target.rawValue); the model has no "
                + "parameter this target moves"
        }
    }

    /// d_f ← d_f·‖w_f‖/(‖d_f‖ + 1e-10) for each slice f along dim 0 (each element of a vector).
    /// Norms in Double; the factor is applied in Float.
    static func normalizePerFilter(_ d: inout Tensor, like w: Tensor) {
        precondition(d.shape == w.shape, "normalizePerFilter: direction \(d.shape) vs weight \(w.shape)")
        let filters = w.rank == 0 ? 1 : w.shape[0]
        guard filters > 0, w.count > 0 else { return }
        let per = w.count / filters
        // d, w are (filters, per) row-major.
        w.data.withUnsafeBufferPointer { wp in
            d.data.withUnsafeMutableBufferPointer { dp in
                for f in 0..<filters {
                    var ww = 0.0, dd = 0.0
                    for j in (f * per)..<((f + 1) * per) {
                        ww += Double(wp[j]) * Double(wp[j])
                        dd += Double(dp[j]) * Double(dp[j])
                    }
                    let factor = Float(ww.squareRoot() / (dd.squareRoot() + 1e-10))
                    for j in (f * per)..<((f + 1) * per) { dp[j] *= factor }
                }
            }
        }
    }

    /// d ← d·‖w‖/(‖d‖ + 1e-10).
    static func normalizeLayer(_ d: inout Tensor, like w: Tensor) {
        precondition(d.shape == w.shape, "normalizeLayer: direction \(d.shape) vs weight \(w.shape)")
        d.scale(by: Float(w.norm() / (d.norm() + 1e-10)))
    }

    // MARK: Interpolation

    /// d = θ₂ − θ₁ from the current state (θ₁) to `endpoint` (θ₂, by name, e.g. another saved model's
    /// state dict) over the entries `target` selects, plus the buffers when `includeBuffers`.
    /// Throws `LandscapeError.endpointMismatch` naming missing or mis-shaped tensors.
    public static func between(state: LandscapeState, endpoint: [String: Tensor], target: PerturbationTarget = .both,
                               includeBuffers: Bool = true) throws -> LandscapeDirection {
        var tensors: [Tensor?] = [], ends: [Tensor?] = []
        var missing: [String] = [], mismatched: [String] = []
        for i in 0..<state.count {
            let kind = state.kind(at: i), name = state.name(at: i)
            let selected: Bool
            switch kind {
            case .buffer: selected = includeBuffers
            case .scale: selected = target != .weights
            default: selected = target != .scales
            }
            guard selected else { tensors.append(nil); ends.append(nil); continue }
            let w = state.value(at: i)
            guard let e = endpoint[name] else { missing.append(name); tensors.append(nil); ends.append(nil); continue }
            guard e.shape == w.shape else {
                mismatched.append("\(name) model \(w.shape) endpoint \(e.shape)")
                tensors.append(nil); ends.append(nil); continue
            }
            tensors.append(e - w)
            ends.append(e)
        }
        if !missing.isEmpty || !mismatched.isEmpty {
            throw LandscapeError.endpointMismatch(missing: missing, shapeMismatch: mismatched)
        }
        return LandscapeDirection(names: state.names, tensors: tensors, endpoint: ends)
    }
}
