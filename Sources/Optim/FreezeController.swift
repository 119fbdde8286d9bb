// Disorder-guided freezing of the QAT gradient of quantizer scale factors (FQAT §4.2–4.3,
// Table 4 ablations; docs/fqat.md, Freeze policies), plus manual overrides addressed by name pattern.
//
// Each step the controller receives g_QAT and g_flat of every scale factor and returns the
// gradient to apply to it (or "skip": no optimizer update at all), using the frozen set decided at
// the end of the previous window. It records g_QAT in a DisorderTracker (frozen or not), and every
// K steps it closes the window and decides the frozen set for the next K steps:
//
//   policy        frozen for the next K steps          applied gradient (SAGM step)
//   none          never                                 0.5·(g_QAT + g_flat)
//   adaptive      D < τ  (strict)                       frozen: 0.5·g_flat,  else 0.5·(g_QAT + g_flat)
//   reverse       D > τ  (strict)                       as adaptive
//   freeze-both   D < τ                                 frozen: skip the update, else 0.5·(g_QAT + g_flat)
//   no-unfreeze   frozen stays frozen; else D < τ       as adaptive
//   alternate     never (no test)                       odd steps 0.5·g_QAT, even steps 0.5·g_flat
//
// Steps are 1-based; nothing is frozen during steps 1…K; the first decision is made at step K.
// The 0.5 factors keep SAGM's averaging (our choice, docs/fqat.md, Freeze policies).
//
// With a single-pass step (plain QAT, no g_flat), unfrozen factors get g_QAT (factor 1, ERM) and
// frozen ones are skipped (no gradient is left); alternate applies g_QAT on odd steps and skips even ones.
//
// Manual overrides sit on top of any policy: freeze or unfreeze the factors whose names match a
// glob (NamePattern) for N steps or until released. The newest matching override wins; setting an
// override for a pattern that already has one replaces it (idempotent). A manually frozen factor is
// frozen in the active policy's sense (skipped under freeze-both, 0.5·g_flat otherwise); a manually
// unfrozen factor gets the policy's unfrozen gradient. Overrides never change the policy's own
// state (so no-unfreeze's sticky set survives a temporary manual unfreeze).
//
// Cost: O(#scale elements) per step (sign/flip update and one scaled copy per factor).
import NN
import TensorCore

/// How scale factors lose their QAT gradient (FQAT §4.3 and the Table 4 ablations).
public enum FreezePolicy: String, Codable, CaseIterable, Sendable, CustomStringConvertible {
    /// QAT+SAGM: no freezing.
    case none
    /// FQAT: every K steps, freeze g_QAT of factors whose disorder is below τ for the next K steps.
    case adaptive
    /// Ablation "Reverse Freeze": freeze factors whose disorder is above τ.
    case reverse
    /// Ablation "Freeze Both": the adaptive test, but a frozen factor receives no update at all.
    case freezeBoth = "freeze-both"
    /// Ablation "w/o Unfreeze": once frozen, frozen to the end of training.
    case noUnfreeze = "no-unfreeze"
    /// Ablation "Alter Update": g_QAT on odd steps, g_flat on even steps; no disorder test.
    case alternate

    /// The policy called `name` (its raw value, e.g. "freeze-both"); throws listing the choices.
    public init(named name: String) throws {
        guard let p = FreezePolicy(rawValue: name) else {
            throw FreezeError.unknownPolicy(name)
        }
        self = p
    }

    /// Whether the policy itself decides freezing from the disorder test.
    public var usesDisorderTest: Bool {
        switch self {
        case .none, .alternate: return false
        case .adaptive, .reverse, .freezeBoth, .noUnfreeze: return true
        }
    }

