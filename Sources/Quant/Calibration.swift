// Range calibration of a quantized model (docs/quantization.md §2) and the per-layer quantization report.
//
// Weights: each weight quantizer runs its estimator once on the current weight tensor.
// Activations (QC quantization/utils.py `pass_data_for_range_estimation`): the model runs in eval
// mode (no BatchNorm statistic updates, no caches) with weight and activation quantization on; each
// activation quantizer is in observe mode and re-estimates s on every batch before quantizing with
// it, so a later layer calibrates on the already-quantized outputs of earlier layers. Estimates
// accumulate over all batches (MSE losses add up on the grid fixed by the first batch).
import Foundation
import NN
import TensorCore

public struct CalibrationOptions: Sendable, Equatable {
    /// The paper (§5.1) uses MSE range estimation for both.
    public var weightMethod: RangeInitMethod
    public var activationMethod: RangeInitMethod
    public var search: MSESearchOptions

    public init(weightMethod: RangeInitMethod = .mse, activationMethod: RangeInitMethod = .mse,
                search: MSESearchOptions = MSESearchOptions()) {
        self.weightMethod = weightMethod
        self.activationMethod = activationMethod
        self.search = search
    }
}

/// What a calibration did.
public struct CalibrationSummary: Sendable, Equatable {
    public var weightQuantizers: Int
    public var activationQuantizers: Int
    public var batches: Int
    /// Activation quantizers that calibration made signed (data with negative values).
    public var signedActivations: [String]
    /// Activation quantizers no batch reached (their s is unchanged).
    public var unreached: [String]
}

/// Calibrates every quantizer of `model` from `batchCount` batches given by `batch(i)`.
@discardableResult
public func calibrateQuantizers(in model: Module, batchCount: Int, options: CalibrationOptions = CalibrationOptions(),
                                batch: (Int) -> Tensor) throws -> CalibrationSummary {
    let all = quantizers(in: model)
    guard !all.isEmpty else { throw QuantizationError.notQuantized }
    guard batchCount >= 1 else { throw QuantizationError.noCalibrationData }
    let enabled = all.map(\.quantizationEnabled)
    defer { for (q, e) in zip(all, enabled) { q.quantizationEnabled = e } }
    for q in all { q.quantizationEnabled = true }

    let weights = all.filter { $0.role == .weight }
    for q in weights {
        guard let w = q.weight else { continue }
        q.initializeScale(from: w.value, method: options.weightMethod, options: options.search)
    }
    let activations = all.filter { $0.role == .activation }
    for q in activations { q.beginCalibration(method: options.activationMethod, options: options.search) }
    let ctx = ForwardContext(training: false, updateRunningStats: false, needsBackward: false)
    for i in 0..<batchCount {
        _ = model.forward(batch(i), ctx)
    }
    var unreached: [String] = []
    for q in activations where !q.finishCalibration() { unreached.append(q.name) }
    return CalibrationSummary(weightQuantizers: weights.count, activationQuantizers: activations.count,
                              batches: batchCount,
                              signedActivations: activations.filter { $0.range != .unsigned }.map(\.name),
                              unreached: unreached)
}

@discardableResult
public func calibrateQuantizers(in model: Module, batches: [Tensor],
                                options: CalibrationOptions = CalibrationOptions()) throws -> CalibrationSummary {
    try calibrateQuantizers(in: model, batchCount: batches.count, options: options) { batches[$0] }
}

// MARK: - Per-layer report

/// Quantization error of one convolution.
public struct LayerQuantizationReport: Sendable, Equatable {
    public var layer: String
    public var weightBits: Int?
    public var weightRange: QuantizationRange?
    /// Step sizes of the weight (one per channel or one).
    public var weightScales: [Float]
    /// 10·log10(Σw² / Σ(w − Q(w))²) in dB; +∞ when Q is exact.
    public var weightSQNR: Double?
    public var activationBits: Int?
    public var activationRange: QuantizationRange?
    public var activationScale: Float?
    /// SQNR of the layer's input over the report batch, measured inside the quantized model.
    public var activationSQNR: Double?
    /// Fraction of input elements outside [Qn·s, Qp·s] (clipped).
    public var activationClipped: Double?
}

func signalToQuantizationNoise(signal: Double, noise: Double) -> Double {
    noise > 0 ? 10 * log10(signal / noise) : .infinity
}

