// ONNX export of a Network, fake-quantized or full precision (docs/export.md).
//
// The graph mirrors the eval-mode forward op by op:
//   quantized input   Clip(x, Qn·s, Qp·s) → QuantizeLinear(·, s, 0) → DequantizeLinear(·, s, 0)
//                     (per-tensor s; zero point int8 for a signed range, uint8 for unsigned; the
//                     Clip keeps a b-bit range inside the 8-bit type, where QuantizeLinear alone
//                     would saturate at −128/127 or 0/255)
//   quantized weight  integer codes as an int8 (uint8) initializer → DequantizeLinear(codes, s, 0,
//                     axis 0) with one s per output channel (or one for the tensor)
//   Conv2d / Linear   Conv / Gemm(transB = 1) on the dequantized operands; FP layers use the float
//                     weight directly
//   BatchNorm2d       BatchNormalization with the running statistics (kept, not folded: folding
//                     would rescale the per-channel weight step sizes by γ/σ — negative for γ < 0 — and
//                     is impossible for a per-tensor weight scale; runtimes fold it when they can)
//   ReLU, MaxPool2d   Relu, MaxPool;  GlobalAvgPool → GlobalAveragePool + Flatten
//   residual blocks   Add + Relu; option-A shortcut = Slice(steps s) + Pad(zero channels)
//   GroupNorm         Reshape(N, G, −1) → InstanceNormalization → Reshape(shape of x) → Mul γ → Add β
// QuantizeLinear rounds x/s half to even and saturates, which is the fake quantizer's
// round½even(clamp(x/s, Qn, Qp)): the codes agree except where float rounding before a quantizer
// puts x/s on the other side of a .5 tie (docs/export.md, "How close ORT comes").
import Foundation
import NN
import TensorCore

public let onnxExportFormat = "fqat-shell.onnx.v1"

public struct ONNXExportSummary: Sendable, Equatable {
    public var path: String
    public var bytes: Int
    public var nodes: Int
    /// Layers (conv or linear) with at least one quantizer.
    public var quantizedLayers: [String]
    /// QuantizeLinear nodes (quantized inputs) and DequantizeLinear nodes (inputs and weights).
    public var quantizeNodes: Int
    public var dequantizeNodes: Int
    public var opCounts: [String: Int]
}

public enum ONNXExportError: Error, CustomStringConvertible, Equatable {
    case unsupportedModule(String)
    case unsupportedQuantizer(String)
    case unwritable(String)

    public var description: String {
        switch self {
        case .unsupportedModule(let m): return "cannot export a \(m) to ONNX; supported: Conv2d, Linear, BatchNorm2d, GroupNorm, ReLU, MaxPool2d, GlobalAvgPool, Flatten, Dropout, residual blocks"
        case .unsupportedQuantizer(let m): return m
        case .unwritable(let m): return "cannot write the ONNX file: \(m)"
        }
    }
}

/// Builds the graph for `network` and writes it to `path`. `metadata` goes to metadata_props
/// (the layer table "fqat.layers" and "fqat.format" are added here).
@discardableResult
public func exportONNX(_ network: Network, to path: String, metadata: [(String, String)] = [],
                       docString: String = "") throws -> ONNXExportSummary {
    let builder = ONNXGraphBuilder(graphName: network.architecture)
    builder.model.inputs = [ONNXValueInfo(name: "input", elementType: .float,
                                          dims: [.param("batch"), .value(network.inChannels), .param("height"), .param("width")])]
    var h = try builder.emit(network.featurizer, "input")
    h = try builder.emit(network.classifier, h)
    builder.rename(h, to: "logits")
    builder.model.outputs = [ONNXValueInfo(name: "logits", elementType: .float, dims: [.param("batch"), .value(network.classes)])]
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    let layers = String(decoding: try encoder.encode(builder.layers), as: UTF8.self)
    builder.model.metadata = [("fqat.format", onnxExportFormat), ("fqat.layers", layers)] + metadata
    builder.model.docString = docString
    let bytes = builder.model.serialized()
    do {
        try Data(bytes).write(to: URL(fileURLWithPath: path), options: .atomic)
    } catch {
        throw ONNXExportError.unwritable("\(path): \(error.localizedDescription)")
    }
    var counts: [String: Int] = [:]
    for n in builder.model.nodes { counts[n.op, default: 0] += 1 }
    return ONNXExportSummary(path: path, bytes: bytes.count, nodes: builder.model.nodes.count,
                             quantizedLayers: builder.layers.map(\.layer),
                             quantizeNodes: counts["QuantizeLinear", default: 0],
                             dequantizeNodes: counts["DequantizeLinear", default: 0], opCounts: counts)
}

