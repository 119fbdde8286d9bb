// The vocabulary shared by quantizers, range initialisation, placement and export:
// integer ranges, methods, granularity, roles and the typed user errors.
// Ranges follow docs/quantization.md §1 (LSQF config: weights [−2^(b−1), 2^(b−1)−1]).

/// Which integers a quantizer may produce for a bit width b.
public enum QuantizationRange: String, Codable, Sendable, CaseIterable {
    /// [0, 2^b − 1]: post-ReLU activations ("all_positive" in LSQ).
    case unsigned
    /// [−2^(b−1), 2^(b−1) − 1]: weights (the authors' `symmetric: false`) and signed activations.
    case signed
    /// [−2^(b−1) + 1, 2^(b−1) − 1]: the symmetric ("narrow") signed variant.
    case narrowSigned

    /// (Qn, Qp): the lowest and highest integer code for `bits`.
    public func integerBounds(bits: Int) -> (lowest: Int, highest: Int) {
        precondition(Quantizer.supportedBits.contains(bits), "bit width \(bits) outside \(Quantizer.supportedBits)")
        switch self {
        case .unsigned: return (0, (1 << bits) - 1)
        case .signed: return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
        case .narrowSigned: return (-(1 << (bits - 1)) + 1, (1 << (bits - 1)) - 1)
        }
    }
}

/// How the step size and the input gradient are learned.
public enum QuantizationMethod: String, Codable, Sendable, CaseIterable {
    /// Learned step size (Esser et al. 2019): straight-through estimator for x.
    case lsq
    /// Element-wise gradient scaling (Lee et al. 2021) on the LSQ quantizer (docs/quantization.md §1).
    case ewgs
}

/// One step size for the whole tensor, or one per output channel (axis 0 of a weight).
public enum ScaleGranularity: String, Codable, Sendable, CaseIterable {
    case perTensor
    case perChannel
}

/// What a quantizer quantizes; decides the scale name suffix (`.w.s` / `.a.s`, paper Table 3).
public enum QuantizerRole: String, Codable, Sendable {
    case weight
    case activation

    var suffix: String { self == .weight ? "w" : "a" }
}

/// User errors of the quantization module. Each message says what is wrong and what to do.
public enum QuantizationError: Error, Equatable, CustomStringConvertible {
    case unsupportedBits(Int, context: String)
    case patternMatchesNoLayer(pattern: String, knownLayers: [String])
    case invalidPattern(pattern: String, reason: String)
    case alreadyQuantized(layers: [String])
    case notQuantized
    case corruptExport(path: String, reason: String)
    case exportMismatch(reason: String)
    case stateMismatch(reason: String)
    case noCalibrationData

    public var description: String {
        switch self {
        case let .unsupportedBits(b, context):
            return "bit width \(b) for \(context) is not supported: choose 2 to 8 bits"
        case let .patternMatchesNoLayer(pattern, known):
            let few = known.prefix(8).joined(separator: ", ")
            return "layer pattern '\(pattern)' matches no convolution; layers are named like: \(few)\(known.count > 8 ? ", …" : "")"
        case let .invalidPattern(pattern, reason):
            return "layer pattern '\(pattern)' is not valid: \(reason)"
        case let .alreadyQuantized(layers):
            return "the model is already quantized (\(layers.prefix(4).joined(separator: ", "))\(layers.count > 4 ? ", …" : "")): remove the quantizers first or keep the existing ones"
        case .notQuantized:
            return "the model has no quantizers: quantize (and calibrate) it before exporting"
        case let .corruptExport(path, reason):
            return "'\(path)' is not a valid integer export: \(reason)"
        case let .exportMismatch(reason):
            return "the integer export does not fit this model: \(reason)"
        case let .stateMismatch(reason):
            return "saved quantizer state does not fit this model: \(reason)"
        case .noCalibrationData:
            return "calibration needs at least one batch of inputs"
        }
    }
}
