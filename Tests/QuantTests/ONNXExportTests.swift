import XCTest
import Foundation
import NN
import TensorCore
@testable import Quant

/// The protobuf writer against hand-encoded bytes of the wire format, and the exported ONNX graph read
/// back with an independent little decoder (the runtime check is scripts/check_onnx.py in ORT).
final class ONNXExportTests: XCTestCase {
    // MARK: Protobuf wire format

    func testVarintsAndFieldKeys() {
        func varint(_ v: UInt64) -> [UInt8] { var w = ProtobufWriter(); w.varint(v); return w.bytes }
        XCTAssertEqual(varint(0), [0x00])
        XCTAssertEqual(varint(1), [0x01])
        XCTAssertEqual(varint(127), [0x7F])
        XCTAssertEqual(varint(128), [0x80, 0x01])
        XCTAssertEqual(varint(300), [0xAC, 0x02])            // the protobuf documentation's example
        XCTAssertEqual(varint(UInt64.max), Array(repeating: 0xFF, count: 9) + [0x01])
        var w = ProtobufWriter()
        w.int(1, 150)                                       // field 1 varint: 08 96 01
        XCTAssertEqual(w.bytes, [0x08, 0x96, 0x01])
        w = ProtobufWriter()
        w.int(3, -1)                                        // negative int64: ten bytes
        XCTAssertEqual(w.bytes, [0x18] + Array(repeating: 0xFF, count: 9) + [0x01])
        w = ProtobufWriter()
        w.string(2, "testing")                              // 12 07 74 65 73 74 69 6e 67
        XCTAssertEqual(w.bytes, [0x12, 0x07, 0x74, 0x65, 0x73, 0x74, 0x69, 0x6E, 0x67])
        w = ProtobufWriter()
        w.float(2, 1.0)                                     // fixed32: 15 00 00 80 3f
        XCTAssertEqual(w.bytes, [0x15, 0x00, 0x00, 0x80, 0x3F])
        w = ProtobufWriter()
        w.packedInts(4, [3, 270, 86942])                    // the documentation's packed example
        XCTAssertEqual(w.bytes, [0x22, 0x06, 0x03, 0x8E, 0x02, 0x9E, 0xA7, 0x05])
    }

    func testTensorAndNodeMessages() {
        let t = ONNXTensor.int8("w", [2], [-1, 2])
        // dims (packed, field 1), data_type INT8 = 3 (field 2), name (8), raw_data (9)
        XCTAssertEqual(t.encoded.bytes, [0x0A, 0x01, 0x02, 0x10, 0x03, 0x42, 0x01, 0x77, 0x4A, 0x02, 0xFF, 0x02])
        let n = ONNXNode("Relu", inputs: ["x"], outputs: ["y"], name: "r", attributes: [("axis", .int(0))])
        let fields = decode(n.encoded.bytes)
        XCTAssertEqual(fields.strings(1), ["x"])
        XCTAssertEqual(fields.strings(2), ["y"])
        XCTAssertEqual(fields.strings(4), ["Relu"])
        let attribute = decode(fields.messages(5)[0])
        XCTAssertEqual(attribute.strings(1), ["axis"])
        XCTAssertEqual(attribute.varints(20), [2])          // AttributeType INT
    }

    // MARK: The exported graph

    func quantizedResNet8(weightRange: QuantizationRange = .signed) throws -> Network {
        let net = try Network.make(architecture: "resnet8", inChannels: 3, classes: 5, width: 0.5, seed: 3)
        var rng = RNG(seed: 9)
        try attachQuantizers(to: net, config: QuantizationConfig(weightBits: 4, activationBits: 4, weightRange: weightRange,
                                                                 bitOverrides: [LayerBitOverride(pattern: "layer3.*", weightBits: 8, activationBits: 3)]))
        try calibrateQuantizers(in: net, batches: [rng.normalTensor([4, 3, 12, 12])])
        return net
    }

