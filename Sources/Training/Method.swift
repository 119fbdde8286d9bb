// The training methods fqat-shell runs, and how each maps onto Optim's step machinery
// (see docs/fqat.md). Every method updates the model weights with the SAGM average when it has a
// flatness pass; they differ in what each scale factor receives.
import Optim

public enum TrainingMethod: String, CaseIterable, Codable, Sendable, CustomStringConvertible {
    /// Full-precision empirical risk minimisation: one pass, no quantizers.
    case erm
    /// Full-precision SAGM (Wang et al. 2023).
    case sagm
    /// Plain QAT (LSQ or EWGS, by the attached quantizers): one pass, g_QAT for the scales.
    case qat
    /// QAT + SAGM: two passes, scales get ½(g_QAT + g_flat). "LSQ+SAGM" in the paper's tables.
    case qatSAGM = "qat+sagm"
    /// FQAT: QAT + SAGM with gradient-disorder-guided adaptive freezing of g_QAT.
    case fqat
    /// Table 4 ablations.
    case alternate
    case freezeBoth = "freeze-both"
    case noUnfreeze = "no-unfreeze"
    case reverse

    public var description: String { rawValue }

    /// Whether the method needs quantizers on the model.
    public var isQuantized: Bool { self != .erm && self != .sagm }

    /// Whether the method takes SAGM's second (flatness) pass.
    public var usesFlatnessPass: Bool { self != .erm && self != .qat }

    /// The freeze policy the method implies.
    public var freezePolicy: FreezePolicy {
        switch self {
        case .erm, .sagm, .qat, .qatSAGM: return .none
        case .fqat: return .adaptive
        case .alternate: return .alternate
        case .freezeBoth: return .freezeBoth
        case .noUnfreeze: return .noUnfreeze
        case .reverse: return .reverse
        }
    }

    /// One line for help and tables.
    public var summary: String {
        switch self {
        case .erm: return "full-precision ERM (one pass)"
        case .sagm: return "full-precision SAGM (two passes)"
        case .qat: return "plain QAT: LSQ or EWGS, one pass, scales get g_QAT"
        case .qatSAGM: return "QAT + SAGM: scales get ½(g_QAT + g_flat), no freezing"
        case .fqat: return "FQAT: QAT + SAGM, g_QAT frozen where its disorder falls below τ"
        case .alternate: return "ablation: scales get g_QAT and g_flat on alternating steps"
        case .freezeBoth: return "ablation: a frozen scale gets neither gradient"
        case .noUnfreeze: return "ablation: once frozen, frozen to the end"
        case .reverse: return "ablation: freeze where disorder is above τ"
        }
    }

    public init(named name: String) throws {
        let n = name.lowercased()
        let aliases: [String: TrainingMethod] = ["lsq": .qat, "ewgs": .qat, "lsq+sagm": .qatSAGM, "ewgs+sagm": .qatSAGM,
                                                 "qat-sagm": .qatSAGM, "alter": .alternate, "freeze_both": .freezeBoth,
                                                 "no_unfreeze": .noUnfreeze]
        if let m = TrainingMethod(rawValue: n) ?? aliases[n] { self = m; return }
        throw TrainingError.unknownMethod(name, known: TrainingMethod.allCases.map(\.rawValue))
    }
}
