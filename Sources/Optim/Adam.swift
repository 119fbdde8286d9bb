// Adam [1] with the semantics of torch.optim.Adam (amsgrad=False, maximize=False, the
// single-tensor CPU path of PyTorch 2.x), per parameter:
//
//   t  ← t + 1                                   (per-parameter step count)
//   g  ← grad + λ·p                              (L2 penalty added to the gradient, not decoupled)
//   m  ← m + (1 − β1)·(g − m)                     (= β1·m + (1 − β1)·g; PyTorch's lerp form)
//   v  ← β2·v + (1 − β2)·g·g
//   p  ← p − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + ε)
//
// i.e. p −= lr·m̂/(√v̂ + ε) with ε added after the square root of the *corrected* second moment.
// Bias corrections are computed in Double (PyTorch computes them with Python floats) and cast to
// Float for the element loop, which is written in PyTorch's operation order.
//
// [1] D. P. Kingma, J. Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015.
// SAGM's base optimizer is torch.optim.Adam (docs/fqat.md, Optimizers); FQAT adds a scale-factor group
// with its own fixed learning rate and weight decay 0 (§3.2).
import Foundation
import NN
import TensorCore

public final class Adam: Optimizer {
    public var groups: [ParameterGroup]
    public var beta1: Double
    public var beta2: Double
    public var epsilon: Double

    /// Per-parameter state, created on a parameter's first update.
    public struct State: Codable, Equatable, Sendable {
        /// Updates received so far; drives the bias correction of this parameter alone.
        public var step: Int
        /// m: exponential average of gradients (PyTorch `exp_avg`).
        public var firstMoment: [Float]
        /// v: exponential average of squared gradients (PyTorch `exp_avg_sq`).
        public var secondMoment: [Float]
    }

    /// State by parameter name.
    public private(set) var states: [String: State] = [:]

    public init(groups: [ParameterGroup], beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8) {
        precondition((0..<1).contains(beta1) && (0..<1).contains(beta2), "Adam betas must lie in [0, 1): \(beta1), \(beta2)")
        precondition(epsilon >= 0, "Adam epsilon must be non-negative: \(epsilon)")
        OptimizerSupport.checkUniqueNames(groups)
        self.groups = groups
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
    }

    /// One group called "model".
    public convenience init(parameters: [Parameter], learningRate: Double, weightDecay: Double = 0,
                            beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8) {
        self.init(groups: [ParameterGroup(name: "model", parameters: parameters, learningRate: learningRate,
                                          weightDecay: weightDecay)],
                  beta1: beta1, beta2: beta2, epsilon: epsilon)
    }

    /// FQAT's two groups (our choice, docs/fqat.md, Optimizers): "model" (every non-scale parameter, the
    /// DomainBed lr and weight decay) and "scales" (quantizer step sizes, a fixed lr, no decay).
    public convenience init(weights: [Parameter], scales: [Parameter], learningRate: Double, weightDecay: Double,
                            scaleLearningRate: Double) {
        self.init(groups: [
            ParameterGroup(name: "model", parameters: weights, learningRate: learningRate, weightDecay: weightDecay),
            ParameterGroup(name: "scales", parameters: scales, learningRate: scaleLearningRate, weightDecay: 0),
        ])
    }

    public func step(skipping: Set<String>) {
        forEachUpdate(skipping: skipping) { update($0, learningRate: $1, weightDecay: $2) }
    }

    /// The Adam state machine for one parameter.
    private func update(_ p: Parameter, learningRate: Double, weightDecay: Double) {
        precondition(p.grad.count == p.value.count, "Adam: '\(p.name)' grad \(p.grad.shape) vs value \(p.value.shape)")
        var state = states.removeValue(forKey: p.name)
            ?? State(step: 0, firstMoment: [Float](repeating: 0, count: p.count),
                     secondMoment: [Float](repeating: 0, count: p.count))
        precondition(state.firstMoment.count == p.count, "Adam: state of '\(p.name)' has \(state.firstMoment.count) elements, parameter \(p.count)")
        state.step += 1
        let t = Double(state.step)
        let biasCorrection1 = 1 - pow(beta1, t)
        let biasCorrection2 = 1 - pow(beta2, t)
        // Scalars as PyTorch hands them to its float kernels.
        let stepSize = Float(learningRate / biasCorrection1)
        let biasCorrection2Root = Float(biasCorrection2.squareRoot())
        let decay = Float(weightDecay)
        let oneMinusBeta1 = Float(1 - beta1)
        let beta2f = Float(beta2)
        let oneMinusBeta2 = Float(1 - beta2)
        let eps = Float(epsilon)
        let hasDecay = weightDecay != 0

        // value, grad, m, v are all (count,)
        p.value.data.withUnsafeMutableBufferPointer { w in
            p.grad.data.withUnsafeBufferPointer { gr in
                state.firstMoment.withUnsafeMutableBufferPointer { m in
                    state.secondMoment.withUnsafeMutableBufferPointer { v in
                        // Elementwise, so chunking across threads cannot change the result.
                        Parallel.forEach(w.count, costPerItem: 12) { range in
                            for i in range {
                                let g = hasDecay ? gr[i] + decay * w[i] : gr[i]
                                m[i] = m[i] + oneMinusBeta1 * (g - m[i])
                                v[i] = v[i] * beta2f + oneMinusBeta2 * g * g
                                let denom = v[i].squareRoot() / biasCorrection2Root + eps
                                w[i] = w[i] + (-stepSize) * m[i] / denom
                            }
                        }
                    }
                }
            }
        }
        states[p.name] = state
    }

    public func checkpoint() -> OptimizerCheckpoint {
        OptimizerCheckpoint(
            algorithm: "adam",
            hyperparameters: ["beta1": beta1, "beta2": beta2, "epsilon": epsilon],
            groups: OptimizerSupport.groupSettings(groups),
            states: states.mapValues { .init(step: $0.step, buffers: ["exp_avg": $0.firstMoment, "exp_avg_sq": $0.secondMoment]) })
    }

    public func restore(_ checkpoint: OptimizerCheckpoint) throws {
        try OptimizerSupport.validate(checkpoint, algorithm: "adam", groups: groups, buffers: ["exp_avg", "exp_avg_sq"])
        OptimizerSupport.restoreGroupSettings(checkpoint.groups, into: &groups)
        beta1 = checkpoint.hyperparameters["beta1"] ?? beta1
        beta2 = checkpoint.hyperparameters["beta2"] ?? beta2
        epsilon = checkpoint.hyperparameters["epsilon"] ?? epsilon
        states = checkpoint.states.mapValues {
            State(step: $0.step, firstMoment: $0.buffers["exp_avg"]!, secondMoment: $0.buffers["exp_avg_sq"]!)
        }
    }

    public var description: String {
        let g = groups.map { "\($0.name): \($0.parameters.count) tensors, lr \($0.learningRate), weight decay \($0.weightDecay)" }
        return "Adam(beta1 \(beta1), beta2 \(beta2), epsilon \(epsilon); \(g.joined(separator: "; ")))"
    }
}
