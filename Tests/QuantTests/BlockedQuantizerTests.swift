import XCTest
import TensorCore
import NN
@testable import Quant

/// Quantizers inside a blocked run (docs/backends.md, "Blocked activations"): the arithmetic is
/// elementwise, but whatever a quantizer shows outside — its observer, which reports and the ONNX
/// export's reference codes read — must be in plain NCHW order whatever layout the layer ran in.
final class BlockedQuantizerTests: XCTestCase {
    func testObserversSeePlainTensorsInBlockedRuns() throws {
        guard Backend.oneDNNAvailable && Backend.oneDNNPreferredBlock > 0 else {
            throw XCTSkip("oneDNN not loaded or without a blocked layout here")
        }
        let saved = Backend.keepActivationsBlocked
        defer { Backend.keepActivationsBlocked = saved }
        var rng = RNG(seed: 80)
        let x = rng.normalTensor([3, 1, 12, 12])
        var seen: [Bool: [String: Tensor]] = [:]
        try Backend.with(.onednn) {
            for blocked in [false, true] {
                Backend.keepActivationsBlocked = blocked
                let net = try Network.make(architecture: "resnet20", inChannels: 1, classes: 4, seed: 5)
                try attachQuantizers(to: net, config: QuantizationConfig(weightBits: 4, activationBits: 4))
                try calibrateQuantizers(in: net, batches: [x])
                var inputs: [String: Tensor] = [:]
                for q in quantizers(in: net) where q.role == .activation {
                    let name = q.name
                    q.observer = { input, output in
                        XCTAssertEqual(input.shape, output.shape)
                        inputs[name] = input
                    }
                }
                _ = net.forward(x, .eval)
                seen[blocked] = inputs
            }
        }
        let plain = try XCTUnwrap(seen[false]), blocked = try XCTUnwrap(seen[true])
        XCTAssertEqual(Set(plain.keys), Set(blocked.keys))
        XCTAssertGreaterThan(plain.count, 10)
        for (name, p) in plain {
            // Same values in the same order, up to BatchNorm's summation order (a permuted tensor would
            // differ by the size of the values themselves).
            let b = try XCTUnwrap(blocked[name])
            XCTAssertLessThan(b.maxRelativeDifference(p), 1e-4, name)
        }
    }
}