final class ONNXGraphBuilder {
    var model: ONNXModel
    var layers: [ExportedLayer] = []
    private var used = Set<String>()

    init(graphName: String) { model = ONNXModel(graphName: graphName) }

    /// A value name not used yet, from a readable base.
    func fresh(_ base: String) -> String {
        var name = base, i = 1
        while used.contains(name) { i += 1; name = "\(base)_\(i)" }
        used.insert(name)
        return name
    }

    func node(_ op: String, _ inputs: [String], name: String, _ attributes: [(String, ONNXAttributeValue)] = []) -> String {
        let out = fresh(name)
        model.nodes.append(ONNXNode(op, inputs: inputs, outputs: [out], name: out, attributes: attributes))
        return out
    }

    func initializer(_ t: ONNXTensor) -> String {
        var t = t
        t.name = fresh(t.name)
        model.initializers.append(t)
        return t.name
    }

    /// Renames the value `old` (the last node's output) to `new`.
    func rename(_ old: String, to new: String) {
        for i in model.nodes.indices {
            model.nodes[i].outputs = model.nodes[i].outputs.map { $0 == old ? new : $0 }
            model.nodes[i].inputs = model.nodes[i].inputs.map { $0 == old ? new : $0 }
        }
    }

    func emit(_ module: Module, _ x: String) throws -> String {
        switch module {
        case let m as Sequential:
            var h = x
            for (_, layer) in m.layers { h = try emit(layer, h) }
            return h
        case let conv as Conv2d:
            let inputs = try operands(layer: conv.name, x, conv.inputQuantizer, conv.weight, conv.weightQuantizer, bias: conv.bias)
            let k = conv.kernelSize, s = conv.stride, p = conv.padding
            return node("Conv", inputs, name: conv.name, [("kernel_shape", .ints([k, k])), ("strides", .ints([s, s])),
                                                         ("pads", .ints([p, p, p, p])), ("dilations", .ints([1, 1])),
                                                         ("group", .int(1))])
        case let fc as Linear:
            let inputs = try operands(layer: fc.name, x, fc.inputQuantizer, fc.weight, fc.weightQuantizer, bias: fc.bias)
            return node("Gemm", inputs, name: fc.name, [("transB", .int(1))])
        case let bn as BatchNorm2d:
            let c = bn.channels
            let inputs = [x, initializer(.float(bn.weight.name, [c], bn.weight.value.data)),
                          initializer(.float(bn.bias.name, [c], bn.bias.value.data)),
                          initializer(.float(bn.runningMean.name, [c], bn.runningMean.value.data)),
                          initializer(.float(bn.runningVar.name, [c], bn.runningVar.value.data))]
            return node("BatchNormalization", inputs, name: bn.name, [("epsilon", .float(bn.eps))])
        case let gn as GroupNorm:
            let grouped = node("Reshape", [x, initializer(.int64("\(gn.name).group_shape", [3], [0, gn.groups, -1]))],
                               name: "\(gn.name).grouped")
            let normed = node("InstanceNormalization",
                              [grouped, initializer(.float("\(gn.name).ones", [gn.groups], Array(repeating: 1, count: gn.groups))),
                               initializer(.float("\(gn.name).zeros", [gn.groups], Array(repeating: 0, count: gn.groups)))],
                              name: "\(gn.name).normalized", [("epsilon", .float(gn.eps))])
            let shape = node("Shape", [x], name: "\(gn.name).shape")
            let back = node("Reshape", [normed, shape], name: "\(gn.name).ungrouped")
            let scaled = node("Mul", [back, initializer(.float(gn.weight.name, [gn.channels, 1, 1], gn.weight.value.data))],
                              name: "\(gn.name).scaled")
            return node("Add", [scaled, initializer(.float(gn.bias.name, [gn.channels, 1, 1], gn.bias.value.data))], name: gn.name)
        case is ReLU:
            return node("Relu", [x], name: "relu")
        case let pool as MaxPool2d:
            let k = pool.kernelSize, s = pool.stride, p = pool.padding
            return node("MaxPool", [x], name: "maxpool", [("kernel_shape", .ints([k, k])), ("strides", .ints([s, s])),
                                                         ("pads", .ints([p, p, p, p]))])
        case is GlobalAvgPool:
            let pooled = node("GlobalAveragePool", [x], name: "avgpool")
            return node("Flatten", [pooled], name: "flatten", [("axis", .int(1))])
        case is Flatten:
            return node("Flatten", [x], name: "flatten", [("axis", .int(1))])
        case is Dropout:
            return x   // identity in eval
        case let block as BasicBlock:
            var h = try emit(block.conv1, x)
            h = node("Relu", [try emit(block.bn1, h)], name: "\(block.name).relu1")
            h = try emit(block.bn2, try emit(block.conv2, h))
            let shortcut: String
            if let d = block.downsample { shortcut = try emit(d, x) }
            else if let z = block.zeroPad { shortcut = try emit(z, x) }
            else { shortcut = x }
            return node("Relu", [node("Add", [h, shortcut], name: "\(block.name).add")], name: "\(block.name).relu2")
        case let block as Bottleneck:
            var h = node("Relu", [try emit(block.bn1, try emit(block.conv1, x))], name: "\(block.name).relu1")
            h = node("Relu", [try emit(block.bn2, try emit(block.conv2, h))], name: "\(block.name).relu2")
            h = try emit(block.bn3, try emit(block.conv3, h))
            let shortcut = try block.downsample.map { try emit($0, x) } ?? x
            return node("Relu", [node("Add", [h, shortcut], name: "\(block.name).add")], name: "\(block.name).relu3")
        case let z as ZeroPadShortcut:
            let big = Int(Int64.max)
            let sliced = node("Slice", [x, initializer(.int64("shortcut.starts", [2], [0, 0])),
                                        initializer(.int64("shortcut.ends", [2], [big, big])),
                                        initializer(.int64("shortcut.axes", [2], [2, 3])),
                                        initializer(.int64("shortcut.steps", [2], [z.stride, z.stride]))], name: "shortcut.subsample")
            let after = z.outChannels - z.inChannels - z.padBefore
            return node("Pad", [sliced, initializer(.int64("shortcut.pads", [8], [0, z.padBefore, 0, 0, 0, after, 0, 0]))],
                        name: "shortcut.pad", [])
        default:
            throw ONNXExportError.unsupportedModule(String(describing: type(of: module)))
        }
    }

