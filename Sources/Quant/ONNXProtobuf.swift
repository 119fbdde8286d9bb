// A minimal protobuf writer for the handful of ONNX messages `export onnx` needs
// (docs/export.md, "Why a small encoder of our own").
//
// Wire format (protobuf encoding spec): a message is a sequence of fields, each a key
// varint(field_number << 3 | wire_type) followed by the value:
//   wire type 0  varint: little-endian base-128, 7 bits a byte, high bit = more bytes follow;
//                int64/int32 negatives are written as their 64-bit two's complement (10 bytes)
//   wire type 2  length-delimited: varint(byte count) then the bytes (strings, bytes, sub-messages,
//                packed repeated scalars)
//   wire type 5  fixed32: 4 bytes little-endian (float)
// Field numbers are those of onnx/onnx.proto (ONNX IR version 7, opset 13); each message type below
// names the ones it writes. Only writing is needed: ONNX Runtime and onnx.checker read the result.
import Foundation

/// Builds one protobuf message's bytes.
public struct ProtobufWriter {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    public mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    mutating func key(_ field: Int, _ wireType: UInt64) {
        varint(UInt64(field) << 3 | wireType)
    }

    /// int64 / int32 / enum field (negative values as 64-bit two's complement, as protobuf does).
    public mutating func int(_ field: Int, _ value: Int) {
        key(field, 0)
        varint(UInt64(bitPattern: Int64(value)))
    }

    public mutating func float(_ field: Int, _ value: Float) {
        key(field, 5)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
    }

    public mutating func bytes(_ field: Int, _ value: [UInt8]) {
        key(field, 2)
        varint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    public mutating func string(_ field: Int, _ value: String) {
        bytes(field, Array(value.utf8))
    }

    public mutating func message(_ field: Int, _ value: ProtobufWriter) {
        bytes(field, value.bytes)
    }

    /// Packed repeated int64 (one length-delimited field).
    public mutating func packedInts(_ field: Int, _ values: [Int]) {
        var inner = ProtobufWriter()
        for v in values { inner.varint(UInt64(bitPattern: Int64(v))) }
        bytes(field, inner.bytes)
    }
}

/// ONNX TensorProto.DataType values used here.
public enum ONNXDataType: Int, Sendable {
    case float = 1, uint8 = 2, int8 = 3, int64 = 7
}

/// An initializer (TensorProto): dims = 1, data_type = 2, name = 8, raw_data = 9 (little-endian).
public struct ONNXTensor {
    public var name: String
    public var dataType: ONNXDataType
    public var dims: [Int]
    public var raw: [UInt8]

    public static func float(_ name: String, _ dims: [Int], _ values: [Float]) -> ONNXTensor {
        var raw: [UInt8] = []
        raw.reserveCapacity(values.count * 4)
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { raw.append(contentsOf: $0) } }
        return ONNXTensor(name: name, dataType: .float, dims: dims, raw: raw)
    }

    public static func int8(_ name: String, _ dims: [Int], _ values: [Int8]) -> ONNXTensor {
        ONNXTensor(name: name, dataType: .int8, dims: dims, raw: values.map { UInt8(bitPattern: $0) })
    }

    public static func uint8(_ name: String, _ dims: [Int], _ values: [UInt8]) -> ONNXTensor {
        ONNXTensor(name: name, dataType: .uint8, dims: dims, raw: values)
    }

    public static func int64(_ name: String, _ dims: [Int], _ values: [Int]) -> ONNXTensor {
        var raw: [UInt8] = []
        for v in values { withUnsafeBytes(of: Int64(v).littleEndian) { raw.append(contentsOf: $0) } }
        return ONNXTensor(name: name, dataType: .int64, dims: dims, raw: raw)
    }

    public var encoded: ProtobufWriter {
        var w = ProtobufWriter()
        if !dims.isEmpty { w.packedInts(1, dims) }
        w.int(2, dataType.rawValue)
        w.string(8, name)
        w.bytes(9, raw)
        return w
    }
}

/// A node attribute (AttributeProto): name = 1, f = 2, i = 3, ints = 8, type = 20.
public enum ONNXAttributeValue {
    case int(Int)
    case ints([Int])
    case float(Float)
}

