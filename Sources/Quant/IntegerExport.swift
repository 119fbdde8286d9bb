// Integer export of a quantized Network to safetensors, and the integer model rebuilt from it.
//
// File layout (format "fqat-integer-v1", docs/quantization.md "Integer export"):
//   <layer>.weight.codes  I8 (U8 for an unsigned weight range)  (Cout, Cin, k, k)  integer weight codes
//   <layer>.w.s           F32 (Cout) or (1)                                        weight step sizes
//   <layer>.a.s           F32 (1)                                                  input step size
//   every other parameter and buffer of the network as F32 under its own name (stem weight, conv
//   biases, BatchNorm / GroupNorm affine and running statistics, fc)
//   __metadata__: format, architecture, in_channels, classes, width, shortcut, and "quantized_layers",
//   a JSON array with, per quantized conv, bits, range name and integer bounds of weight and input,
//   weight granularity, method and EWGS δ.
// Loading rebuilds the network with `Network.make`, attaches quantizers with the stored step sizes,
// sets each quantized weight to codes·s (so the fake-quantized path reproduces the exporter's
// exactly) and plugs an `IntegerConv` built from the stored codes into every conv whose weight and
// input are both quantized. Everything is validated; problems throw `QuantizationError.corruptExport`.
import Foundation
import NN
import TensorCore

public let integerExportFormat = "fqat-integer-v1"

/// One quantized convolution as recorded in the export's metadata.
public struct ExportedLayer: Codable, Equatable, Sendable {
    public var layer: String
    public var method: String
    public var ewgsDelta: Float
    public var weightBits: Int?
    public var weightRange: String?
    public var weightLowest: Int?
    public var weightHighest: Int?
    public var weightGranularity: String?
    public var activationBits: Int?
    public var activationRange: String?
    public var activationLowest: Int?
    public var activationHighest: Int?
}

public struct IntegerExportSummary: Sendable, Equatable {
    public var path: String
    /// Convs with at least one quantizer.
    public var quantizedLayers: [String]
    /// Convs stored as integer weight codes.
    public var integerWeightLayers: [String]
    public var tensors: Int
    public var bytes: Int
}

/// Writes the integer export. `width` is the channel multiplier the network was built with
/// (`Network.make(width:)`; Network does not record it); the residual shortcut is detected.
@discardableResult
public func exportIntegerModel(_ network: Network, to path: String, width: Double = 1) throws -> IntegerExportSummary {
    guard !quantizers(in: network).isEmpty else { throw QuantizationError.notQuantized }
    var tensors: [(String, SafeTensorValue)] = []
    var layers: [ExportedLayer] = []
    var replaced = Set<String>()      // FP state-dict names stored another way
    var integerWeights: [String] = []
    for conv in convolutions(in: network) {
        let wq = conv.weightQuantizer as? Quantizer, aq = conv.inputQuantizer as? Quantizer
        if wq == nil && aq == nil { continue }
        guard (conv.weightQuantizer == nil || wq != nil) && (conv.inputQuantizer == nil || aq != nil) else {
            throw QuantizationError.exportMismatch(reason: "\(conv.name) has a quantizer that is not a Quant.Quantizer")
        }
        // A diverged model (NaN or infinite weights or step sizes) has no integer codes: say so by name.
        for q in [wq, aq].compactMap({ $0 }) where !q.scale.value.data.allSatisfy({ $0.isFinite && $0 > 0 }) {
            throw QuantizationError.exportMismatch(reason: "\(q.scale.name) holds a step size that is zero, negative, NaN or infinite (did training diverge?); load or train a model with finite step sizes first")
        }
        if wq != nil, !conv.weight.value.data.allSatisfy({ $0.isFinite }) {
            throw QuantizationError.exportMismatch(reason: "\(conv.weight.name) holds NaN or infinite values (did training diverge?); load or train a model with finite weights first")
        }
        var entry = ExportedLayer(layer: conv.name, method: (wq ?? aq)!.method.rawValue, ewgsDelta: (wq ?? aq)!.ewgsDelta)
        if let q = wq {
            guard q.lowest >= (q.range == .unsigned ? 0 : -128), q.highest <= (q.range == .unsigned ? 255 : 127) else {
                throw QuantizationError.exportMismatch(reason: "\(conv.name) weight codes [\(q.lowest), \(q.highest)] do not fit 8 bits")
            }
            let codes = q.integerCodes(conv.weight.value)
            let value: SafeTensorValue = q.range == .unsigned
                ? .uint8(codes.data.map { UInt8($0) }, shape: codes.shape)
                : .int8(codes.data.map { Int8($0) }, shape: codes.shape)
            tensors.append(("\(conv.name).weight.codes", value))
            tensors.append((q.scale.name, .float(Tensor(shape: [q.channels], data: q.effectiveScales))))
            replaced.insert(conv.weight.name)
            entry.weightBits = q.bits
            entry.weightRange = q.range.rawValue
            entry.weightLowest = q.lowest
            entry.weightHighest = q.highest
            entry.weightGranularity = q.granularity.rawValue
            integerWeights.append(conv.name)
        }
        if let q = aq {
            tensors.append((q.scale.name, .float(Tensor(shape: [1], data: q.effectiveScales))))
            entry.activationBits = q.bits
            entry.activationRange = q.range.rawValue
            entry.activationLowest = q.lowest
            entry.activationHighest = q.highest
        }
        layers.append(entry)
    }
    let scaleNames = Set(scaleParameters(in: network).map(\.name))
    let state = network.stateDict()
    for name in network.stateDictNames where !replaced.contains(name) && !scaleNames.contains(name) {
        tensors.append((name, .float(state[name]!)))
    }
    let hasProjection = network.namedModules().contains { $0.0.hasSuffix(".downsample") }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    let layerJSON = String(decoding: try encoder.encode(layers), as: UTF8.self)
    let metadata = [
        "format": integerExportFormat,
        "architecture": network.architecture,
        "in_channels": String(network.inChannels),
        "classes": String(network.classes),
        "width": String(width),
        "shortcut": (hasProjection ? ResidualShortcut.projection : ResidualShortcut.zeroPadding).rawValue,
        "quantized_layers": layerJSON,
    ]
    let url = URL(fileURLWithPath: path)
    try SafeTensors.write(tensors, metadata: metadata, to: url)
    let bytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
    return IntegerExportSummary(path: path, quantizedLayers: layers.map(\.layer), integerWeightLayers: integerWeights,
                                tensors: tensors.count, bytes: bytes)
}

