// safetensors files (https://huggingface.co/docs/safetensors, format as specified there):
//   8 bytes   little-endian UInt64 N, the header length
//   N bytes   UTF-8 JSON object: name -> {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]},
//             plus an optional "__metadata__": {string: string}; padded with spaces
//   rest      the data buffer; offsets are relative to its start, little-endian, row-major
// Reading converts F32/F16/BF16/F64 to Float tensors and keeps I8/U8/I16/I32/I64 as typed integer arrays
// (so an integer export can be read back exactly). Every malformed input throws a SafeTensorsError that
// names the file and the problem; nothing here traps on bad bytes.
import Foundation
import TensorCore

/// One tensor from a safetensors file.
public enum SafeTensorValue: Equatable {
    /// F32, or F16/BF16/F64 converted to Float.
    case float(Tensor)
    case int8([Int8], shape: [Int])
    case uint8([UInt8], shape: [Int])
    case int16([Int16], shape: [Int])
    case int32([Int32], shape: [Int])
    case int64([Int64], shape: [Int])

    public var shape: [Int] {
        switch self {
        case .float(let t): return t.shape
        case .int8(_, let s), .uint8(_, let s), .int16(_, let s), .int32(_, let s), .int64(_, let s): return s
        }
    }

    /// The value as a Float tensor (integers converted exactly where Float can hold them).
    public var floatTensor: Tensor {
        switch self {
        case .float(let t): return t
        case .int8(let v, let s): return Tensor(shape: s, data: v.map(Float.init))
        case .uint8(let v, let s): return Tensor(shape: s, data: v.map(Float.init))
        case .int16(let v, let s): return Tensor(shape: s, data: v.map(Float.init))
        case .int32(let v, let s): return Tensor(shape: s, data: v.map(Float.init))
        case .int64(let v, let s): return Tensor(shape: s, data: v.map(Float.init))
        }
    }

    /// The dtype this value is written as.
    public var dtype: String {
        switch self {
        case .float: return "F32"
        case .int8: return "I8"
        case .uint8: return "U8"
        case .int16: return "I16"
        case .int32: return "I32"
        case .int64: return "I64"
        }
    }
}

/// The contents of a safetensors file.
public struct SafeTensorsFile: Equatable {
    /// Tensors by name.
    public var tensors: [String: SafeTensorValue]
    /// Names in data-offset order (the order they were written).
    public var names: [String]
    /// The dtype each tensor had in the file ("F16" for a tensor now held as Float).
    public var fileDTypes: [String: String]
    /// The optional `__metadata__` string map.
    public var metadata: [String: String]

    public init(tensors: [String: SafeTensorValue], names: [String], fileDTypes: [String: String] = [:],
                metadata: [String: String] = [:]) {
        self.tensors = tensors; self.names = names; self.fileDTypes = fileDTypes; self.metadata = metadata
    }

    /// Float tensors for `Network.load(stateDict:)`: floating tensors as they are, integer tensors
    /// converted, `*.num_batches_tracked` left out.
    public var stateDict: [String: Tensor] {
        var d: [String: Tensor] = [:]
        for (name, value) in tensors where !name.hasSuffix("num_batches_tracked") { d[name] = value.floatTensor }
        return d
    }
}

/// A safetensors file that cannot be read or written, with the file and what is wrong.
public struct SafeTensorsError: Error, CustomStringConvertible, Equatable {
    public enum Problem: Equatable, Sendable {
        case unreadable(String)
        case unwritable(String)
        case tooSmall(bytes: Int)
        case headerLengthOutOfRange(declared: UInt64, available: Int)
        case headerNotUTF8
        case headerNotJSON(String)
        case headerNotObject
        case malformedEntry(name: String, reason: String)
        case unsupportedDType(name: String, dtype: String)
        case offsetsOutOfRange(name: String, begin: Int, end: Int, dataBytes: Int)
        case lengthMismatch(name: String, expectedBytes: Int, actualBytes: Int)
        case overlappingTensors(String, String)
        case malformedMetadata(String)
    }
    /// Path of the file, or a label such as "<memory>".
    public var file: String
    public var problem: Problem

