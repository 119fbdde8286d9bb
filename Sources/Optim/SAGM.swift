// The gradient computation of one training step: plain (single pass; ERM / QAT) or SAGM [1]
// (two passes), full precision or quantized (FQAT Appendix A; docs/fqat.md, The SAGM step).
//
// SAGM step on weights w (every non-scale trainable parameter) and quantizer scales s:
//   pass 1 at (w, s):          g1 = ∂L/∂w,  g_QAT(s) = ∂L/∂s,  loss L1 (the reported training loss)
//   n  = ‖g1‖₂ over the weights only (scale gradients excluded, docs/fqat.md, The SAGM step)
//   e  = (ρ/(n + 1e-12) − α)·g1      = ρ·g1/‖g1‖ − α·g1, applied to the weights only; s is never perturbed
//   pass 2 at (w + e, s):      g2 = ∂L/∂w,  g_flat(s) = ∂L/∂s
//   w  restored bit-exactly from a saved copy (SAGM's code subtracts e; SAM restores a copy — the
//      copy is chosen so that the step never drifts the weights by rounding)
//   weight grads ← 0.5·(g1 + g2)     (SAGM's gradient_decompose g2 + (0.5·g1 − 0.5·g2), up to rounding)
//   scale grads  ← 0.5·(g_QAT + g_flat) as the no-freezing default; the FreezeController may replace it.
//
// [1] P. Wang, Z. Zhang, Z. Lei, L. Zhang, "Sharpness-Aware Gradient Matching for Domain
//     Generalization", CVPR 2023 (code: Wang-pengfei/SAGM, domainbed/sagm/sagm.py).
import NN
import TensorCore

/// The gradients of one quantizer scale factor from one step.
public struct ScaleGradients: Equatable, Sendable {
    /// The scale parameter's name.
    public var name: String
    /// g_QAT: ∂L(Q(w; s))/∂s at the unperturbed weights (pass 1).
    public var qat: Tensor
    /// g_flat: ∂L(Q(w + e; s))/∂s at the perturbed weights (pass 2); nil for a single-pass step.
    public var flat: Tensor?

    public init(name: String, qat: Tensor, flat: Tensor?) {
        self.name = name
        self.qat = qat
        self.flat = flat
    }
}

/// What a gradient step computed. Weight gradients are left in the weights' `grad`.
public struct GradientStepResult: Equatable, Sendable {
    /// Loss of pass 1, at the unperturbed weights: the training loss to report.
    public var loss: Float
    /// Loss of pass 2, at w + e; nil for a single-pass step.
    public var perturbedLoss: Float?
    /// ‖g1‖₂ over the weights (Double accumulation).
    public var gradientNorm: Double
    /// ‖e‖₂ of the perturbation actually added (0 for a single-pass step).
    public var perturbationNorm: Double
    /// Per scale factor, in the order the scales were given.
    public var scales: [ScaleGradients]

    public init(loss: Float, perturbedLoss: Float?, gradientNorm: Double, perturbationNorm: Double, scales: [ScaleGradients]) {
        self.loss = loss; self.perturbedLoss = perturbedLoss; self.gradientNorm = gradientNorm
        self.perturbationNorm = perturbationNorm; self.scales = scales
    }
}

/// A non-finite loss or gradient: the step was abandoned and every parameter value is as it was
/// before the step (gradients are unspecified). Usually a too-high learning rate or bad data.
public enum StepError: Error, Equatable, CustomStringConvertible {
    case nonFiniteLoss(pass: Int, value: Float)
    case nonFiniteGradient(pass: Int, parameter: String)

    public var description: String {
        switch self {
        case .nonFiniteLoss(let pass, let v):
            return "training loss is \(v) in pass \(pass); parameters were left as before the step. Lower the learning rate or check the data"
        case .nonFiniteGradient(let pass, let name):
            return "gradient of '\(name)' is not finite in pass \(pass); parameters were left as before the step. Lower the learning rate or check the data"
        }
    }
}

/// SAGM hyperparameters and its two-pass gradient computation.
public struct SAGM: Codable, Equatable, Sendable, CustomStringConvertible {
    /// Perturbation radius ρ (SAM/SAGM default 0.05, constant).
    public var rho: Float
    /// Gradient-matching coefficient α (SAGM_DG default 0.001; 0.0005 for OfficeHome/DomainNet).
    public var alpha: Float
    /// Added to ‖g1‖ in the perturbation scale (SAGM `perturb_eps`).
    public static let normEpsilon: Double = 1e-12

    public init(rho: Float = 0.05, alpha: Float = 0.001) {
        precondition(rho >= 0, "SAGM rho must be non-negative: \(rho)")
        self.rho = rho
        self.alpha = alpha
    }

    public var description: String { "SAGM(rho \(rho), alpha \(alpha))" }

