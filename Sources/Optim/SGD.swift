// Stochastic gradient descent with momentum [1] and optional Nesterov momentum [2], with the
// semantics of torch.optim.SGD (maximize=False), per parameter:
//
//   g ← grad + λ·p                               (L2 penalty added to the gradient)
//   if μ ≠ 0:
//     b ← g                       on the first update (PyTorch clones the gradient)
//     b ← μ·b + (1 − dampening)·g  afterwards
//     g ← g + μ·b  (Nesterov)  or  g ← b
//   p ← p − lr·g
//
// [1] B. T. Polyak, "Some methods of speeding up the convergence of iteration methods", 1964;
//     I. Sutskever et al., "On the importance of initialization and momentum in deep learning", ICML 2013
//     (the formulation PyTorch uses: momentum applied to the gradient, lr outside the buffer).
// [2] Y. Nesterov, "A method for unconstrained convex minimization problem with the rate of
//     convergence O(1/k²)", 1983.
import NN
import TensorCore

public final class SGD: Optimizer {
    public var groups: [ParameterGroup]
    public var momentum: Double
    public var dampening: Double
    public var nesterov: Bool

    /// Per-parameter state, created on a parameter's first update.
    public struct State: Codable, Equatable, Sendable {
        /// Updates received so far (PyTorch keeps no count for SGD; kept here for inspection).
        public var step: Int
        /// The momentum buffer b (empty when momentum is 0).
        public var momentumBuffer: [Float]
    }

    public private(set) var states: [String: State] = [:]

    public init(groups: [ParameterGroup], momentum: Double = 0, dampening: Double = 0, nesterov: Bool = false) {
        precondition(momentum >= 0, "SGD momentum must be non-negative: \(momentum)")
        precondition(!nesterov || (momentum > 0 && dampening == 0),
                     "Nesterov momentum needs momentum > 0 and dampening 0 (as torch.optim.SGD)")
        OptimizerSupport.checkUniqueNames(groups)
        self.groups = groups
        self.momentum = momentum
        self.dampening = dampening
        self.nesterov = nesterov
    }

    /// One group called "model".
    public convenience init(parameters: [Parameter], learningRate: Double, momentum: Double = 0,
                            weightDecay: Double = 0, nesterov: Bool = false) {
        self.init(groups: [ParameterGroup(name: "model", parameters: parameters, learningRate: learningRate,
                                          weightDecay: weightDecay)],
                  momentum: momentum, nesterov: nesterov)
    }

    public func step(skipping: Set<String>) {
        forEachUpdate(skipping: skipping) { update($0, learningRate: $1, weightDecay: $2) }
    }

    /// The SGD state machine for one parameter.
    private func update(_ p: Parameter, learningRate: Double, weightDecay: Double) {
        precondition(p.grad.count == p.value.count, "SGD: '\(p.name)' grad \(p.grad.shape) vs value \(p.value.shape)")
        var state = states.removeValue(forKey: p.name) ?? State(step: 0, momentumBuffer: [])
        let first = state.step == 0
        state.step += 1
        let decay = Float(weightDecay)
        let hasDecay = weightDecay != 0
        let mu = Float(momentum)
        let keep = Float(1 - dampening)
        let lr = Float(learningRate)
        let useMomentum = momentum != 0
        if useMomentum && first { state.momentumBuffer = [Float](repeating: 0, count: p.count) }
        precondition(!useMomentum || state.momentumBuffer.count == p.count,
                     "SGD: momentum buffer of '\(p.name)' has \(state.momentumBuffer.count) elements, parameter \(p.count)")
        let nesterov = self.nesterov

        // value, grad, b are all (count,)
        p.value.data.withUnsafeMutableBufferPointer { w in
            p.grad.data.withUnsafeBufferPointer { gr in
                state.momentumBuffer.withUnsafeMutableBufferPointer { b in
                    // Elementwise, so chunking across threads cannot change the result.
                    Parallel.forEach(w.count, costPerItem: 6) { range in
                        for i in range {
                            var g = hasDecay ? gr[i] + decay * w[i] : gr[i]
                            if useMomentum {
                                b[i] = first ? g : b[i] * mu + keep * g
                                g = nesterov ? g + mu * b[i] : b[i]
                            }
                            w[i] = w[i] + (-lr) * g
                        }
                    }
                }
            }
        }
        states[p.name] = state
    }

    public func checkpoint() -> OptimizerCheckpoint {
        OptimizerCheckpoint(
            algorithm: "sgd",
            hyperparameters: ["momentum": momentum, "dampening": dampening, "nesterov": nesterov ? 1 : 0],
            groups: OptimizerSupport.groupSettings(groups),
            states: states.mapValues { .init(step: $0.step, buffers: ["momentum_buffer": $0.momentumBuffer]) })
    }

    public func restore(_ checkpoint: OptimizerCheckpoint) throws {
        // Buffer sizes are validated only with momentum; without it the buffers are empty.
        try OptimizerSupport.validate(checkpoint, algorithm: "sgd", groups: groups,
                                      buffers: (checkpoint.hyperparameters["momentum"] ?? 0) != 0 ? ["momentum_buffer"] : [])
        OptimizerSupport.restoreGroupSettings(checkpoint.groups, into: &groups)
        momentum = checkpoint.hyperparameters["momentum"] ?? momentum
        dampening = checkpoint.hyperparameters["dampening"] ?? dampening
        nesterov = (checkpoint.hyperparameters["nesterov"] ?? (nesterov ? 1 : 0)) != 0
        states = checkpoint.states.mapValues { State(step: $0.step, momentumBuffer: $0.buffers["momentum_buffer"] ?? []) }
    }

    public var description: String {
        let g = groups.map { "\($0.name): \($0.parameters.count) tensors, lr \($0.learningRate), weight decay \($0.weightDecay)" }
        return "SGD(momentum \(momentum), dampening \(dampening), nesterov \(nesterov); \(g.joined(separator: "; ")))"
    }
}