    public var description: String {
        let what: String
        switch problem {
        case .unreadable(let m): what = "cannot be read: \(m)"
        case .unwritable(let m): what = "cannot be written: \(m)"
        case .tooSmall(let n): what = "is \(n) bytes long, too short for the 8-byte header length; it is not a safetensors file"
        case let .headerLengthOutOfRange(declared, available):
            what = "declares a \(declared)-byte header but only \(available) bytes follow the length field (truncated or not a safetensors file)"
        case .headerNotUTF8: what = "has a header that is not valid UTF-8"
        case .headerNotJSON(let m): what = "has a header that is not valid JSON (\(m))"
        case .headerNotObject: what = "has a header that is not a JSON object of tensor entries"
        case let .malformedEntry(name, reason): what = "has a malformed entry for tensor '\(name)': \(reason)"
        case let .unsupportedDType(name, dtype):
            what = "stores tensor '\(name)' as \(dtype), which is not supported (F32, F16, BF16, F64, I8, U8, I16, I32, I64 are)"
        case let .offsetsOutOfRange(name, begin, end, dataBytes):
            what = "gives tensor '\(name)' data offsets [\(begin), \(end)) outside the \(dataBytes)-byte data section (file truncated or offsets wrong)"
        case let .lengthMismatch(name, expected, actual):
            what = "gives tensor '\(name)' \(actual) bytes of data but its dtype and shape need \(expected)"
        case let .overlappingTensors(a, b): what = "has tensors '\(a)' and '\(b)' whose data ranges overlap"
        case .malformedMetadata(let m): what = "has a malformed __metadata__ entry: \(m)"
        }
        return "safetensors file \(file) \(what)"
    }
}

public enum SafeTensors {
    /// Bytes per element of each supported dtype.
    static let elementSize: [String: Int] = ["F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I8": 1, "U8": 1,
                                              "I16": 2, "I32": 4, "I64": 8]
    /// Headers above this size are refused (the reference implementation's limit is 100 MB too).
    static let maximumHeaderBytes: UInt64 = 100_000_000