    /// Runs the SAGM step (see the file header). `computeGradients(pass)` must run forward and
    /// backward at the parameters' current values, accumulating into `grad`, and return the loss;
    /// `pass` is 1 or 2 so the caller can stop BatchNorm updating running statistics in pass 2.
    /// The grads of `weights` and `scales` are zeroed here before each pass; other parameters' grads
    /// are the closure's business. Non-trainable weights are zeroed but neither perturbed nor
    /// counted in ‖g1‖ (like PyTorch parameters with requires_grad=False).
    /// Full-precision SAGM: pass `scales: []`.
    ///
    /// On a non-finite loss or gradient, or an error thrown by the closure, the weights are restored
    /// and the error is rethrown: parameter values are exactly as before the call.
    public func step(weights: [Parameter], scales: [Parameter],
                     computeGradients: (_ pass: Int) throws -> Float) throws -> GradientStepResult {
        let allWeights = weights
        let weights = weights.filter(\.trainable)
        GradientMethod.checkDisjoint(allWeights, scales)

        // Pass 1 at (w, s).
        let loss1 = try GradientMethod.runPass(1, allWeights, scales, computeGradients)
        let g1 = weights.map(\.grad)
        let qat = scales.map(\.grad)

        // Perturbation e = (ρ/(‖g1‖ + 1e-12) − α)·g1 on the weights only.
        var squared = 0.0
        for g in g1 { squared += g.squaredNorm() }
        let norm = squared.squareRoot()
        let coefficient = Float(Double(rho) / (norm + SAGM.normEpsilon) - Double(alpha))
        let saved = weights.map(\.value)
        var perturbationSquared = 0.0
        for (p, g) in zip(weights, g1) {
            var e = g
            e.scale(by: coefficient)
            perturbationSquared += e.squaredNorm()
            p.value.add(e)
        }

        // Pass 2 at (w + e, s); whatever happens, the weights go back to the saved copy.
        let loss2: Float
        do {
            defer { for (p, v) in zip(weights, saved) { p.value = v } }
            loss2 = try GradientMethod.runPass(2, allWeights, scales, computeGradients)
        }

        // Weights: 0.5·(g1 + g2), elementwise in Float.
        for (p, first) in zip(weights, g1) {
            p.grad.data.withUnsafeMutableBufferPointer { g2 in
                first.data.withUnsafeBufferPointer { a in
                    for i in 0..<g2.count { g2[i] = 0.5 * (a[i] + g2[i]) }
                }
            }
        }
        // Scales: keep both gradients apart; default applied gradient 0.5·(g_QAT + g_flat).
        var scaleGradients: [ScaleGradients] = []
        scaleGradients.reserveCapacity(scales.count)
        for (s, q) in zip(scales, qat) {
            let flat = s.grad
            scaleGradients.append(ScaleGradients(name: s.name, qat: q, flat: flat))
            s.grad = FreezeMath.half(q, plus: flat)
        }
        return GradientStepResult(loss: loss1, perturbedLoss: loss2, gradientNorm: norm,
                                  perturbationNorm: perturbationSquared.squareRoot(), scales: scaleGradients)
    }
}

/// How the gradients of a step are computed: `singlePass` (ERM / plain QAT: one forward-backward,
/// weights get g1 and scales g_QAT) or `sagm` (two passes, above).
public enum GradientMethod: Codable, Equatable, Sendable, CustomStringConvertible {
    case singlePass
    case sagm(SAGM)

    public var description: String {
        switch self {
        case .singlePass: return "single pass"
        case .sagm(let s): return s.description
        }
    }

    /// Whether the step yields g_flat (so freezing g_QAT leaves a gradient to apply).
    public var hasFlatGradient: Bool {
        if case .sagm = self { return true } else { return false }
    }

    /// Runs the step's passes; see `SAGM.step` for the contract of `computeGradients`.
    public func computeGradients(weights: [Parameter], scales: [Parameter],
                                 _ computeGradients: (_ pass: Int) throws -> Float) throws -> GradientStepResult {
        switch self {
        case .sagm(let sagm):
            return try sagm.step(weights: weights, scales: scales, computeGradients: computeGradients)
        case .singlePass:
            GradientMethod.checkDisjoint(weights, scales)
            let loss = try GradientMethod.runPass(1, weights, scales, computeGradients)
            var squared = 0.0
            for p in weights where p.trainable { squared += p.grad.squaredNorm() }
            return GradientStepResult(loss: loss, perturbedLoss: nil, gradientNorm: squared.squareRoot(),
                                      perturbationNorm: 0,
                                      scales: scales.map { ScaleGradients(name: $0.name, qat: $0.grad, flat: nil) })
        }
    }

    /// Zeroes the grads, runs one pass and checks that the loss and every gradient that will be
    /// used (trainable weights, all scales) are finite.
    static func runPass(_ pass: Int, _ weights: [Parameter], _ scales: [Parameter],
                        _ compute: (Int) throws -> Float) throws -> Float {
        for p in weights { p.zeroGrad() }
        for s in scales { s.zeroGrad() }
        let loss = try compute(pass)
        guard loss.isFinite else { throw StepError.nonFiniteLoss(pass: pass, value: loss) }
        for p in weights where p.trainable && !p.grad.isFinite { throw StepError.nonFiniteGradient(pass: pass, parameter: p.name) }
        for s in scales where !s.grad.isFinite { throw StepError.nonFiniteGradient(pass: pass, parameter: s.name) }
        return loss
    }

    static func checkDisjoint(_ weights: [Parameter], _ scales: [Parameter]) {
        let ids = Set(scales.map { ObjectIdentifier($0) })
        for w in weights {
            precondition(!ids.contains(ObjectIdentifier(w)), "'\(w.name)' is passed both as a weight and as a scale")
        }
    }
}
