// A minimal safetensors codec for the integer export and the test fixtures (F32, I8, U8, I32).
// Format (huggingface/safetensors): u64 little-endian header length n; n bytes of JSON
// {"name": {"dtype", "shape", "data_offsets": [begin, end]}, ..., "__metadata__": {string: string}};
// then the data buffer, offsets relative to its start. The header is padded with spaces to a
// multiple of 8 so the buffer is aligned. Decoding validates everything and reports the first
// problem as `QuantizationError.corruptExport`.
import Foundation

struct SafeTensor: Equatable {
    enum DType: String, CaseIterable {
        case f32 = "F32", i8 = "I8", u8 = "U8", i32 = "I32"
        var size: Int { switch self { case .f32, .i32: return 4; case .i8, .u8: return 1 } }
    }
    var dtype: DType
    var shape: [Int]
    /// Little-endian element bytes.
    var bytes: [UInt8]

    var count: Int { shape.reduce(1, *) }

    init(dtype: DType, shape: [Int], bytes: [UInt8]) {
        self.dtype = dtype; self.shape = shape; self.bytes = bytes
    }

    init(float values: [Float], shape: [Int]) {
        var b = [UInt8](repeating: 0, count: values.count * 4)
        for (i, v) in values.enumerated() {
            let u = v.bitPattern.littleEndian
            b[4 * i] = UInt8(truncatingIfNeeded: u); b[4 * i + 1] = UInt8(truncatingIfNeeded: u >> 8)
            b[4 * i + 2] = UInt8(truncatingIfNeeded: u >> 16); b[4 * i + 3] = UInt8(truncatingIfNeeded: u >> 24)
        }
        self.init(dtype: .f32, shape: shape, bytes: b)
    }

    init(int8 values: [Int8], shape: [Int]) {
        self.init(dtype: .i8, shape: shape, bytes: values.map { UInt8(bitPattern: $0) })
    }

    init(uint8 values: [UInt8], shape: [Int]) {
        self.init(dtype: .u8, shape: shape, bytes: values)
    }

    /// Elements as Float, whatever the stored type (integers convert exactly).
    var floats: [Float] {
        switch dtype {
        case .f32:
            return (0..<count).map { i in
                let u = UInt32(bytes[4 * i]) | UInt32(bytes[4 * i + 1]) << 8 | UInt32(bytes[4 * i + 2]) << 16 | UInt32(bytes[4 * i + 3]) << 24
                return Float(bitPattern: u)
            }
        case .i32:
            return (0..<count).map { i in
                let u = UInt32(bytes[4 * i]) | UInt32(bytes[4 * i + 1]) << 8 | UInt32(bytes[4 * i + 2]) << 16 | UInt32(bytes[4 * i + 3]) << 24
                return Float(Int32(bitPattern: u))
            }
        case .i8: return bytes.map { Float(Int8(bitPattern: $0)) }
        case .u8: return bytes.map { Float($0) }
        }
    }

    /// Elements as Int (integer types only).
    var integers: [Int] {
        switch dtype {
        case .i8: return bytes.map { Int(Int8(bitPattern: $0)) }
        case .u8: return bytes.map { Int($0) }
        case .i32, .f32: return floats.map { Int($0) }
        }
    }
}