/// One graph node (NodeProto): input = 1, output = 2, name = 3, op_type = 4, attribute = 5.
public struct ONNXNode {
    public var op: String
    public var inputs: [String]
    public var outputs: [String]
    public var name: String
    public var attributes: [(String, ONNXAttributeValue)]

    public init(_ op: String, inputs: [String], outputs: [String], name: String,
                attributes: [(String, ONNXAttributeValue)] = []) {
        self.op = op; self.inputs = inputs; self.outputs = outputs; self.name = name; self.attributes = attributes
    }

    public var encoded: ProtobufWriter {
        var w = ProtobufWriter()
        for i in inputs { w.string(1, i) }
        for o in outputs { w.string(2, o) }
        w.string(3, name)
        w.string(4, op)
        for (name, value) in attributes {
            var a = ProtobufWriter()
            a.string(1, name)
            switch value {
            case .float(let f): a.float(2, f); a.int(20, 1)   // AttributeType FLOAT = 1
            case .int(let i): a.int(3, i); a.int(20, 2)             // INT = 2
            case .ints(let xs): a.packedInts(8, xs); a.int(20, 7)   // INTS = 7
            }
            w.message(5, a)
        }
        return w
    }
}

/// A graph input or output (ValueInfoProto name = 1, type = 2 → TypeProto.tensor_type = 1 →
/// elem_type = 1, shape = 2 → TensorShapeProto.dim = 1 → dim_value = 1 | dim_param = 2).
public struct ONNXValueInfo {
    public enum Dim { case value(Int), param(String) }
    public var name: String
    public var elementType: ONNXDataType
    public var dims: [Dim]

    public var encoded: ProtobufWriter {
        var shape = ProtobufWriter()
        for d in dims {
            var dim = ProtobufWriter()
            switch d {
            case .value(let v): dim.int(1, v)
            case .param(let p): dim.string(2, p)
            }
            shape.message(1, dim)
        }
        var tensorType = ProtobufWriter()
        tensorType.int(1, elementType.rawValue)
        tensorType.message(2, shape)
        var type = ProtobufWriter()
        type.message(1, tensorType)
        var w = ProtobufWriter()
        w.string(1, name)
        w.message(2, type)
        return w
    }
}

/// ModelProto (ir_version = 1, producer_name = 2, producer_version = 3, doc_string = 6, graph = 7,
/// opset_import = 8 → OperatorSetIdProto domain = 1, version = 2, metadata_props = 14 →
/// StringStringEntryProto key = 1, value = 2) around GraphProto (node = 1, name = 2,
/// initializer = 5, doc_string = 10, input = 11, output = 12).
public struct ONNXModel {
    public static let irVersion = 7
    public static let opsetVersion = 13
    public var graphName: String
    public var nodes: [ONNXNode] = []
    public var initializers: [ONNXTensor] = []
    public var inputs: [ONNXValueInfo] = []
    public var outputs: [ONNXValueInfo] = []
    public var metadata: [(String, String)] = []
    public var docString: String = ""
    public var producerVersion: String = "1"

    public init(graphName: String) { self.graphName = graphName }

    public func serialized() -> [UInt8] {
        var g = ProtobufWriter()
        for n in nodes { g.message(1, n.encoded) }
        g.string(2, graphName)
        for t in initializers { g.message(5, t.encoded) }
        for i in inputs { g.message(11, i.encoded) }
        for o in outputs { g.message(12, o.encoded) }
        var m = ProtobufWriter()
        m.int(1, ONNXModel.irVersion)
        m.string(2, "fqat-shell")
        m.string(3, producerVersion)
        if !docString.isEmpty { m.string(6, docString) }
        m.message(7, g)
        var opset = ProtobufWriter()
        opset.string(1, "")
        opset.int(2, ONNXModel.opsetVersion)
        m.message(8, opset)
        for (k, v) in metadata {
            var e = ProtobufWriter()
            e.string(1, k)
            e.string(2, v)
            m.message(14, e)
        }
        return m.bytes
    }
}
