// Shared fixtures of the Training tests: the style-fmnist benchmark (built once per size; tests
// skip when Debian's Fashion-MNIST is not installed) and small models.
import Datasets
import Foundation
import NN
import Quant
import TensorCore
@testable import Training
import XCTest

enum TrainingFixtures {
    static let fashionMNISTPresent = FileManager.default.fileExists(
        atPath: MNISTFamily.fashionMNISTDirectory + "/train-images-idx3-ubyte.gz")

    nonisolated(unsafe) static var cache: [Int: DomainDataset] = [:]

    /// style-fmnist (clean, sketch, fog, noise), `perDomain` images per domain, seed 0.
    static func styleFMNIST(perDomain: Int) throws -> DomainDataset {
        try XCTSkipUnless(fashionMNISTPresent, "Fashion-MNIST is not installed at \(MNISTFamily.fashionMNISTDirectory) (apt-get install dataset-fashion-mnist)")
        if let d = cache[perDomain] { return d }
        let d = try Benchmarks.make("style-fmnist", options: BenchmarkOptions(seed: 0, perDomain: perDomain))
        cache[perDomain] = d
        return d
    }

    static func descriptor(perDomain: Int) -> DataDescriptor {
        .builtin("style-fmnist", options: BenchmarkOptions(seed: 0, perDomain: perDomain))
    }

    /// A ResNet-8 at half width for 1×28×28 images (channels 8, 16, 32).
    static let tinyModel = ModelDescriptor(architecture: "resnet8", inChannels: 1, classes: 10, width: 0.5, seed: 7)

    /// The tiny model, quantized (4-bit LSQ or EWGS) and calibrated on the training domains.
    static func quantizedTinyModel(data: DomainDataset, environments: EnvironmentAssignment,
                                   method: QuantizationMethod = .lsq) throws -> Network {
        let net = try tinyModel.make()
        let batches = try Quantize.calibrationBatches(dataset: data, environments: environments, count: 1, perDomain: 16, seed: 1)
        try Quantize.prepare(network: net, config: QuantizationConfig(method: method), calibrationBatches: batches)
        return net
    }
}

/// Bit-level equality of float arrays (NaN payloads included), with the first difference in the message.
func assertBitIdentical(_ a: [Float], _ b: [Float], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, "\(what): sizes", file: file, line: line)
    if let i = a.indices.first(where: { $0 < b.count && a[$0].bitPattern != b[$0].bitPattern }) {
        XCTFail("\(what): element \(i) differs: \(a[i]) vs \(b[i])", file: file, line: line)
    }
}

func assertSameModel(_ a: Network, _ b: Network, file: StaticString = #filePath, line: UInt = #line) {
    let sa = a.stateDict(), sb = b.stateDict()
    XCTAssertEqual(Set(sa.keys), Set(sb.keys), "state dict names", file: file, line: line)
    for name in a.stateDictNames {
        guard let x = sa[name], let y = sb[name] else { continue }
        XCTAssertEqual(x.shape, y.shape, name, file: file, line: line)
        assertBitIdentical(x.data, y.data, name, file: file, line: line)
    }
}
