import XCTest
import Foundation
import TensorCore
@testable import NN

final class SafeTensorsTests: XCTestCase {
    /// Builds a file from a header JSON string and a data section, as another writer would.
    func file(_ header: String, _ data: [UInt8], declaredLength: UInt64? = nil) -> Data {
        var out = Data()
        var n = (declaredLength ?? UInt64(header.utf8.count)).littleEndian
        withUnsafeBytes(of: &n) { out.append(contentsOf: $0) }
        out.append(contentsOf: Array(header.utf8))
        out.append(contentsOf: data)
        return out
    }

    func assertProblem(_ data: Data, _ expected: (SafeTensorsError.Problem) -> Bool, _ text: String,
                       file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try SafeTensors.decode(data, source: "bad.safetensors"), file: file, line: line) { error in
            guard let e = error as? SafeTensorsError else { return XCTFail("wrong error type \(error)", file: file, line: line) }
            XCTAssertTrue(expected(e.problem), "unexpected problem \(e.problem)", file: file, line: line)
            XCTAssertTrue(e.description.contains("bad.safetensors"), e.description, file: file, line: line)
            XCTAssertTrue(e.description.contains(text), "'\(e.description)' should mention '\(text)'", file: file, line: line)
        }
    }

    func testRoundTripF32IntegersAndMetadata() throws {
        var rng = RNG(seed: 1)
        let w = rng.normalTensor([3, 2, 1, 1])
        let items: [(String, SafeTensorValue)] = [
            ("conv.weight", .float(w)),
            ("empty", .float(Tensor.zeros([0, 4]))),
            ("scalar", .float(Tensor(shape: [], data: [2.5]))),
            ("q.int8", .int8([-128, -1, 0, 127], shape: [2, 2])),
            ("q.uint8", .uint8([0, 255], shape: [2])),
            ("q.int32", .int32([Int32.min, 7, Int32.max], shape: [3])),
            ("q.int64", .int64([Int64.min, -3, Int64.max], shape: [3])),
        ]
        let data = try SafeTensors.encode(items, metadata: ["format": "pt", "note": "é \"quoted\""])
        let headerLength = data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        XCTAssertEqual(headerLength % 8, 0, "header padded to 8 bytes")
        let back = try SafeTensors.decode(data)
        XCTAssertEqual(back.metadata, ["format": "pt", "note": "é \"quoted\""])
        XCTAssertEqual(back.names, items.map(\.0))
        for (name, value) in items { XCTAssertEqual(back.tensors[name], value, name) }
        XCTAssertEqual(back.fileDTypes["q.int8"], "I8")
        XCTAssertEqual(back.stateDict["q.int8"]?.data, [-128, -1, 0, 127])
    }

    /// Bytes written by hand for F16, BF16 and F64, the way PyTorch stores them (little-endian).
    func testReadsHalfBFloatAndDouble() throws {
        // F16: 1.0 = 0x3C00, -2.0 = 0xC000, 65504 = 0x7BFF, smallest subnormal 2^-24 = 0x0001, +inf = 0x7C00
        // BF16: 1.0 = 0x3F80, -0.5 = 0xBF00, 3.140625 = 0x4049
        // F64: 0.1
        var bytes: [UInt8] = []
        for h: UInt16 in [0x3C00, 0xC000, 0x7BFF, 0x0001, 0x7C00] { bytes += [UInt8(h & 0xFF), UInt8(h >> 8)] }
        for h: UInt16 in [0x3F80, 0xBF00, 0x4049] { bytes += [UInt8(h & 0xFF), UInt8(h >> 8)] }
        withUnsafeBytes(of: (0.1 as Double).bitPattern.littleEndian) { bytes += $0 }
        let header = #"{"h":{"dtype":"F16","shape":[5],"data_offsets":[0,10]},"b":{"dtype":"BF16","shape":[3],"data_offsets":[10,16]},"d":{"dtype":"F64","shape":[1,1],"data_offsets":[16,24]},"__metadata__":{"k":"v"}}"#
        let f = try SafeTensors.decode(file(header, bytes))
        XCTAssertEqual(f.tensors["h"]?.floatTensor.data, [1, -2, 65504, 0x1p-24, .infinity])
        XCTAssertEqual(f.tensors["b"]?.floatTensor.data, [1, -0.5, 3.140625])
        XCTAssertEqual(f.tensors["d"]?.floatTensor.data, [Float(0.1)])
        XCTAssertEqual(f.tensors["d"]?.shape, [1, 1])
        XCTAssertEqual(f.fileDTypes["h"], "F16")
        XCTAssertEqual(f.metadata, ["k": "v"])
        XCTAssertEqual(SafeTensors.halfToFloat(0x8000).sign, .minus)
        XCTAssertTrue(SafeTensors.halfToFloat(0x7E00).isNaN)
    }

    func testMalformedFilesThrowClearErrors() {
        let ok = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        let eight = [UInt8](repeating: 0, count: 8)
        XCTAssertNoThrow(try SafeTensors.decode(file(ok, eight)))
        assertProblem(Data([1, 2, 3]), { if case .tooSmall = $0 { return true }; return false }, "too short")
        assertProblem(file(ok, eight, declaredLength: 10_000), { if case .headerLengthOutOfRange = $0 { return true }; return false }, "10000-byte header")
        assertProblem(file(ok, eight, declaredLength: UInt64.max), { if case .headerLengthOutOfRange = $0 { return true }; return false }, "header")
        assertProblem(file("{\"a\": [1,", []), { if case .headerNotJSON = $0 { return true }; return false }, "not valid JSON")
        assertProblem(file("[1, 2]", []), { $0 == .headerNotObject }, "not a JSON object")
        var badUTF8 = file("{}", [])
        badUTF8[9] = 0xFF
        assertProblem(badUTF8, { $0 == .headerNotUTF8 }, "UTF-8")
        assertProblem(file(#"{"a":{"shape":[2],"data_offsets":[0,8]}}"#, eight),
                      { $0 == .malformedEntry(name: "a", reason: "missing or non-string \"dtype\"") }, "'a'")
        assertProblem(file(#"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, eight),
                      { if case .malformedEntry = $0 { return true }; return false }, "non-negative integers")
        assertProblem(file(#"{"a":{"dtype":"F32","shape":[true],"data_offsets":[0,8]}}"#, eight),
                      { if case .malformedEntry = $0 { return true }; return false }, "shape")
        assertProblem(file(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}}"#, eight),
                      { if case .malformedEntry = $0 { return true }; return false }, "data_offsets")
        assertProblem(file(#"{"a":"nope"}"#, eight), { if case .malformedEntry = $0 { return true }; return false }, "not an object")
        assertProblem(file(#"{"a":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}}"#, eight),
                      { $0 == .unsupportedDType(name: "a", dtype: "C64") }, "C64")
        // Truncated data: the entry needs 8 bytes, the file has 4.
        assertProblem(file(ok, [0, 0, 0, 0]), { $0 == .offsetsOutOfRange(name: "a", begin: 0, end: 8, dataBytes: 4) }, "truncated")
        assertProblem(file(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,4]}}"#, eight),
                      { if case .offsetsOutOfRange = $0 { return true }; return false }, "[8, 4)")
        assertProblem(file(#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, eight),
                      { $0 == .lengthMismatch(name: "a", expectedBytes: 12, actualBytes: 8) }, "need 12")
        assertProblem(file(#"{"a":{"dtype":"F32","shape":[4611686018427387904, 4],"data_offsets":[0,8]}}"#, eight),
                      { if case .malformedEntry = $0 { return true }; if case .lengthMismatch = $0 { return true }; return false }, "'a'")
        assertProblem(file(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, eight),
                      { $0 == .overlappingTensors("a", "b") }, "overlap")
        assertProblem(file(#"{"__metadata__":{"k":1}}"#, []), { if case .malformedMetadata = $0 { return true }; return false }, "__metadata__")
        XCTAssertThrowsError(try SafeTensors.read(contentsOf: URL(fileURLWithPath: "/nonexistent/x.safetensors"))) { error in
            XCTAssertTrue("\(error)".contains("/nonexistent/x.safetensors"), "\(error)")
        }
    }

    func testNetworkSaveLoadThroughFileWithRunningStats() throws {
        let a = try Network.make(architecture: "resnet8", inChannels: 1, classes: 3, width: 0.5, seed: 1)
        _ = a.forward(randomTensor([4, 1, 8, 8], seed: 2), ForwardContext(training: true))
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("nn-test-\(getpid()).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try a.saveSafeTensors(to: url, metadata: ["architecture": "resnet8"])
        let read = try SafeTensors.read(contentsOf: url)
        XCTAssertEqual(read.names, a.stateDictNames)
        XCTAssertNotNil(read.tensors["bn1.running_mean"])
        XCTAssertEqual(read.metadata["architecture"], "resnet8")
        let b = try Network.make(architecture: "resnet8", inChannels: 1, classes: 3, width: 0.5, seed: 9)
        let report = try b.loadSafeTensors(from: url)
        XCTAssertTrue(report.isClean, report.summary)
        XCTAssertEqual(b.stateDict(), a.stateDict())
        let x = randomTensor([2, 1, 8, 8], seed: 3)
        XCTAssertEqual(b.forward(x, .eval), a.forward(x, .eval))
    }
}
