import XCTest
@testable import Datasets

final class IDXTests: XCTestCase {
    func testGzipRoundTripAndCRC() throws {
        let text = Array("The quick brown fox jumps over the lazy dog".utf8)
        XCTAssertEqual(Zlib.crc32(text), 0x414F_A339)   // the standard CRC-32 check value of this sentence
        let data = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 * 7 / 3) }
        for format in [Zlib.Format.gzip, .zlib, .raw] {
            let packed = Zlib.compress(data, format: format)
            XCTAssertLessThan(packed.count, data.count)
            XCTAssertEqual(try Zlib.decompress(packed, format: format), data)
        }
        // Header auto-detection and concatenated gzip members (as `cat a.gz b.gz`).
        XCTAssertEqual(try Zlib.decompress(Zlib.compress(text, format: .zlib)), text)
        XCTAssertEqual(try Zlib.decompress(Zlib.compress(text) + Zlib.compress(text)), text + text)
    }

    /// Issue 17 R2: a small gzip file must not inflate to gigabytes before its header is checked. A header
    /// declaring more than the cap is refused from its first bytes; data longer than the header declares
    /// stops inflating at the declared size.
    func testGzipBombsAreRefusedBeforeInflating() throws {
        // Header [2, 2^31] (more than the cap), followed by 64 MiB of zeros that compress to ~64 KB.
        let tooBig: [UInt8] = [0, 0, 8, 2, 0, 0, 0, 2, 0x80, 0, 0, 0] + [UInt8](repeating: 0, count: 64 << 20)
        XCTAssertThrowsError(try IDX.parse(Zlib.compress(tooBig), path: "big.gz")) { error in
            XCTAssertTrue("\(error)".contains("more than 2^31 elements"), "\(error)")
        }
        // Header [16] and 64 MiB of data: refused once the output passes 20 bytes, not after 64 MiB.
        let long: [UInt8] = [0, 0, 8, 1, 0, 0, 0, 16] + [UInt8](repeating: 0, count: 64 << 20)
        XCTAssertThrowsError(try IDX.parse(Zlib.compress(long), path: "long.gz")) { error in
            XCTAssertTrue("\(error)".contains("inflates to more than 24 bytes"), "\(error)")
        }
        XCTAssertEqual(try Zlib.decompress(Zlib.compress(long), limit: 8, truncating: true), Array(long.prefix(8)))
    }

    func testParsesRawAndGzipIDX() throws {
        let array = IDXArray(dimensions: [3, 2, 4], bytes: (0..<24).map { UInt8($0 * 10) })
        let raw = array.encoded()
        XCTAssertEqual(Array(raw.prefix(8)), [0, 0, 8, 3, 0, 0, 0, 3])
        XCTAssertEqual(try IDX.parse(raw, path: "a.idx"), array)
        XCTAssertEqual(try IDX.parse(Zlib.compress(raw), path: "a.idx.gz"), array)

        let folder = TemporaryFolder("idx")
        defer { folder.remove() }
        folder.write("x-idx3-ubyte.gz", Zlib.compress(raw))
        XCTAssertEqual(try IDX.read(path: folder.file("x-idx3-ubyte.gz")), array)
    }

    func testRejectsBadFilesWithTheirName() {
        let good = IDXArray(dimensions: [2, 3], bytes: [1, 2, 3, 4, 5, 6]).encoded()
        assertDatasetError(try IDX.parse(Array(good.dropLast(2)), path: "short.idx"),
                           contains: ["short.idx", "truncated", "need 6 data bytes", "has 4"])
        assertDatasetError(try IDX.parse(Zlib.compress(Array(good.dropLast(1))), path: "short.gz"),
                           contains: ["short.gz", "truncated"])
        assertDatasetError(try IDX.parse([0x50, 0x4b, 3, 4] + good.dropFirst(4), path: "zip.idx"),
                           contains: ["zip.idx", "not an IDX file", "50 4b 03 04"])
        assertDatasetError(try IDX.parse([0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0], path: "float.idx"),
                           contains: ["float.idx", "float32", "not supported"])
        assertDatasetError(try IDX.parse(good + [9], path: "long.idx"), contains: ["long.idx", "1 bytes after"])
        assertDatasetError(try IDX.parse([0, 0, 8, 3, 0, 0], path: "header.idx"), contains: ["header.idx", "truncated header"])
        assertDatasetError(try IDX.parse([0, 0, 8, 1, 0, 0, 0, 0], path: "zero.idx"), contains: ["zero.idx", "dimension 0 is 0"])
        assertDatasetError(try IDX.parse([0, 0], path: "tiny.idx"), contains: ["tiny.idx", "shorter than the 4-byte header"])
        // A gzip file cut in half, and one with a flipped byte in the deflate stream.
        let packed = Zlib.compress((0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 31) } + good)
        assertDatasetError(try IDX.parse(Array(packed.prefix(packed.count / 2)), path: "cut.gz"),
                           contains: ["cut.gz", "not a valid gzip file"])
        var flipped = packed
        flipped[12] ^= 0xff
        assertDatasetError(try IDX.parse(flipped, path: "flip.gz"), contains: ["flip.gz", "not a valid gzip file"])
        assertDatasetError(try IDX.read(path: "/nonexistent/nothing.gz"), contains: ["/nonexistent/nothing.gz", "no such file"])
    }

    /// An MNIST-style folder made by the test: 5 training and 3 test images of 4×4.
    func makeMNISTFolder(_ folder: TemporaryFolder, subfolder: String = "", labelCount: Int? = nil, gzip: Bool = true) {
        func put(_ name: String, _ array: IDXArray) {
            let path = subfolder.isEmpty ? name : subfolder + "/" + name
            folder.write(path + (gzip ? ".gz" : ""), gzip ? Zlib.compress(array.encoded()) : array.encoded())
        }
        put("train-images-idx3-ubyte", IDXArray(dimensions: [5, 4, 4], bytes: (0..<80).map { UInt8($0) }))
        put("train-labels-idx1-ubyte", IDXArray(dimensions: [labelCount ?? 5], bytes: (0..<(labelCount ?? 5)).map { UInt8($0 % 10) }))
        put("t10k-images-idx3-ubyte", IDXArray(dimensions: [3, 4, 4], bytes: (0..<48).map { UInt8(200 + $0 % 50) }))
        put("t10k-labels-idx1-ubyte", IDXArray(dimensions: [3], bytes: [7, 8, 9]))
    }

    func testMNISTFolderConcatenatesTrainAndTest() throws {
        let folder = TemporaryFolder("mnist")
        defer { folder.remove() }
        makeMNISTFolder(folder, subfolder: "MNIST/raw", gzip: false)
        let set = try MNISTFamily.mnist(directory: folder.path)
        XCTAssertEqual(set.count, 8)
        XCTAssertEqual(set.labels, [0, 1, 2, 3, 4, 7, 8, 9])
        XCTAssertEqual(set.rows, 4)
        XCTAssertEqual(set.pixels[16], 16)        // second training image, first pixel
        XCTAssertEqual(set.pixels[80], 200)       // first test image
        MNISTFamily.clearCache()
    }

    func testMismatchedAndMissingFilesAreNamed() {
        let folder = TemporaryFolder("mnist-bad")
        defer { folder.remove(); MNISTFamily.clearCache() }
        makeMNISTFolder(folder, labelCount: 4)
        assertDatasetError(try MNISTFamily.mnist(directory: folder.path),
                           contains: ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "5 images but 4 labels"])
        let empty = TemporaryFolder("mnist-empty")
        defer { empty.remove() }
        assertDatasetError(try MNISTFamily.mnist(directory: empty.path), contains: ["MNIST not found", "train-images-idx3-ubyte.gz"])
        assertDatasetError(try MNISTFamily.fashionMNIST(directory: "/nonexistent/fashion"),
                           contains: ["Fashion-MNIST not found at /nonexistent/fashion", "apt-get install dataset-fashion-mnist"])
    }

    func testFashionMNISTFromDebianPackage() throws {
        guard FileManager.default.fileExists(atPath: MNISTFamily.fashionMNISTDirectory + "/train-images-idx3-ubyte.gz") else {
            throw XCTSkip("dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)")
        }
        let set = try MNISTFamily.fashionMNIST()
        XCTAssertEqual(set.count, 70_000)
        XCTAssertEqual(set.rows, 28)
        XCTAssertEqual(set.columns, 28)
        // Balanced classes: 7,000 of each in train+test.
        var counts = [Int](repeating: 0, count: 10)
        for l in set.labels { counts[l] += 1 }
        XCTAssertEqual(counts, [Int](repeating: 7000, count: 10))
        // The first training label of Fashion-MNIST is 9 (ankle boot), the first test label 9 too.
        XCTAssertEqual(set.labels[0], 9)
        XCTAssertEqual(set.labels[60_000], 9)
        XCTAssertEqual(MNISTFamily.fashionClassNames[9], "Ankle boot")
    }
}