enum SafeTensorsCodec {
    static func jsonString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }

    /// Encodes tensors in the given order (the file keeps that order in its buffer).
    static func encode(_ tensors: [(String, SafeTensor)], metadata: [String: String]) -> [UInt8] {
        var header = "{"
        var parts: [String] = []
        if !metadata.isEmpty {
            let m = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }.joined(separator: ",")
            parts.append("\"__metadata__\":{\(m)}")
        }
        var offset = 0
        for (name, t) in tensors {
            precondition(t.bytes.count == t.count * t.dtype.size, "safetensors: \(name) has \(t.bytes.count) bytes for \(t.shape) \(t.dtype)")
            let shape = t.shape.map(String.init).joined(separator: ",")
            parts.append("\(jsonString(name)):{\"dtype\":\"\(t.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + t.bytes.count)]}")
            offset += t.bytes.count
        }
        header += parts.joined(separator: ",") + "}"
        var headerBytes = Array(header.utf8)
        while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }
        var out = [UInt8]()
        out.reserveCapacity(8 + headerBytes.count + offset)
        let n = UInt64(headerBytes.count)
        for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: n >> (8 * UInt64(i)))) }
        out += headerBytes
        for (_, t) in tensors { out += t.bytes }
        return out
    }

    static func decode(_ data: [UInt8], path: String) throws -> (tensors: [String: SafeTensor], order: [String], metadata: [String: String]) {
        func fail(_ reason: String) -> QuantizationError { .corruptExport(path: path, reason: reason) }
        guard data.count >= 8 else { throw fail("file is \(data.count) bytes, shorter than the 8-byte header length") }
        var n: UInt64 = 0
        for i in 0..<8 { n |= UInt64(data[i]) << (8 * UInt64(i)) }
        guard n >= 2, n <= UInt64(data.count - 8) else {
            throw fail("header length \(n) does not fit in a file of \(data.count) bytes (truncated?)")
        }
        let headerEnd = 8 + Int(n)
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: Data(data[8..<headerEnd]))
        } catch {
            throw fail("header is not valid JSON")
        }
        guard let object = json as? [String: Any] else { throw fail("header is not a JSON object") }
        let bufferSize = data.count - headerEnd
        var metadata: [String: String] = [:]
        var tensors: [String: SafeTensor] = [:]
        var spans: [(Int, Int, String)] = []
        for (name, value) in object {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else { throw fail("__metadata__ is not an object") }
                for (k, v) in m {
                    guard let s = v as? String else { throw fail("metadata value for '\(k)' is not a string") }
                    metadata[k] = s
                }
                continue
            }
            guard let entry = value as? [String: Any],
                  let dtypeName = entry["dtype"] as? String,
                  let shapeAny = entry["shape"] as? [Any],
                  let offsetsAny = entry["data_offsets"] as? [Any], offsetsAny.count == 2 else {
                throw fail("tensor '\(name)' lacks dtype, shape or data_offsets")
            }
            guard let dtype = SafeTensor.DType(rawValue: dtypeName) else {
                throw fail("tensor '\(name)' has unsupported dtype \(dtypeName)")
            }
            let shape = shapeAny.compactMap { ($0 as? NSNumber)?.intValue }
            let offsets = offsetsAny.compactMap { ($0 as? NSNumber)?.intValue }
            guard shape.count == shapeAny.count, offsets.count == 2, shape.allSatisfy({ $0 >= 0 }) else {
                throw fail("tensor '\(name)' has a malformed shape or offsets")
            }
            let (begin, end) = (offsets[0], offsets[1])
            let expected = shape.reduce(1, *) * dtype.size
            guard begin >= 0, end >= begin, end <= bufferSize else {
                throw fail("tensor '\(name)' data [\(begin), \(end)) lies outside the \(bufferSize)-byte buffer (truncated?)")
            }
            guard end - begin == expected else {
                throw fail("tensor '\(name)' has \(end - begin) bytes, its shape \(shape) \(dtypeName) needs \(expected)")
            }
            tensors[name] = SafeTensor(dtype: dtype, shape: shape, bytes: Array(data[(headerEnd + begin)..<(headerEnd + end)]))
            spans.append((begin, end, name))
        }
        spans.sort { $0.0 < $1.0 }
        for i in 1..<max(1, spans.count) where spans[i].0 < spans[i - 1].1 {
            throw fail("tensors '\(spans[i - 1].2)' and '\(spans[i].2)' overlap")
        }
        return (tensors, spans.map(\.2), metadata)
    }

    static func read(path: String) throws -> (tensors: [String: SafeTensor], order: [String], metadata: [String: String]) {
        guard let d = FileManager.default.contents(atPath: path) else {
            throw QuantizationError.corruptExport(path: path, reason: "cannot read the file")
        }
        return try decode([UInt8](d), path: path)
    }

    static func write(_ tensors: [(String, SafeTensor)], metadata: [String: String], path: String) throws -> Int {
        let bytes = encode(tensors, metadata: metadata)
        try Data(bytes).write(to: URL(fileURLWithPath: path), options: .atomic)
        return bytes.count
    }
}