    /// One-line explanation for help text.
    public var summary: String {
        switch self {
        case .none: return "no freezing: scales get 0.5·(g_QAT + g_flat) (QAT+SAGM)"
        case .adaptive: return "every K steps freeze g_QAT of factors with disorder < τ for the next K steps (FQAT)"
        case .reverse: return "freeze g_QAT of factors with disorder > τ (ablation Reverse Freeze)"
        case .freezeBoth: return "disorder < τ: the factor gets no update at all for K steps (ablation Freeze Both)"
        case .noUnfreeze: return "disorder < τ: g_QAT frozen until the end of training (ablation w/o Unfreeze)"
        case .alternate: return "g_QAT on odd steps, g_flat on even steps, no test (ablation Alter Update)"
        }
    }

    public var description: String { rawValue }
}

/// The freezing hyperparameters.
public struct FreezeSettings: Codable, Equatable, Sendable {
    public var policy: FreezePolicy
    /// K: steps per disorder window and per freezing block.
    public var windowLength: Int
    /// τ: the disorder threshold (compared strictly).
    public var threshold: Float
    /// Count 0 against ±1 as a sign flip (see DisorderTracker); default false.
    public var zeroCountsAsFlip: Bool

    public init(policy: FreezePolicy, windowLength: Int = 100, threshold: Float = 0.5, zeroCountsAsFlip: Bool = false) {
        self.policy = policy
        self.windowLength = windowLength
        self.threshold = threshold
        self.zeroCountsAsFlip = zeroCountsAsFlip
    }
}

/// The gradient a scale factor receives this step.
public enum AppliedGradient: Equatable, Sendable {
    case gradient(Tensor)
    /// No optimizer update at all (value and optimizer state untouched).
    case skip
}

/// The controller's output for one step.
public struct FreezeDecision: Equatable, Sendable {
    /// The 1-based step this decision is for.
    public var step: Int
    /// Factor names, aligned with the arrays below.
    public var names: [String]
    public var applied: [AppliedGradient]
    /// Effective frozen flag of each factor during this step (policy and manual overrides).
    public var frozen: [Bool]
    /// The disorder of the window this step completed, if it completed one.
    public var completedWindow: DisorderWindow?

    /// Names of the factors whose optimizer update must be skipped this step.
    public var skipped: Set<String> {
        Set(zip(names, applied).compactMap { $0.1 == .skip ? $0.0 : nil })
    }

    /// Writes each applied gradient into its scale's `grad` (scales aligned with `names`) and
    /// returns the names the optimizer must skip.
    @discardableResult
    public func apply(to scales: [Parameter]) -> Set<String> {
        precondition(scales.map(\.name) == names, "freeze decision for \(names) applied to scales \(scales.map(\.name))")
        for (s, a) in zip(scales, applied) {
            if case .gradient(let g) = a { s.grad = g }
        }
        return skipped
    }
}

/// A manual freeze or unfreeze of the scale factors matching a pattern.
public struct ManualOverride: Codable, Equatable, Sendable {
    public enum Action: String, Codable, Sendable { case freeze, unfreeze }
    public var pattern: NamePattern
    public var action: Action
    /// Steps left (the override applies to this many further steps); nil: until released.
    public var remainingSteps: Int?
}

/// A user error in configuring freezing.
public enum FreezeError: Error, Equatable, CustomStringConvertible {
    case unknownPolicy(String)
    case noMatchingFactor(pattern: String, known: [String])
    case invalidStepCount(Int)
    case invalidWindowLength(Int)

    public var description: String {
        switch self {
        case .unknownPolicy(let n):
            return "unknown freeze policy '\(n)'; choose one of \(FreezePolicy.allCases.map(\.rawValue).joined(separator: ", "))"
        case .noMatchingFactor(let p, let known):
            let sample = known.prefix(6).joined(separator: ", ") + (known.count > 6 ? ", …" : "")
            return "no scale factor matches '\(p)'; names look like \(sample.isEmpty ? "(none: the model has no quantizers)" : sample)"
        case .invalidStepCount(let n):
            return "a manual freeze must last at least 1 step (got \(n)); omit the step count to hold it until released"
        case .invalidWindowLength(let k):
            return "the disorder window K must be at least 2 steps (got \(k)): disorder compares consecutive gradients"
        }
    }
}

