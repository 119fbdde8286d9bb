// Optimizers as per-parameter state machines over `[Parameter]`, organised in parameter groups
// with their own learning rate and weight decay (as torch.optim's param_groups).
//
// Semantics follow PyTorch: the update reads `parameter.grad`; weight decay is the L2 penalty added
// to the gradient (not decoupled); per-parameter state (moments, step count) is created on the
// parameter's first update and keyed by the parameter's stable name, so checkpoints address state
// by name. A parameter that is skipped in a step (or not trainable) is left completely alone, state
// included — the equivalent of `p.grad = None` in PyTorch. FQAT's Freeze Both uses this
// (docs/fqat.md, Freeze policies).
import NN
import TensorCore

/// Parameters sharing a learning rate and weight decay (torch.optim param_groups).
public struct ParameterGroup {
    /// Stable group name ("model", "scales"); checkpoints restore hyperparameters by it.
    public var name: String
    public var parameters: [Parameter]
    /// Hyperparameters are Double like PyTorch's Python floats; kernels cast them to Float at the
    /// same points PyTorch does, so results agree with torch to float32 rounding.
    public var learningRate: Double
    /// L2 penalty coefficient, added to the gradient before the update (PyTorch `weight_decay`).
    public var weightDecay: Double

    public init(name: String, parameters: [Parameter], learningRate: Double, weightDecay: Double = 0) {
        self.name = name
        self.parameters = parameters
        self.learningRate = learningRate
        self.weightDecay = weightDecay
    }
}

/// A first-order optimizer over named parameter groups.
public protocol Optimizer: AnyObject, CustomStringConvertible {
    var groups: [ParameterGroup] { get set }
    /// Updates every trainable parameter of every group from its `grad`, except those whose name is
    /// in `skipping`: a skipped parameter keeps its value and its optimizer state (step count and
    /// moments) untouched.
    func step(skipping: Set<String>)
    /// Everything needed to continue exactly: hyperparameters, group settings, per-parameter state.
    func checkpoint() -> OptimizerCheckpoint
    /// Restores a checkpoint taken from an optimizer of the same kind over parameters of the same
    /// names and sizes. Throws (leaving this optimizer unchanged) when they do not fit.
    func restore(_ checkpoint: OptimizerCheckpoint) throws
}

extension Optimizer {
    /// Updates every trainable parameter.
    public func step() { step(skipping: []) }

    /// Calls `update` for every trainable parameter not in `skipping`, with its group's learning
    /// rate and weight decay, group by group: the loop every optimizer's `step(skipping:)` runs.
    func forEachUpdate(skipping: Set<String>, _ update: (Parameter, _ learningRate: Double, _ weightDecay: Double) -> Void) {
        for group in groups {
            for p in group.parameters where p.trainable && !skipping.contains(p.name) {
                update(p, group.learningRate, group.weightDecay)
            }
        }
    }

    /// Sets the learning rate of the group called `group` (precondition: it exists).
    public func setLearningRate(_ learningRate: Double, group: String) {
        guard let i = groups.firstIndex(where: { $0.name == group }) else {
            preconditionFailure("no parameter group '\(group)'; groups are \(groups.map(\.name))")
        }
        groups[i].learningRate = learningRate
    }

    /// All parameters of all groups, in group order.
    public var allParameters: [Parameter] { groups.flatMap(\.parameters) }
}

/// Serialisable optimizer state. Floats are stored as JSON numbers with Swift's shortest
/// round-trip formatting, so decoding gives back bit-identical values.
public struct OptimizerCheckpoint: Codable, Equatable, Sendable {
    /// "adam" or "sgd".
    public var algorithm: String
    /// Algorithm hyperparameters by name (beta1, beta2, epsilon, momentum, ...).
    public var hyperparameters: [String: Double]
    public var groups: [GroupSettings]
    /// Per-parameter state keyed by parameter name; absent for parameters never updated.
    public var states: [String: ParameterState]

    public struct GroupSettings: Codable, Equatable, Sendable {
        public var name: String
        public var learningRate: Double
        public var weightDecay: Double
        public var parameterNames: [String]
    }