/// Rebuilds the quantized network from an export alone. With `integerInference` (default) every
/// conv whose weight and input are quantized runs `IntegerConv` in inference; training-mode
/// forwards (and `integerInference: false`) use the fake-quantized path with the same step sizes.
public func loadIntegerModel(from path: String, integerInference: Bool = true) throws -> Network {
    func corrupt(_ reason: String) -> QuantizationError { .corruptExport(path: path, reason: reason) }
    let file: SafeTensorsFile
    do { file = try SafeTensors.read(contentsOf: URL(fileURLWithPath: path)) } catch {
        throw corrupt("\(error)")
    }
    let meta = file.metadata
    guard meta["format"] == integerExportFormat else {
        throw corrupt("metadata 'format' is \(meta["format"].map { "'\($0)'" } ?? "missing"), expected '\(integerExportFormat)'")
    }
    guard let architecture = meta["architecture"], let inChannels = meta["in_channels"].flatMap({ Int($0) }),
          let classes = meta["classes"].flatMap({ Int($0) }), let width = meta["width"].flatMap({ Double($0) }),
          let shortcut = meta["shortcut"].flatMap({ ResidualShortcut(rawValue: $0) }),
          let layerText = meta["quantized_layers"] else {
        throw corrupt("metadata lacks architecture, in_channels, classes, width, shortcut or quantized_layers")
    }
    let layers: [ExportedLayer]
    do { layers = try JSONDecoder().decode([ExportedLayer].self, from: Data(layerText.utf8)) } catch {
        throw corrupt("metadata 'quantized_layers' is not valid: \(error)")
    }
    guard !layers.isEmpty else { throw corrupt("no quantized layers") }
    let network: Network
    do {
        network = try Network.make(architecture: architecture, inChannels: inChannels, classes: classes,
                                   width: width, shortcut: shortcut)
    } catch {
        throw corrupt("cannot rebuild the network: \(error)")
    }
    let convs = Dictionary(uniqueKeysWithValues: convolutions(in: network).map { ($0.name, $0) })
    var state = file.stateDict
    var overrides: [(Conv2d, IntegerConv)] = []
    for entry in layers {
        guard let conv = convs[entry.layer] else { throw corrupt("quantized layer '\(entry.layer)' is not a convolution of \(architecture)") }
        guard let method = QuantizationMethod(rawValue: entry.method) else { throw corrupt("\(entry.layer): unknown method '\(entry.method)'") }
        var weightCodes: [Int8]? = nil
        var weightScales: [Float] = []
        if let bits = entry.weightBits {
            guard let rangeName = entry.weightRange, let range = QuantizationRange(rawValue: rangeName),
                  let granularityName = entry.weightGranularity, let granularity = ScaleGranularity(rawValue: granularityName),
                  Quantizer.supportedBits.contains(bits) else {
                throw corrupt("\(entry.layer): invalid weight bits, range or granularity")
            }
            let q = Quantizer(layerName: conv.name, role: .weight, bits: bits, range: range, granularity: granularity,
                              channels: conv.outChannels, method: method, weight: conv.weight)
            guard entry.weightLowest == q.lowest && entry.weightHighest == q.highest else {
                throw corrupt("\(entry.layer): weight bounds [\(entry.weightLowest ?? 0), \(entry.weightHighest ?? 0)] disagree with \(bits)-bit \(rangeName)")
            }
            let codesName = "\(conv.name).weight.codes"
            guard let stored = file.tensors[codesName] else { throw corrupt("tensor '\(codesName)' is missing") }
            guard stored.shape == conv.weight.shape else {
                throw corrupt("'\(codesName)' has shape \(stored.shape), the architecture (width \(width)) needs \(conv.weight.shape)")
            }
            let scales = try readScales(file, name: q.scale.name, count: q.channels, corrupt: corrupt)
            let codes: [Int]
            switch stored {
            case .int8(let v, _): codes = v.map(Int.init)
            case .uint8(let v, _): codes = v.map(Int.init)
            default: throw corrupt("'\(codesName)' is \(stored.dtype), expected I8 or U8")
            }
            if let bad = codes.first(where: { $0 < q.lowest || $0 > q.highest }) {
                throw corrupt("'\(codesName)' holds code \(bad) outside [\(q.lowest), \(q.highest)]")
            }
            q.scale.value = Tensor(shape: [q.channels], data: scales)
            q.ewgsDelta = entry.ewgsDelta
            q.isInitialized = true
            let block = codes.count / q.channels
            state[conv.weight.name] = Tensor(shape: conv.weight.shape,
                                             data: codes.enumerated().map { Float($0.element) * scales[$0.offset / block] })
            state[codesName] = nil
            conv.weightQuantizer = q
            if q.lowest >= -128 && q.highest <= 127 { weightCodes = codes.map { Int8($0) } }
            weightScales = scales
        }
        if let bits = entry.activationBits {
            guard let rangeName = entry.activationRange, let range = QuantizationRange(rawValue: rangeName),
                  Quantizer.supportedBits.contains(bits) else {
                throw corrupt("\(entry.layer): invalid activation bits or range")
            }
            let q = Quantizer(layerName: conv.name, role: .activation, bits: bits, range: range, method: method)
            guard entry.activationLowest == q.lowest && entry.activationHighest == q.highest else {
                throw corrupt("\(entry.layer): activation bounds disagree with \(bits)-bit \(rangeName)")
            }
            let scales = try readScales(file, name: q.scale.name, count: 1, corrupt: corrupt)
            q.scale.value = Tensor(shape: [1], data: scales)
            q.ewgsDelta = entry.ewgsDelta
            q.isInitialized = true
            conv.inputQuantizer = q
            if let codes = weightCodes {
                overrides.append((conv, IntegerConv(layer: conv.name, weightCodes: codes, weightShape: conv.weight.shape,
                                                    weightScales: weightScales,
                                                    input: IntegerGrid(scale: scales[0], lowest: q.lowest, highest: q.highest))))
            }
        }
    }
    do { try network.load(stateDict: state, strict: true) } catch {
        throw corrupt("\(error)")
    }
    if integerInference { for (conv, o) in overrides { conv.inferenceOverride = o } }
    return network
}

private func readScales(_ file: SafeTensorsFile, name: String, count: Int,
                        corrupt: (String) -> QuantizationError) throws -> [Float] {
    guard let stored = file.tensors[name] else { throw corrupt("tensor '\(name)' is missing") }
    guard case .float(let t) = stored, t.count == count else {
        throw corrupt("'\(name)' must be F32 with \(count) element(s), found \(stored.dtype) \(stored.shape)")
    }
    if let bad = t.data.first(where: { !($0.isFinite && $0 > 0) }) {
        throw corrupt("'\(name)' holds step size \(bad); step sizes must be positive and finite")
    }
    return t.data
}