/// Decides, each step, which gradient every scale factor receives.
public struct FreezeController: Codable, Equatable, Sendable {
    public private(set) var settings: FreezeSettings
    public private(set) var tracker: DisorderTracker
    /// Frozen flags decided by the policy at the last window (before manual overrides).
    public private(set) var policyFrozen: [Bool]
    /// Manual overrides, oldest first (the newest matching one wins).
    public private(set) var overrides: [ManualOverride] = []
    /// Steps decided so far; the next decision is for step `stepsTaken + 1`.
    public private(set) var stepsTaken: Int = 0
    /// The most recently completed disorder window.
    public private(set) var lastWindow: DisorderWindow?

    public init(settings: FreezeSettings, names: [String]) throws {
        guard settings.windowLength >= 2 else { throw FreezeError.invalidWindowLength(settings.windowLength) }
        self.settings = settings
        tracker = DisorderTracker(names: names, windowLength: settings.windowLength,
                                  zeroCountsAsFlip: settings.zeroCountsAsFlip)
        policyFrozen = Array(repeating: false, count: names.count)
    }

    /// Scale factor names, in the order gradients are passed.
    public var names: [String] { tracker.names }

    /// Effective frozen flags for the next step (policy, then manual overrides).
    public var frozen: [Bool] {
        let fromPolicy = settings.policy.usesDisorderTest ? policyFrozen : Array(repeating: false, count: names.count)
        return names.indices.map { i in
            switch override(for: names[i]) {
            case .freeze?: return true
            case .unfreeze?: return false
            case nil: return fromPolicy[i]
            }
        }
    }

    /// Names of the factors frozen for the next step.
    public var frozenNames: [String] { zip(names, frozen).compactMap { $0.1 ? $0.0 : nil } }

    /// The newest override whose pattern matches `name`.
    private func override(for name: String) -> ManualOverride.Action? {
        overrides.last(where: { $0.pattern.matches(name) })?.action
    }

    // MARK: Configuration

    /// Changes policy and threshold; changing K (or the zero rule) restarts the current window.
    /// Policy state (frozen flags, no-unfreeze's sticky set) is kept.
    public mutating func reconfigure(_ newSettings: FreezeSettings) throws {
        guard newSettings.windowLength >= 2 else { throw FreezeError.invalidWindowLength(newSettings.windowLength) }
        if newSettings.windowLength != settings.windowLength || newSettings.zeroCountsAsFlip != settings.zeroCountsAsFlip {
            tracker = DisorderTracker(names: names, windowLength: newSettings.windowLength,
                                      zeroCountsAsFlip: newSettings.zeroCountsAsFlip)
        }
        settings = newSettings
    }

    /// Freezes the QAT gradient of the factors matching `pattern` for the next `steps` steps, or
    /// until released when `steps` is nil. Returns the matching names.
    @discardableResult
    public mutating func freeze(_ pattern: String, steps: Int? = nil) throws -> [String] {
        try setOverride(pattern, .freeze, steps: steps)
    }

    /// Forces the factors matching `pattern` unfrozen (whatever the policy decides) for the next
    /// `steps` steps, or until released. Returns the matching names.
    @discardableResult
    public mutating func unfreeze(_ pattern: String, steps: Int? = nil) throws -> [String] {
        try setOverride(pattern, .unfreeze, steps: steps)
    }

    /// Removes the override set with exactly this pattern text (all overrides when nil), handing
    /// those factors back to the policy. Returns how many overrides were removed.
    @discardableResult
    public mutating func release(_ pattern: String? = nil) -> Int {
        let before = overrides.count
        overrides.removeAll { pattern == nil || $0.pattern.text == pattern }
        return before - overrides.count
    }

    /// The names matching `pattern` (throws for a malformed pattern).
    public func names(matching pattern: String) throws -> [String] {
        let p = try NamePattern(pattern)
        return names.filter(p.matches)
    }

