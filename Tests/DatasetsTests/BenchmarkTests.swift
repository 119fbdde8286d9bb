import XCTest
@testable import Datasets
import TensorCore

final class BenchmarkTests: XCTestCase {
    func requireFashionMNIST() throws {
        guard FileManager.default.fileExists(atPath: MNISTFamily.fashionMNISTDirectory + "/train-images-idx3-ubyte.gz") else {
            throw XCTSkip("dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)")
        }
    }

    /// The full DomainBed recipe: 70,000 images in 6 domains of 11,667 ×4 and 11,666 ×2,
    /// disjoint and covering every image once; domain 0 holds unrotated source images.
    func testRotatedFashionMNISTFollowsTheRotatedMNISTRecipe() throws {
        try requireFashionMNIST()
        let data = try Benchmarks.make("rotated-fmnist", options: BenchmarkOptions(seed: 0))
        XCTAssertEqual(data.domainNames, ["0", "15", "30", "45", "60", "75"])
        XCTAssertEqual(data.domains.map(\.count), [11_667, 11_667, 11_667, 11_667, 11_666, 11_666])
        XCTAssertEqual(data.imageShape, [1, 28, 28])
        XCTAssertEqual(data.classNames.count, 10)
        let origins = data.domains.flatMap { $0.origin! }
        XCTAssertEqual(Set(origins).count, 70_000, "domains are disjoint and cover the source")

        let source = try MNISTFamily.fashionMNIST()
        guard case .memory(let zero) = data.domains[0].images, case .memory(let rotated) = data.domains[3].images else {
            return XCTFail("built-in domains are in memory")
        }
        for j in [0, 1, 5000] {
            let src = data.domains[0].origin![j]
            XCTAssertEqual(data.domains[0].labels[j], source.labels[src])
            for p in 0..<784 { XCTAssertEqual(zero.data[j * 784 + p], Float(source.pixels[src * 784 + p]) / 255) }
        }
        // Domain 3 (45°) images equal a 45° Pillow-style rotation of their source image.
        let src = data.domains[3].origin![7]
        var expected = [UInt8](repeating: 0, count: 784)
        source.pixels.withUnsafeBufferPointer { px in
            expected.withUnsafeMutableBufferPointer { out in
                ImageOps.rotate(px.baseAddress! + src * 784, width: 28, height: 28, degrees: 45, into: out.baseAddress!)
            }
        }
        XCTAssertEqual(Array(rotated.data[(7 * 784)..<(8 * 784)]), expected.map { Float($0) / 255 })
        XCTAssertTrue(rotated.data.allSatisfy { $0 >= 0 && $0 <= 1 })
    }

    func testBenchmarksAreDeterministicForASeed() throws {
        try requireFashionMNIST()
        for name in ["rotated-fmnist", "style-fmnist"] {
            let a = try Benchmarks.make(name, options: BenchmarkOptions(seed: 7, perDomain: 200))
            let b = try Benchmarks.make(name, options: BenchmarkOptions(seed: 7, perDomain: 200))
            let c = try Benchmarks.make(name, options: BenchmarkOptions(seed: 8, perDomain: 200))
            for d in a.domains.indices {
                guard case .memory(let ta) = a.domains[d].images, case .memory(let tb) = b.domains[d].images,
                      case .memory(let tc) = c.domains[d].images else { return XCTFail() }
                XCTAssertEqual(ta, tb, "\(name) domain \(d) differs between two builds with seed 7")
                XCTAssertEqual(a.domains[d].labels, b.domains[d].labels)
                XCTAssertNotEqual(ta, tc, "\(name) domain \(d) is the same for seeds 7 and 8")
                XCTAssertEqual(a.domains[d].count, 200)
            }
        }
    }

    func testStyleBenchmarkHasDisjointDomainsWithDifferentStatistics() throws {
        try requireFashionMNIST()
        let data = try Benchmarks.make("style-fmnist", options: BenchmarkOptions(seed: 1, perDomain: 500))
        XCTAssertEqual(data.domainNames, ["clean", "chalk", "fog", "noise"])
        XCTAssertEqual(Set(data.domains.flatMap { $0.origin! }).count, 2000, "domains share no source image")
        // Per domain: standard deviation, fraction of black pixels, and roughness (mean |x − right neighbour|).
        var stats: [String: (std: Double, black: Double, rough: Double)] = [:]
        for d in data.domains {
            guard case .memory(let t) = d.images else { return XCTFail() }
            XCTAssertTrue(t.data.allSatisfy { $0 >= 0 && $0 <= 1 }, "\(d.name) leaves [0, 1]")
            let m = t.mean()
            let std = (t.squaredNorm() / Double(t.count) - m * m).squareRoot()
            let black = Double(t.data.filter { $0 == 0 }.count) / Double(t.count)
            var rough = 0.0
            for i in 0..<(t.count - 1) where (i + 1) % 28 != 0 { rough += Double(abs(t.data[i + 1] - t.data[i])) }
            stats[d.name] = (std, black, rough / Double(t.count))
            XCTAssertEqual(Set(d.labels).count, 10)
        }
        let clean = stats["clean"]!, chalk = stats["chalk"]!, fog = stats["fog"]!, noise = stats["noise"]!
        XCTAssertGreaterThan(clean.black, 0.3, "Fashion-MNIST garments sit on black: \(clean)")
        XCTAssertLessThan(chalk.black, 0.05, "chalk is drawn on a grey board: \(chalk)")
        XCTAssertGreaterThan(chalk.rough, clean.rough, "chalk outlines and dust are rough: \(chalk) vs \(clean)")
        XCTAssertLessThan(fog.std, clean.std * 0.75, "fog loses contrast: \(fog) vs \(clean)")
        XCTAssertLessThan(fog.rough, clean.rough, "fog is blurred: \(fog) vs \(clean)")
        XCTAssertGreaterThan(noise.rough, clean.rough * 3, "noise is rough: \(noise) vs \(clean)")
        // The optional pencil sketch is dark on light paper.
        let sketch = try Benchmarks.make("style-fmnist", options: BenchmarkOptions(seed: 1, perDomain: 50, styles: ["sketch"]))
        guard case .memory(let paper) = sketch.domains[0].images else { return XCTFail() }
        XCTAssertGreaterThan(paper.mean(), 0.6)
    }

