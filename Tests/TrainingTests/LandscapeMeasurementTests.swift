// Opt-in timings (no assertions on time): FQAT_MEASURE=1 swift test --filter TrainingTests.LandscapeMeasurementTests
import Foundation
import NN
import TensorCore
import XCTest
@testable import Landscape

final class LandscapeMeasurementTests: XCTestCase {
    func testPointsPerSecond() throws {
        try XCTSkipUnless(ProcessInfo.processInfo.environment["FQAT_MEASURE"] == "1", "set FQAT_MEASURE=1 to measure")
        var rng = RNG(seed: 1)
        for (architecture, inChannels, side) in [("mnist_cnn", 1, 28), ("resnet20", 3, 32)] {
            let net = try Network.make(architecture: architecture, inChannels: inChannels, classes: 10, seed: 1)
            let x = rng.normalTensor([64, inChannels, side, side])
            let labels = (0..<64).map { _ in rng.int(below: 10) }
            let request = LandscapeRequest.plane(x: try GridAxis(-1, 1, count: 11), y: try GridAxis(-1, 1, count: 11),
                                                 evaluation: "measure")
            // Overhead only: the closure does nothing, so the time is setting θ(α, β) and bookkeeping.
            let overhead = try Landscape.compute(model: net, request: request) { (0, 0) }
            let evaluated = try Landscape.compute(model: net, request: request) {
                let r = softmaxCrossEntropy(logits: net.forward(x, .eval), labels: labels)
                return (Double(r.loss), Double(r.correct) / 0.64)
            }
            print(String(format: "%@ (%d parameters, %d moved): overhead %.1f µs/point (%.0f points/s); with 64-image eval %.2f points/s, overhead share %.2f%%",
                         architecture, net.parameterCount, overhead.surface.movingElements,
                         overhead.seconds / 121 * 1e6, overhead.pointsPerSecond, evaluated.pointsPerSecond,
                         100 * evaluated.overheadSeconds / evaluated.seconds))
        }
        // Content hash throughput over a ResNet-50-sized state (25.6 M floats).
        var big = Tensor(shape: [25_600_000], repeating: 0.5)
        for i in stride(from: 0, to: big.count, by: 4099) { big.data[i] = Float(i) }
        let t0 = ProcessInfo.processInfo.systemUptime
        var h = ContentHasher()
        h.combine(big)
        let digest = h.finalize()
        let seconds = ProcessInfo.processInfo.systemUptime - t0
        print(String(format: "content hash: %.0f MB in %.3f s (%.2f GB/s), digest %016llx", 102.4, seconds, 0.1024 / seconds, digest))
    }
}
