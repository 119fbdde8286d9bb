// Snapshot and restore of every quantizer's configuration, for checkpoints and session resume.
// A model's state dict already holds the step sizes (`<layer>.w.s`, `<layer>.a.s`), but not what
// calibration decided (signed or unsigned activations), the bit widths, method or EWGS δ.
import NN
import TensorCore

public struct QuantizerState: Codable, Equatable, Sendable {
    public var layer: String
    public var role: QuantizerRole
    public var bits: Int
    public var range: QuantizationRange
    public var granularity: ScaleGranularity
    public var method: QuantizationMethod
    public var ewgsDelta: Float
    public var quantizationEnabled: Bool
    public var rangeFromData: Bool
    public var isInitialized: Bool
    public var scale: [Float]
    public var scaleTrainable: Bool
}

/// Every quantizer's state, in `quantizers(in:)` order.
public func quantizerStates(in model: Module) -> [QuantizerState] {
    quantizers(in: model).map { q in
        QuantizerState(layer: q.layerName, role: q.role, bits: q.bits, range: q.range, granularity: q.granularity,
                       method: q.method, ewgsDelta: q.ewgsDelta, quantizationEnabled: q.quantizationEnabled,
                       rangeFromData: q.rangeFromData, isInitialized: q.isInitialized, scale: q.scale.value.data,
                       scaleTrainable: q.scale.trainable)
    }
}

/// Recreates the quantizers described by `states` on a model without quantizers (a fresh build of
/// the same architecture), or updates the existing ones when the model has exactly these quantizers.
public func restoreQuantizers(_ states: [QuantizerState], in model: Module) throws {
    func mismatch(_ reason: String) -> QuantizationError { .stateMismatch(reason: reason) }
    let convs = Dictionary(uniqueKeysWithValues: convolutions(in: model).map { ($0.name, $0) })
    let existing = quantizers(in: model)
    if !existing.isEmpty {
        guard existing.map(\.name) == states.map({ "\($0.layer).\($0.role.suffix)" }) else {
            throw mismatch("the model's quantizers (\(existing.count)) differ from the saved ones (\(states.count)); remove them first")
        }
    }
    // Validate everything before changing anything.
    for s in states {
        guard let conv = convs[s.layer] else { throw mismatch("no convolution named '\(s.layer)'") }
        guard Quantizer.supportedBits.contains(s.bits) else { throw QuantizationError.unsupportedBits(s.bits, context: s.layer) }
        let channels = s.granularity == .perChannel ? conv.outChannels : 1
        guard s.scale.count == channels else {
            throw mismatch("'\(s.layer)' \(s.role.rawValue) has \(s.scale.count) step sizes, the layer needs \(channels)")
        }
        guard s.granularity == .perTensor || s.role == .weight else {
            throw mismatch("'\(s.layer)': per-channel step sizes are for weights only")
        }
    }
    for (q, s) in zip(existing, states) where q.granularity != s.granularity {
        throw mismatch("'\(q.name)' is \(q.granularity.rawValue) in the model, \(s.granularity.rawValue) in the saved state")
    }
    for (i, s) in states.enumerated() {
        let conv = convs[s.layer]!
        let q: Quantizer
        if existing.isEmpty {
            q = Quantizer(layerName: s.layer, role: s.role, bits: s.bits, range: s.range, granularity: s.granularity,
                          channels: s.granularity == .perChannel ? conv.outChannels : 1, method: s.method,
                          weight: s.role == .weight ? conv.weight : nil, rangeFromData: s.rangeFromData)
            if s.role == .weight { conv.weightQuantizer = q } else { conv.inputQuantizer = q }
        } else {
            q = existing[i]
            try q.setBits(s.bits, range: s.range)
            q.method = s.method
            q.rangeFromData = s.rangeFromData
        }
        q.ewgsDelta = s.ewgsDelta
        q.quantizationEnabled = s.quantizationEnabled
        q.isInitialized = s.isInitialized
        q.scale.value = Tensor(shape: [s.scale.count], data: s.scale)
        q.scale.trainable = s.scaleTrainable
    }
}
