// Opt-in timings (no assertions on time): FQAT_MEASURE=1 swift test --filter OptimTests.MeasurementTests
import Foundation
import NN
import TensorCore
import XCTest
@testable import Optim

final class MeasurementTests: XCTestCase {
    func seconds(_ body: () throws -> Void) rethrows -> Double {
        let t0 = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    }

    /// ResNet-50's quantizer layout (docs/quantization.md §3): 52 per-channel weight scales (one element
    /// per output channel) and 53 per-tensor activation scales.
    func resnet50ScaleSizes() -> [(String, Int)] {
        var out: [(String, Int)] = [("conv1.a.s", 1)]
        for (layer, (blocks, width)) in [(3, 64), (4, 128), (6, 256), (3, 512)].enumerated() {
            for b in 0..<blocks {
                for (conv, channels) in [("conv1", width), ("conv2", width), ("conv3", 4 * width)] {
                    out.append(("layer\(layer + 1).\(b).\(conv).w.s", channels))
                    out.append(("layer\(layer + 1).\(b).\(conv).a.s", 1))
                }
                if b == 0 {
                    out.append(("layer\(layer + 1).0.downsample.0.w.s", 4 * width))
                    out.append(("layer\(layer + 1).0.downsample.0.a.s", 1))
                }
            }
        }
        return out
    }

    func testBookkeepingCost() throws {
        try XCTSkipUnless(ProcessInfo.processInfo.environment["FQAT_MEASURE"] == "1", "set FQAT_MEASURE=1 to measure")
        let sizes = resnet50ScaleSizes()
        let elements = sizes.map(\.1).reduce(0, +)
        var rng = RNG(seed: 1)
        let steps = 2000
        let grads: [[ScaleGradients]] = (0..<8).map { _ in
            sizes.map { ScaleGradients(name: $0.0, qat: rng.normalTensor([$0.1]), flat: rng.normalTensor([$0.1])) }
        }
        var controller = try FreezeController(settings: FreezeSettings(policy: .adaptive, windowLength: 100, threshold: 0.3),
                                              names: sizes.map(\.0))
        var trace = GradientTrace(factorNames: sizes.map(\.0))
        let result = GradientStepResult(loss: 1, perturbedLoss: 1, gradientNorm: 1, perturbationNorm: 0.05, scales: grads[0])
        let time = seconds {
            for t in 0..<steps {
                var r = result
                r.scales = grads[t % 8]
                let d = controller.decide(r.scales)
                trace.record(result: r, decision: d)
            }
        }
        print("FQAT bookkeeping, ResNet-50 layout (\(sizes.count) factors, \(elements) scale elements): "
              + String(format: "%.1f µs per step (controller + trace) over %d steps", time / Double(steps) * 1e6, steps))
        let encoded = try JSONEncoder().encode(trace)
        print("trace after \(steps) steps: \(encoded.count / 1024) KiB of JSON")

        // Adam over ResNet-50's 25.6M parameters.
        let big = Parameter(name: "w", kind: .weight, value: rng.normalTensor([25_557_032]))
        big.grad = rng.normalTensor([25_557_032])
        let adam = Adam(parameters: [big], learningRate: 1e-4, weightDecay: 1e-4)
        adam.step()
        let adamTime = seconds { for _ in 0..<5 { adam.step() } } / 5
        print(String(format: "Adam step over 25.6M parameters: %.1f ms (%d threads)", adamTime * 1e3, Parallel.threads))
    }
}