/// One row per Conv2d (full-precision ones included, with nil fields). Activation numbers come from
/// one eval-mode forward of `batch` through the quantized model; nil `batch` leaves them out.
public func quantizationReport(for model: Module, batch: Tensor? = nil) -> [LayerQuantizationReport] {
    final class Energy { var signal = 0.0, noise = 0.0, clipped = 0, count = 0 }
    var energies: [ObjectIdentifier: Energy] = [:]
    if let x = batch {
        let acts = quantizers(in: model).filter { $0.role == .activation }
        let saved = acts.map(\.observer)
        for q in acts {
            let e = Energy()
            energies[ObjectIdentifier(q)] = e
            let low = Float(q.lowest), high = Float(q.highest)
            let s = q.effectiveScales[0]
            q.observer = { input, output in
                for i in 0..<input.count {
                    let a = Double(input.data[i]), d = a - Double(output.data[i])
                    e.signal += a * a
                    e.noise += d * d
                    let v = input.data[i] / s
                    if v < low || v > high { e.clipped += 1 }
                }
                e.count += input.count
            }
        }
        _ = model.forward(x, ForwardContext(training: false, updateRunningStats: false, needsBackward: false))
        for (q, o) in zip(acts, saved) { q.observer = o }
    }
    return convolutions(in: model).map { conv in
        var row = LayerQuantizationReport(layer: conv.name, weightBits: nil, weightRange: nil, weightScales: [],
                                          weightSQNR: nil, activationBits: nil, activationRange: nil,
                                          activationScale: nil, activationSQNR: nil, activationClipped: nil)
        if let q = conv.weightQuantizer as? Quantizer {
            row.weightBits = q.bits
            row.weightRange = q.range
            row.weightScales = q.scale.value.data
            let w = conv.weight.value
            row.weightSQNR = signalToQuantizationNoise(signal: w.squaredNorm(), noise: (q.fakeQuantize(w) - w).squaredNorm())
        }
        if let q = conv.inputQuantizer as? Quantizer {
            row.activationBits = q.bits
            row.activationRange = q.range
            row.activationScale = q.scale.value.data[0]
            if let e = energies[ObjectIdentifier(q)], e.count > 0 {
                row.activationSQNR = signalToQuantizationNoise(signal: e.signal, noise: e.noise)
                row.activationClipped = Double(e.clipped) / Double(e.count)
            }
        }
        return row
    }
}

/// An aligned text table of a report.
public func formatQuantizationReport(_ rows: [LayerQuantizationReport]) -> String {
    func db(_ v: Double?) -> String {
        guard let v else { return "-" }
        return v.isInfinite ? "inf" : String(format: "%.2f", v)
    }
    func scales(_ s: [Float]) -> String {
        if s.isEmpty { return "-" }
        if s.count == 1 { return String(format: "%.4g", Double(s[0])) }
        let lo = s.min()!, hi = s.max()!
        return String(format: "%.3g..%.3g (%d ch)", Double(lo), Double(hi), s.count)
    }
    func bits(_ b: Int?, _ r: QuantizationRange?) -> String {
        guard let b, let r else { return "fp" }
        return "\(b) \(r == .unsigned ? "u" : (r == .signed ? "s" : "ns"))"
    }
    var table: [[String]] = [["layer", "w bits", "w scale", "w SQNR dB", "a bits", "a scale", "a SQNR dB", "a clipped"]]
    for r in rows {
        table.append([r.layer, bits(r.weightBits, r.weightRange), scales(r.weightScales), db(r.weightSQNR),
                      bits(r.activationBits, r.activationRange), r.activationScale.map { String(format: "%.4g", Double($0)) } ?? "-",
                      db(r.activationSQNR), r.activationClipped.map { String(format: "%.2f%%", 100 * $0) } ?? "-"])
    }
    let widths = (0..<table[0].count).map { c in table.map { $0[c].count }.max()! }
    return table.map { row in
        row.enumerated().map { c, cell in cell + String(repeating: " ", count: widths[c] - cell.count) }
            .joined(separator: "  ").trimmingTrailingSpaces()
    }.joined(separator: "\n")
}

private extension String {
    func trimmingTrailingSpaces() -> String {
        var s = self
        while s.hasSuffix(" ") { s.removeLast() }
        return s
    }
}