    private mutating func setOverride(_ text: String, _ action: ManualOverride.Action, steps: Int?) throws -> [String] {
        if let s = steps, s < 1 { throw FreezeError.invalidStepCount(s) }
        let pattern = try NamePattern(text)
        let matched = names.filter(pattern.matches)
        guard !matched.isEmpty else { throw FreezeError.noMatchingFactor(pattern: text, known: names) }
        overrides.removeAll { $0.pattern.text == text }
        overrides.append(ManualOverride(pattern: pattern, action: action, remainingSteps: steps))
        return matched
    }

    // MARK: The step

    /// Decides this step's gradient for every factor (gradients aligned with `names`), records
    /// g_QAT for the disorder, advances manual-override timers, and at the end of every K-step
    /// window decides the frozen set for the next K steps.
    public mutating func decide(_ gradients: [ScaleGradients]) -> FreezeDecision {
        precondition(gradients.map(\.name) == names, "freeze controller for \(names) got gradients of \(gradients.map(\.name))")
        let step = stepsTaken + 1
        let frozenNow = frozen
        var applied: [AppliedGradient] = []
        applied.reserveCapacity(names.count)
        for (g, isFrozen) in zip(gradients, frozenNow) {
            applied.append(FreezeMath.applied(policy: settings.policy, frozen: isFrozen, step: step,
                                              qat: g.qat, flat: g.flat))
        }

        // Disorder of g_QAT, recorded whether frozen or not (docs/fqat.md, Freeze policies).
        let window = tracker.record(gradients.map(\.qat))
        stepsTaken = step

        // Manual overrides: one step used.
        for i in overrides.indices { if let r = overrides[i].remainingSteps { overrides[i].remainingSteps = r - 1 } }
        overrides.removeAll { $0.remainingSteps == 0 }

        if let window {
            lastWindow = window
            decideNextBlock(window.disorder)
        }
        return FreezeDecision(step: step, names: names, applied: applied, frozen: frozenNow, completedWindow: window)
    }

    /// The policy's frozen set for the next K steps, from the window's disorder.
    private mutating func decideNextBlock(_ disorder: [Float]) {
        let tau = settings.threshold
        for i in names.indices {
            let d = disorder[i]
            switch settings.policy {
            case .none, .alternate:
                policyFrozen[i] = false
            case .adaptive, .freezeBoth:
                policyFrozen[i] = d < tau
            case .reverse:
                policyFrozen[i] = d > tau
            case .noUnfreeze:
                // Only the unfrozen factors are evaluated; a frozen one stays frozen.
                policyFrozen[i] = policyFrozen[i] || d < tau
            }
        }
    }
}

/// The applied-gradient rule, shared by the controller and SAGM's default.
enum FreezeMath {
    static func applied(policy: FreezePolicy, frozen: Bool, step: Int, qat: Tensor, flat: Tensor?) -> AppliedGradient {
        guard let flat else {
            // Single pass: only g_QAT exists.
            if frozen { return .skip }
            if policy == .alternate && step % 2 == 0 { return .skip }
            return .gradient(qat)
        }
        if frozen { return policy == .freezeBoth ? .skip : .gradient(flat.scaled(by: 0.5)) }
        if policy == .alternate { return .gradient((step % 2 == 1 ? qat : flat).scaled(by: 0.5)) }
        return .gradient(half(qat, plus: flat))
    }

    /// 0.5·(a + b), elementwise in Float.
    static func half(_ a: Tensor, plus b: Tensor) -> Tensor {
        precondition(a.count == b.count, "0.5·(a + b): \(a.shape) vs \(b.shape)")
        var out = a
        out.data.withUnsafeMutableBufferPointer { o in
            b.data.withUnsafeBufferPointer { bb in
                for i in 0..<o.count { o[i] = 0.5 * (o[i] + bb[i]) }
            }
        }
        return out
    }
}
