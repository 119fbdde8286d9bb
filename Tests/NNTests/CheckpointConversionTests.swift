import XCTest
import Foundation
import TensorCore
@testable import NN

/// The converted checkpoints (scripts/convert_checkpoint.py on torch-made files, see
/// scripts/make_checkpoint_fixture.py) load strictly into our torchvision ResNets and reproduce
/// torch's outputs on the fixed batch. References are float64 computations on the stored float32
/// weights and input; tolerance 1e-4 of the largest |output| (float32 through ~20–50 layers).
final class CheckpointConversionTests: XCTestCase {
    func file(_ rel: String) throws -> URL {
        try XCTUnwrap(Bundle.module.resourceURL).appendingPathComponent("Fixtures/checkpoints/\(rel)")
    }

    func expected(_ name: String) throws -> Tensor {
        let f = try SafeTensors.read(contentsOf: try file("expected.safetensors"))
        return try XCTUnwrap(f.stateDict[name], "expected.safetensors lacks \(name)")
    }

    func scaledDifference(_ a: Tensor, _ b: Tensor) -> Float {
        XCTAssertEqual(a.shape, b.shape)
        guard a.shape == b.shape else { return .infinity }
        var m: Float = 0
        for i in 0..<a.count { m = max(m, abs(a.data[i] - b.data[i])) }
        return m / max(b.maxAbs(), 1e-12)
    }

    func load(_ stem: String, _ architecture: String, strict: Bool) throws -> (Network, LoadReport) {
        let net = try Network.make(architecture: architecture, inChannels: 3, classes: 7, width: 1.0 / 16)
        let report = try net.loadSafeTensors(from: try file("converted/\(stem).safetensors"), strict: strict)
        return (net, report)
    }

    func checkLogits(_ stem: String, _ architecture: String) throws {
        let (net, report) = try load(stem, architecture, strict: true)
        XCTAssertTrue(report.isClean, "\(stem): \(report.summary)")
        let logits = net.forward(try expected("input"), .eval)
        let d = scaledDifference(logits, try expected("\(stem).logits"))
        XCTAssertLessThanOrEqual(d, 1e-4, "\(stem): logits differ from torch's by \(d) of the largest logit")
        // And the top class of every image.
        let ref = try expected("\(stem).logits")
        for i in 0..<ref.shape[0] {
            let row = Array(ref.data[i * 7..<(i + 1) * 7]), ours = Array(logits.data[i * 7..<(i + 1) * 7])
            XCTAssertEqual(ours.firstIndex(of: ours.max()!), row.firstIndex(of: row.max()!), "\(stem) image \(i)")
        }
    }

    func testTorchvisionZipCheckpoint() throws { try checkLogits("resnet18_torchvision", "resnet18") }
    func testTorchvisionLegacyCheckpoint() throws { try checkLogits("resnet50_torchvision_legacy", "resnet50") }
    func testDomainBedModelPkl() throws { try checkLogits("resnet18_domainbed_model", "resnet18") }

    /// MoCo-v2's head is dropped: everything but the classifier loads, and the features match.
    func testMoCoV2CheckpointGivesTorchsFeatures() throws {
        XCTAssertThrowsError(try load("resnet50_moco_v2", "resnet50", strict: true)) { error in
            XCTAssertTrue("\(error)".contains("missing fc.weight, fc.bias"), "\(error)")
        }
        let (net, report) = try load("resnet50_moco_v2", "resnet50", strict: false)
        XCTAssertEqual(report.missing, ["fc.weight", "fc.bias"])
        XCTAssertEqual(report.unexpected, [])
        XCTAssertEqual(report.shapeMismatch, [])
        let features = net.features(try expected("input"), .eval)
        let d = scaledDifference(features, try expected("resnet50_moco_v2.features"))
        XCTAssertLessThanOrEqual(d, 1e-4, "MoCo features differ from torch's by \(d) of the largest feature")
    }

    func testProvenanceMetadata() throws {
        let f = try SafeTensors.read(contentsOf: try file("converted/resnet50_moco_v2.safetensors"))
        XCTAssertEqual(f.metadata["layout"], "moco-v2")
        XCTAssertEqual(f.metadata["source"], "resnet50_moco_v2.pth.tar")
        XCTAssertEqual(f.metadata["source_sha256"]?.count, 64)
        XCTAssertTrue(f.metadata["dropped"]?.contains("module.encoder_q.fc.0.weight") == true)
    }
}