    /// [input, weight, bias?] of a Conv or Gemm: Q/DQ where quantized, the layer recorded in `layers`.
    private func operands(layer: String, _ x: String, _ inputQuantizer: TensorQuantizer?, _ weight: Parameter,
                          _ weightQuantizer: TensorQuantizer?, bias: Parameter?) throws -> [String] {
        var entry = ExportedLayer(layer: layer, method: "", ewgsDelta: 0)
        var inputs = [try quantizedInput(inputQuantizer, x, layer: layer, entry: &entry),
                      try weightValue(weight, weightQuantizer, layer: layer, entry: &entry)]
        if !entry.method.isEmpty { layers.append(entry) }
        if let b = bias { inputs.append(initializer(.float(b.name, b.shape, b.value.data))) }
        return inputs
    }

    /// The enabled LSQ/EWGS quantizer in a slot, checked to fit 8-bit codes; records its method.
    private func quantizer(_ q: TensorQuantizer?, layer: String, role: String, entry: inout ExportedLayer) throws -> Quantizer? {
        guard let q else { return nil }
        guard let lq = q as? Quantizer else {
            throw ONNXExportError.unsupportedQuantizer("\(layer): the \(role) quantizer is not an LSQ/EWGS Quantizer")
        }
        guard lq.quantizationEnabled else { return nil }
        guard lq.lowest >= (lq.range == .unsigned ? 0 : -128) && lq.highest <= (lq.range == .unsigned ? 255 : 127) else {
            throw ONNXExportError.unsupportedQuantizer("\(layer): \(role) codes [\(lq.lowest), \(lq.highest)] do not fit 8 bits")
        }
        if let bad = lq.effectiveScales.first(where: { !($0.isFinite && $0 > 0) }) {
            throw ONNXExportError.unsupportedQuantizer("\(layer): the \(role) step size is \(bad); step sizes must be positive and finite (did training diverge?)")
        }
        entry.method = lq.method.rawValue
        entry.ewgsDelta = lq.ewgsDelta
        return lq
    }