    func export(_ net: Network) throws -> (Fields, Fields) {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("onnx-test-\(UUID().uuidString).onnx").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try exportONNX(net, to: path, metadata: [("fqat.method", "lsq")])
        let model = decode(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
        return (model, decode(model.messages(7)[0]))
    }

    func testQuantizedGraphHasQDQPairsPerQuantizedLayer() throws {
        let net = try quantizedResNet8()
        let (model, graph) = try export(net)
        XCTAssertEqual(model.varints(1), [7], "IR version")
        let opset = decode(model.messages(8)[0])
        XCTAssertEqual(opset.varints(2), [13])
        let nodes = graph.messages(1).map(decode)
        let ops = nodes.map { $0.strings(4)[0] }
        let convs = convolutions(in: net)
        let quantizedInputs = convs.filter { $0.inputQuantizer != nil }.count
        let quantizedWeights = convs.filter { $0.weightQuantizer != nil }.count
        XCTAssertEqual(ops.filter { $0 == "QuantizeLinear" }.count, quantizedInputs)
        XCTAssertEqual(ops.filter { $0 == "Clip" }.count, quantizedInputs)
        XCTAssertEqual(ops.filter { $0 == "DequantizeLinear" }.count, quantizedInputs + quantizedWeights)
        XCTAssertEqual(ops.filter { $0 == "Conv" }.count, convs.count)
        XCTAssertEqual(ops.filter { $0 == "Gemm" }.count, 1)
        XCTAssertEqual(ops.filter { $0 == "BatchNormalization" }.count, net.batchNorms.count)
        // Every Conv reads a dequantized input for a quantized layer.
        for conv in convs {
            let node = try XCTUnwrap(nodes.first { $0.strings(3) == [conv.name] }, conv.name)
            XCTAssertEqual(node.strings(1)[0].hasSuffix(".input_dequantized"), conv.inputQuantizer != nil, conv.name)
            XCTAssertEqual(node.strings(1)[1].hasSuffix(".weight_dequantized"), conv.weightQuantizer != nil, conv.name)
        }
        let meta = Dictionary(uniqueKeysWithValues: model.messages(14).map { m -> (String, String) in
            let f = decode(m); return (f.strings(1)[0], f.strings(2)[0]) })
        XCTAssertEqual(meta["fqat.format"], onnxExportFormat)
        XCTAssertEqual(meta["fqat.method"], "lsq")
        let layers = try JSONDecoder().decode([ExportedLayer].self, from: Data(try XCTUnwrap(meta["fqat.layers"]).utf8))
        XCTAssertEqual(layers.count, convs.filter { $0.inputQuantizer != nil || $0.weightQuantizer != nil }.count)
        XCTAssertEqual(layers.first { $0.layer == "layer3.0.conv1" }?.activationBits, 3)
        XCTAssertEqual(layers.first { $0.layer == "layer3.0.conv1" }?.weightBits, 8)
    }

    func testWeightCodesScalesAndZeroPointsAreRecomputedIndependently() throws {
        let net = try quantizedResNet8()
        let (_, graph) = try export(net)
        var initializers: [String: Fields] = [:]
        for t in graph.messages(5).map(decode) { initializers[t.strings(8)[0]] = t }
        for conv in convolutions(in: net) {
            if let q = conv.weightQuantizer as? Quantizer {
                let codes = try XCTUnwrap(initializers["\(conv.name).weight_quantized"], conv.name)
                XCTAssertEqual(codes.varints(2), [3], "INT8")
                XCTAssertEqual(codes.packed(1), conv.weight.shape.map(UInt64.init))
                let raw = codes.bytesField(9).map { Int(Int8(bitPattern: $0)) }
                let s = q.effectiveScales
                let block = conv.weight.count / s.count
                for (i, w) in conv.weight.value.data.enumerated() {
                    let expected = Int(min(max(w / s[i / block], Float(q.lowest)), Float(q.highest)).rounded(.toNearestOrEven))
                    XCTAssertEqual(raw[i], expected, "\(conv.name)[\(i)]")
                    if raw[i] != expected { break }
                }
                let scale = try XCTUnwrap(initializers[q.scale.name])
                XCTAssertEqual(scale.packed(1), [UInt64(s.count)], "per-channel scale, one per output channel")
                XCTAssertEqual(floats(scale.bytesField(9)), s)
                let zp = try XCTUnwrap(initializers["\(conv.name).w.zero_point"])
                XCTAssertTrue(zp.bytesField(9).allSatisfy { $0 == 0 })
            }
            if let q = conv.inputQuantizer as? Quantizer {
                let zp = try XCTUnwrap(initializers["\(conv.name).a.zero_point"])
                XCTAssertEqual(zp.varints(2), [q.range == .unsigned ? 2 : 3], "uint8 for unsigned, int8 for signed: \(conv.name)")
                XCTAssertEqual(zp.packed(1), [], "per-tensor zero point")
                let hi = try XCTUnwrap(initializers["\(conv.name).a.max"])
                XCTAssertEqual(floats(hi.bytesField(9)), [Float(q.highest) * q.effectiveScales[0]])
            }
        }
    }

    func testDivergedWeightsAreAClearErrorNotATrap() throws {
        let net = try quantizedResNet8()
        let conv = convolutions(in: net)[2]
        conv.weight.value.data[0] = .nan
        XCTAssertThrowsError(try export(net)) { error in
            XCTAssertTrue("\(error)".contains("\(conv.name): the weight holds NaN"), "\(error)")
        }
    }

    func testFullPrecisionModelIsPlainONNX() throws {
        let net = try Network.make(architecture: "resnet18", inChannels: 3, classes: 4, width: 0.0625)
        let (_, graph) = try export(net)
        let ops = Set(graph.messages(1).map { decode($0).strings(4)[0] })
        XCTAssertEqual(ops, ["Conv", "BatchNormalization", "Relu", "MaxPool", "Add", "GlobalAveragePool", "Flatten", "Gemm"])
    }

    // MARK: A minimal protobuf decoder (test-only)

    struct Fields {
        var entries: [(field: Int, wire: Int, varint: UInt64, bytes: [UInt8])] = []
        func varints(_ f: Int) -> [UInt64] { entries.filter { $0.field == f && $0.wire == 0 }.map(\.varint) }
        func messages(_ f: Int) -> [[UInt8]] { entries.filter { $0.field == f && $0.wire == 2 }.map(\.bytes) }
        func strings(_ f: Int) -> [String] { messages(f).map { String(decoding: $0, as: UTF8.self) } }
        func bytesField(_ f: Int) -> [UInt8] { messages(f).first ?? [] }
        /// A packed repeated varint field.
        func packed(_ f: Int) -> [UInt64] {
            guard let b = messages(f).first else { return [] }
            var out: [UInt64] = [], i = 0
            while i < b.count { out.append(readVarint(b, &i)) }
            return out
        }
    }

    func floats(_ b: [UInt8]) -> [Float] {
        stride(from: 0, to: b.count, by: 4).map { i in
            Float(bitPattern: UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24)
        }
    }

    func decode(_ b: [UInt8]) -> Fields {
        var f = Fields(), i = 0
        while i < b.count {
            let key = readVarint(b, &i)
            let field = Int(key >> 3), wire = Int(key & 7)
            switch wire {
            case 0: f.entries.append((field, 0, readVarint(b, &i), []))
            case 2:
                let n = Int(readVarint(b, &i))
                f.entries.append((field, 2, 0, Array(b[i..<i + n]))); i += n
            case 5: f.entries.append((field, 5, 0, Array(b[i..<i + 4]))); i += 4
            default: XCTFail("unexpected wire type \(wire)"); return f
            }
        }
        return f
    }
}

private func readVarint(_ b: [UInt8], _ i: inout Int) -> UInt64 {
    var v: UInt64 = 0, shift: UInt64 = 0
    while true {
        let byte = b[i]; i += 1
        v |= UInt64(byte & 0x7F) << shift
        if byte < 0x80 { return v }
        shift += 7
    }
}