    public struct ParameterState: Codable, Equatable, Sendable {
        /// How many updates this parameter has received (PyTorch `state['step']`).
        public var step: Int
        /// Named buffers, PyTorch names: `exp_avg`, `exp_avg_sq`, `momentum_buffer`.
        public var buffers: [String: [Float]]
    }
}

/// An optimizer checkpoint that does not fit the optimizer it is restored into (user error: the
/// model or optimizer settings changed between saving and loading).
public enum OptimizerStateError: Error, Equatable, CustomStringConvertible {
    case wrongAlgorithm(expected: String, found: String)
    case unknownGroup(String, known: [String])
    case unknownParameter(String)
    case sizeMismatch(parameter: String, expected: Int, found: Int)
    case missingBuffer(parameter: String, buffer: String)

    public var description: String {
        switch self {
        case .wrongAlgorithm(let e, let f):
            return "optimizer checkpoint is for \(f) but the optimizer is \(e); resume with the same optimizer"
        case .unknownGroup(let g, let known):
            return "optimizer checkpoint has parameter group '\(g)' but the optimizer has only \(known); build the same groups before resuming"
        case .unknownParameter(let n):
            return "optimizer checkpoint holds state for '\(n)', which no parameter group contains; load the checkpoint into the same model"
        case .sizeMismatch(let n, let e, let f):
            return "optimizer state for '\(n)' has \(f) elements but the parameter has \(e); the model architecture changed since the checkpoint"
        case .missingBuffer(let n, let b):
            return "optimizer state for '\(n)' lacks its '\(b)' buffer; the checkpoint is damaged or from another optimizer"
        }
    }
}

/// Shared bookkeeping of the concrete optimizers: name lookup and checkpoint validation.
enum OptimizerSupport {
    /// Precondition: parameter names are unique across all groups (state is keyed by name).
    static func checkUniqueNames(_ groups: [ParameterGroup]) {
        var seen = Set<String>()
        for g in groups {
            for p in g.parameters {
                precondition(seen.insert(p.name).inserted,
                             "parameter '\(p.name)' appears twice in the optimizer's groups; state is keyed by name")
            }
        }
    }

    /// Throws unless `checkpoint` is for `algorithm` and every saved state fits a parameter of `groups`.
    static func validate(_ checkpoint: OptimizerCheckpoint, algorithm: String, groups: [ParameterGroup],
                         buffers: [String]) throws {
        guard checkpoint.algorithm == algorithm else {
            throw OptimizerStateError.wrongAlgorithm(expected: algorithm, found: checkpoint.algorithm)
        }
        let groupNames = groups.map(\.name)
        for g in checkpoint.groups where !groupNames.contains(g.name) {
            throw OptimizerStateError.unknownGroup(g.name, known: groupNames)
        }
        var sizes: [String: Int] = [:]
        for g in groups { for p in g.parameters { sizes[p.name] = p.count } }
        for (name, state) in checkpoint.states.sorted(by: { $0.key < $1.key }) {
            guard let size = sizes[name] else { throw OptimizerStateError.unknownParameter(name) }
            for b in buffers {
                guard let values = state.buffers[b] else {
                    throw OptimizerStateError.missingBuffer(parameter: name, buffer: b)
                }
                guard values.count == size else {
                    throw OptimizerStateError.sizeMismatch(parameter: name, expected: size, found: values.count)
                }
            }
        }
    }

    static func groupSettings(_ groups: [ParameterGroup]) -> [OptimizerCheckpoint.GroupSettings] {
        groups.map { .init(name: $0.name, learningRate: $0.learningRate, weightDecay: $0.weightDecay,
                           parameterNames: $0.parameters.map(\.name)) }
    }

    static func restoreGroupSettings(_ settings: [OptimizerCheckpoint.GroupSettings], into groups: inout [ParameterGroup]) {
        for s in settings {
            if let i = groups.firstIndex(where: { $0.name == s.name }) {
                groups[i].learningRate = s.learningRate
                groups[i].weightDecay = s.weightDecay
            }
        }
    }
}