    private func zeroPoint(_ q: Quantizer, _ name: String, count: Int?) -> String {
        let dims = count.map { [$0] } ?? []
        let n = count ?? 1
        return initializer(q.range == .unsigned ? .uint8(name, dims, Array(repeating: 0, count: n))
                                                : .int8(name, dims, Array(repeating: 0, count: n)))
    }

    func quantizedInput(_ tq: TensorQuantizer?, _ x: String, layer: String, entry: inout ExportedLayer) throws -> String {
        guard let q = try quantizer(tq, layer: layer, role: "input", entry: &entry) else { return x }
        let s = q.effectiveScales[0]
        entry.activationBits = q.bits
        entry.activationRange = q.range.rawValue
        entry.activationLowest = q.lowest
        entry.activationHighest = q.highest
        let scale = initializer(.float(q.scale.name, [], [s]))
        let zp = zeroPoint(q, "\(layer).a.zero_point", count: nil)
        let clipped = node("Clip", [x, initializer(.float("\(layer).a.min", [], [Float(q.lowest) * s])),
                                    initializer(.float("\(layer).a.max", [], [Float(q.highest) * s]))],
                           name: "\(layer).input_clipped")
        let codes = node("QuantizeLinear", [clipped, scale, zp], name: "\(layer).input_quantized")
        return node("DequantizeLinear", [codes, scale, zp], name: "\(layer).input_dequantized")
    }

    func weightValue(_ weight: Parameter, _ tq: TensorQuantizer?, layer: String, entry: inout ExportedLayer) throws -> String {
        guard let q = try quantizer(tq, layer: layer, role: "weight", entry: &entry) else {
            return initializer(.float(weight.name, weight.shape, weight.value.data))
        }
        entry.weightBits = q.bits
        entry.weightRange = q.range.rawValue
        entry.weightLowest = q.lowest
        entry.weightHighest = q.highest
        entry.weightGranularity = q.granularity.rawValue
        let codes = q.integerCodes(weight.value).data
        guard codes.allSatisfy({ $0.isFinite }) else {
            throw ONNXExportError.unsupportedQuantizer("\(layer): the weight holds NaN or infinite values (did training diverge?)")
        }
        let codeTensor: ONNXTensor = q.range == .unsigned
            ? .uint8("\(layer).weight_quantized", weight.shape, codes.map { UInt8($0) })
            : .int8("\(layer).weight_quantized", weight.shape, codes.map { Int8($0) })
        let scales = q.effectiveScales
        let perChannel = scales.count > 1 || q.granularity == .perChannel
        let scale = initializer(.float(q.scale.name, perChannel ? [scales.count] : [], scales))
        let zp = zeroPoint(q, "\(layer).w.zero_point", count: perChannel ? scales.count : nil)
        return node("DequantizeLinear", [initializer(codeTensor), scale, zp], name: "\(layer).weight_dequantized",
                    perChannel ? [("axis", .int(0))] : [])
    }
}