    /// Reads and decodes a file.
    public static func read(contentsOf url: URL) throws -> SafeTensorsFile {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw SafeTensorsError(file: url.path, problem: .unreadable(error.localizedDescription))
        }
        return try decode(data, source: url.path)
    }

    /// Decodes the bytes of a safetensors file; `source` names it in errors.
    public static func decode(_ data: Data, source: String = "<memory>") throws -> SafeTensorsFile {
        func fail(_ p: SafeTensorsError.Problem) -> SafeTensorsError { SafeTensorsError(file: source, problem: p) }
        let bytes = [UInt8](data)
        guard bytes.count >= 8 else { throw fail(.tooSmall(bytes: bytes.count)) }
        var headerLength: UInt64 = 0
        for i in 0..<8 { headerLength |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard headerLength <= maximumHeaderBytes, headerLength <= UInt64(bytes.count - 8) else {
            throw fail(.headerLengthOutOfRange(declared: headerLength, available: bytes.count - 8))
        }
        let headerEnd = 8 + Int(headerLength)
        guard let headerText = String(bytes: bytes[8..<headerEnd], encoding: .utf8) else { throw fail(.headerNotUTF8) }
        let json: Any
        do { json = try JSONSerialization.jsonObject(with: Data(headerText.utf8), options: []) } catch {
            throw fail(.headerNotJSON("\(error.localizedDescription)"))
        }
        guard let header = json as? [String: Any] else { throw fail(.headerNotObject) }
        let dataBytes = bytes.count - headerEnd

        var metadata: [String: String] = [:]
        if let m = header["__metadata__"] {
            guard let dict = m as? [String: Any] else { throw fail(.malformedMetadata("expected an object of strings")) }
            for (k, v) in dict {
                guard let s = v as? String else { throw fail(.malformedMetadata("value of '\(k)' is not a string")) }
                metadata[k] = s
            }
        }

        struct Entry { var name: String; var dtype: String; var shape: [Int]; var begin: Int; var end: Int }
        var entries: [Entry] = []
        for (name, raw) in header where name != "__metadata__" {
            guard let e = raw as? [String: Any] else { throw fail(.malformedEntry(name: name, reason: "not an object")) }
            guard let dtype = e["dtype"] as? String else { throw fail(.malformedEntry(name: name, reason: "missing or non-string \"dtype\"")) }
            guard let size = elementSize[dtype] else { throw fail(.unsupportedDType(name: name, dtype: dtype)) }
            guard let shapeAny = e["shape"] as? [Any], let shape = integers(shapeAny), shape.allSatisfy({ $0 >= 0 }) else {
                throw fail(.malformedEntry(name: name, reason: "\"shape\" must be a list of non-negative integers"))
            }
            guard let offsetsAny = e["data_offsets"] as? [Any], let offsets = integers(offsetsAny), offsets.count == 2 else {
                throw fail(.malformedEntry(name: name, reason: "\"data_offsets\" must be two integers [begin, end]"))
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, end >= begin, end <= dataBytes else {
                throw fail(.offsetsOutOfRange(name: name, begin: begin, end: end, dataBytes: dataBytes))
            }
            var count = 1
            for d in shape {
                let (p, overflow) = count.multipliedReportingOverflow(by: d)
                guard !overflow else { throw fail(.malformedEntry(name: name, reason: "shape \(shape) is too large")) }
                count = p
            }
            let (expected, overflow) = count.multipliedReportingOverflow(by: size)
            guard !overflow, expected == end - begin else {
                throw fail(.lengthMismatch(name: name, expectedBytes: overflow ? Int.max : expected, actualBytes: end - begin))
            }
            entries.append(Entry(name: name, dtype: dtype, shape: shape, begin: begin, end: end))
        }
        entries.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        for (a, b) in zip(entries, entries.dropFirst()) where b.begin < a.end && a.end > a.begin && b.end > b.begin {
            throw fail(.overlappingTensors(a.name, b.name))
        }

        var tensors: [String: SafeTensorValue] = [:]
        var dtypes: [String: String] = [:]
        bytes.withUnsafeBytes { raw in
            let base = raw.baseAddress! + headerEnd
            for e in entries {
                let p = base + e.begin
                let n = e.shape.reduce(1, *)
                dtypes[e.name] = e.dtype
                switch e.dtype {
                case "F32": tensors[e.name] = .float(Tensor(shape: e.shape, data: (0..<n).map { Float(bitPattern: load(p, $0 * 4, UInt32.self)) }))
                case "F64": tensors[e.name] = .float(Tensor(shape: e.shape, data: (0..<n).map { Float(Double(bitPattern: load(p, $0 * 8, UInt64.self))) }))
                case "F16": tensors[e.name] = .float(Tensor(shape: e.shape, data: (0..<n).map { halfToFloat(load(p, $0 * 2, UInt16.self)) }))
                case "BF16": tensors[e.name] = .float(Tensor(shape: e.shape, data: (0..<n).map { Float(bitPattern: UInt32(load(p, $0 * 2, UInt16.self)) << 16) }))
                case "I8": tensors[e.name] = .int8((0..<n).map { Int8(bitPattern: p.load(fromByteOffset: $0, as: UInt8.self)) }, shape: e.shape)
                case "U8": tensors[e.name] = .uint8((0..<n).map { p.load(fromByteOffset: $0, as: UInt8.self) }, shape: e.shape)
                case "I16": tensors[e.name] = .int16((0..<n).map { Int16(bitPattern: load(p, $0 * 2, UInt16.self)) }, shape: e.shape)
                case "I32": tensors[e.name] = .int32((0..<n).map { Int32(bitPattern: load(p, $0 * 4, UInt32.self)) }, shape: e.shape)
                default: tensors[e.name] = .int64((0..<n).map { Int64(bitPattern: load(p, $0 * 8, UInt64.self)) }, shape: e.shape)
                }
            }
        }
        return SafeTensorsFile(tensors: tensors, names: entries.map(\.name), fileDTypes: dtypes, metadata: metadata)
    }

    /// Encodes tensors in the given order (F32 for Float tensors, integer dtypes as they are).
    public static func encode(_ tensors: [(String, SafeTensorValue)], metadata: [String: String] = [:]) throws -> Data {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var body = [UInt8]()
        var seen = Set<String>()
        for (name, value) in tensors {
            guard name != "__metadata__", seen.insert(name).inserted else {
                throw SafeTensorsError(file: "<memory>", problem: .malformedEntry(name: name, reason: "duplicate or reserved name"))
            }
            let begin = body.count
            switch value {
            case .float(let t): for v in t.data { append(&body, v.bitPattern) }
            case .int8(let v, _): body += v.map { UInt8(bitPattern: $0) }
            case .uint8(let v, _): body += v
            case .int16(let v, _): for x in v { append(&body, UInt16(bitPattern: x)) }
            case .int32(let v, _): for x in v { append(&body, UInt32(bitPattern: x)) }
            case .int64(let v, _): for x in v { append(&body, UInt64(bitPattern: x)) }
            }
            header[name] = ["dtype": value.dtype, "shape": value.shape, "data_offsets": [begin, body.count]] as [String: Any]
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        // Pad the header with spaces so the data section starts 8-byte aligned, as the reference writer does.
        while json.count % 8 != 0 { json.append(0x20) }
        var out = Data()
        var length = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &length) { out.append(contentsOf: $0) }
        out.append(json)
        out.append(contentsOf: body)
        return out
    }

    /// Writes tensors to a file (atomically).
    public static func write(_ tensors: [(String, SafeTensorValue)], metadata: [String: String] = [:], to url: URL) throws {
        let data: Data
        do { data = try encode(tensors, metadata: metadata) } catch var e as SafeTensorsError {
            e.file = url.path
            throw e
        }
        do { try data.write(to: url, options: .atomic) } catch {
            throw SafeTensorsError(file: url.path, problem: .unwritable(error.localizedDescription))
        }
    }

    private static func integers(_ xs: [Any]) -> [Int]? {
        var out: [Int] = []
        for x in xs {
            // JSONSerialization yields NSNumber; booleans have objCType "c". Refuse them and fractions.
            guard let n = x as? NSNumber, String(cString: n.objCType) != "c" else { return nil }
            let d = n.doubleValue
            guard d == d.rounded(), abs(d) < 9.0e15 else { return nil }
            out.append(n.intValue)
        }
        return out
    }

    @inline(__always)
    private static func load<T: FixedWidthInteger>(_ p: UnsafeRawPointer, _ offset: Int, _: T.Type) -> T {
        T(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    private static func append<T: FixedWidthInteger>(_ bytes: inout [UInt8], _ value: T) {
        var v = value.littleEndian
        withUnsafeBytes(of: &v) { bytes += $0 }
    }

    /// IEEE 754 binary16 -> binary32, including subnormals, infinities and NaN.
    static func halfToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h >> 15) << 31
        let exponent = Int((h >> 10) & 0x1F)
        let mantissa = UInt32(h & 0x3FF)
        if exponent == 0 {
            if mantissa == 0 { return Float(bitPattern: sign) }
            let value = Float(mantissa) * 0x1p-24  // subnormal: m · 2^-24
            return sign == 0 ? value : -value
        }
        if exponent == 31 { return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13)) }
        return Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | (mantissa << 13))
    }
}

extension Network {
    /// Writes every parameter and buffer (BN running statistics) as F32, in `stateDictNames` order.
    public func saveSafeTensors(to url: URL, metadata: [String: String] = [:]) throws {
        let sd = stateDict()
        try SafeTensors.write(stateDictNames.map { ($0, .float(sd[$0]!)) }, metadata: metadata, to: url)
    }

    /// Reads a safetensors file and loads it (see `load(stateDict:strict:)`).
    @discardableResult
    public func loadSafeTensors(from url: URL, strict: Bool = true) throws -> LoadReport {
        try load(stateDict: SafeTensors.read(contentsOf: url).stateDict, strict: strict)
    }
}