    func testSizeChannelsNormalisationAndLimits() throws {
        try requireFashionMNIST()
        let options = BenchmarkOptions(seed: 2, perDomain: 20, imageSize: 32, channels: 3,
                                       normalization: Normalization(mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5]))
        let data = try Benchmarks.make("style-fmnist", options: options)
        XCTAssertEqual(data.imageShape, [3, 32, 32])
        guard case .memory(let t) = data.domains[0].images else { return XCTFail() }
        XCTAssertEqual(t.shape, [20, 3, 32, 32])
        XCTAssertEqual(Array(t.data[0..<1024]), Array(t.data[1024..<2048]), "grey replicated to 3 channels")
        XCTAssertTrue(t.data.allSatisfy { $0 >= -1 && $0 <= 1 })
        XCTAssertLessThan(t.data.min()!, -0.9, "black background normalises to about -1")
        let small = try Benchmarks.make("rotated-fmnist", options: BenchmarkOptions(perDomain: 3))
        XCTAssertEqual(small.domains.map(\.count), [3, 3, 3, 3, 3, 3])
        XCTAssertEqual(small.limited(perDomain: 2).domains.map(\.count), [2, 2, 2, 2, 2, 2])
    }

    func testOptionErrorsAreClear() {
        assertDatasetError(try Benchmarks.make("rotated-cifar"), contains: ["unknown benchmark \"rotated-cifar\"", "rotated-fmnist", "style-fmnist"])
        assertDatasetError(try Benchmarks.make("style-fmnist", options: BenchmarkOptions(styles: ["clean", "oil"])),
                           contains: ["unknown style \"oil\"", "sketch"])
        assertDatasetError(try Benchmarks.make("style-fmnist", options: BenchmarkOptions(channels: 2)), contains: ["channels=2", "1 or 3"])
        assertDatasetError(try Benchmarks.make("rotated-fmnist", options: BenchmarkOptions(perDomain: 0)), contains: ["perDomain=0"])
        assertDatasetError(try Benchmarks.make("rotated-mnist"), contains: ["rotated-mnist reads MNIST IDX files"])
        if FileManager.default.fileExists(atPath: MNISTFamily.fashionMNISTDirectory + "/train-images-idx3-ubyte.gz") {
            assertDatasetError(try Benchmarks.make("style-fmnist", options: BenchmarkOptions(perDomain: 20_000)),
                               contains: ["perDomain=20000", "at most 17500"])
        }
    }

    func testRotatedMNISTFromAFolder() throws {
        let folder = TemporaryFolder("rotated-mnist")
        defer { folder.remove(); MNISTFamily.clearCache() }
        var pixels = [UInt8](repeating: 0, count: 12 * 28 * 28)
        for i in 0..<12 { pixels[i * 784 + 14 * 28 + 20] = 255 }   // one bright pixel right of centre
        folder.write("train-images-idx3-ubyte.gz", Zlib.compress(IDXArray(dimensions: [12, 28, 28], bytes: pixels).encoded()))
        folder.write("train-labels-idx1-ubyte.gz", Zlib.compress(IDXArray(dimensions: [12], bytes: (0..<12).map { UInt8($0 % 10) }).encoded()))
        folder.write("t10k-images-idx3-ubyte.gz", Zlib.compress(IDXArray(dimensions: [2, 28, 28], bytes: [UInt8](repeating: 0, count: 2 * 784)).encoded()))
        folder.write("t10k-labels-idx1-ubyte.gz", Zlib.compress(IDXArray(dimensions: [2], bytes: [0, 1]).encoded()))
        let data = try Benchmarks.make("rotated-mnist", options: BenchmarkOptions(angles: [0, 90], sourceDirectory: folder.path))
        XCTAssertEqual(data.domainNames, ["0", "90"])
        XCTAssertEqual(data.domains.map(\.count), [7, 7])
        XCTAssertEqual(data.classNames, (0..<10).map(String.init))
        // A 90° counter-clockwise turn moves the pixel right of centre to above the centre.
        guard case .memory(let turned) = data.domains[1].images else { return XCTFail() }
        if let j = data.domains[1].origin!.firstIndex(where: { $0 < 12 }) {
            XCTAssertEqual(turned.data[j * 784 + 7 * 28 + 14], 1)
        }
    }
}
