// One optimisation step of every method the paper compares, wired together:
//
//   ERM (full precision)   .singlePass, scales []              policy none
//   LSQ / EWGS (QAT)       .singlePass                         policy none
//   SAGM (full precision)  .sagm, scales []                    policy none
//   LSQ+SAGM, EWGS+SAGM    .sagm                               policy none
//   FQAT                   .sagm                               policy adaptive
//   Table 4 ablations      .sagm                               reverse, freeze-both, no-unfreeze, alternate
//
// step(): gradients (one or two passes) → FreezeController picks each scale's gradient (or skip)
// → optimizer step over both groups, skipping what must be skipped → trace. A failing step (non-
// finite loss or gradient, or an error from the caller's closure) throws before anything is
// updated: parameter values, optimizer state, controller and trace are as before.
import NN
import TensorCore

/// What one step did.
public struct StepReport: Equatable, Sendable {
    /// 1-based step number.
    public var step: Int
    /// Training loss at the unperturbed weights (pass 1).
    public var loss: Float
    /// Loss at the perturbed weights (SAGM pass 2).
    public var perturbedLoss: Float?
    public var gradientNorm: Double
    public var perturbationNorm: Double
    /// Scale factors whose g_QAT was frozen this step.
    public var frozen: [String]
    /// Scale factors that received no update this step.
    public var skipped: [String]
    /// The disorder window this step completed (every K-th step).
    public var completedWindow: DisorderWindow?
}

/// Everything but the parameter values needed to continue a run exactly (the values themselves
/// are saved with the model).
public struct FQATCheckpoint: Codable, Equatable, Sendable {
    public var method: GradientMethod
    public var optimizer: OptimizerCheckpoint
    public var controller: FreezeController
    public var trace: GradientTrace?
}

/// A checkpoint that does not belong to this stepper's model.
public enum StepperCheckpointError: Error, Equatable, CustomStringConvertible {
    case scaleFactorsDiffer(expected: [String], found: [String])

    public var description: String {
        switch self {
        case .scaleFactorsDiffer(let e, let f):
            return "the checkpoint's scale factors (\(f.count): \(f.prefix(4).joined(separator: ", "))…) differ from the model's (\(e.count): \(e.prefix(4).joined(separator: ", "))…); quantize the model the same way before resuming"
        }
    }
}

public final class FQATStepper {
    /// Every non-scale parameter (perturbed by SAGM, updated with 0.5·(g1 + g2)).
    public let weights: [Parameter]
    /// Quantizer scale factors, in a fixed order (controller, trace and gradients use it).
    public let scales: [Parameter]
    public var method: GradientMethod
    public let optimizer: Optimizer
    public private(set) var controller: FreezeController
    public private(set) var trace: GradientTrace?

    /// `optimizer` must contain `weights` and `scales` (e.g. `Adam(weights:scales:...)`).
    /// `traceRecentSteps` nil disables the trace.
    public init(weights: [Parameter], scales: [Parameter], method: GradientMethod, optimizer: Optimizer,
                freeze: FreezeSettings = FreezeSettings(policy: .none), traceRecentSteps: Int? = 2000) throws {
        self.weights = weights
        self.scales = scales
        self.method = method
        self.optimizer = optimizer
        let names = scales.map(\.name)
        controller = try FreezeController(settings: freeze, names: names)
        trace = traceRecentSteps.map { GradientTrace(factorNames: names, recentSteps: $0) }
        let known = Set(optimizer.allParameters.map { ObjectIdentifier($0) })
        for p in weights + scales where p.trainable {
            precondition(known.contains(ObjectIdentifier(p)), "'\(p.name)' is not in any group of the optimizer")
        }
    }

    /// Steps taken so far.
    public var stepsTaken: Int { controller.stepsTaken }

    /// One training step. `computeGradients(pass)` runs forward and backward at the current
    /// parameter values and returns the loss (see `SAGM.step`); pass 2 must not update BatchNorm
    /// running statistics.
    @discardableResult
    public func step(_ computeGradients: (_ pass: Int) throws -> Float) throws -> StepReport {
        let result = try method.computeGradients(weights: weights, scales: scales, computeGradients)
        let decision = controller.decide(result.scales)
        let skipped = decision.apply(to: scales)
        optimizer.step(skipping: skipped)
        trace?.record(result: result, decision: decision, scaleValues: scales.map(\.value))
        return StepReport(step: decision.step, loss: result.loss, perturbedLoss: result.perturbedLoss,
                          gradientNorm: result.gradientNorm, perturbationNorm: result.perturbationNorm,
                          frozen: zip(decision.names, decision.frozen).compactMap { $0.1 ? $0.0 : nil },
                          skipped: decision.names.filter(skipped.contains),
                          completedWindow: decision.completedWindow)
    }

    // MARK: Freezing at the prompt

    @discardableResult
    public func freeze(_ pattern: String, steps: Int? = nil) throws -> [String] { try controller.freeze(pattern, steps: steps) }
    @discardableResult
    public func unfreeze(_ pattern: String, steps: Int? = nil) throws -> [String] { try controller.unfreeze(pattern, steps: steps) }
    @discardableResult
    public func release(_ pattern: String? = nil) -> Int { controller.release(pattern) }
    public func reconfigure(_ settings: FreezeSettings) throws { try controller.reconfigure(settings) }

    // MARK: Checkpoints

    /// The state to save. The trace is the bulk of it (about 8 KiB of JSON per recorded step for
    /// ResNet-50's 105 factors, bounded by the trace capacities); leave it out for small checkpoints.
    public func checkpoint(includingTrace: Bool = true) -> FQATCheckpoint {
        FQATCheckpoint(method: method, optimizer: optimizer.checkpoint(), controller: controller,
                       trace: includingTrace ? trace : nil)
    }

    /// Restores a checkpoint of a stepper over the same scale factors; throws and changes nothing
    /// when it does not fit. A checkpoint saved without its trace starts a fresh, empty trace
    /// (with this stepper's capacities) when this stepper records one.
    public func restore(_ checkpoint: FQATCheckpoint) throws {
        let names = scales.map(\.name)
        guard checkpoint.controller.names == names else {
            throw StepperCheckpointError.scaleFactorsDiffer(expected: names, found: checkpoint.controller.names)
        }
        if let t = checkpoint.trace, t.factorNames != names {
            throw StepperCheckpointError.scaleFactorsDiffer(expected: names, found: t.factorNames)
        }
        try optimizer.restore(checkpoint.optimizer)
        method = checkpoint.method
        controller = checkpoint.controller
        if let saved = checkpoint.trace {
            trace = saved
        } else if let current = trace {
            trace = current.emptied()
        }
    }
}
