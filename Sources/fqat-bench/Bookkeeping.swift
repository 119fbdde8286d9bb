// Two measurements that were print-only tests before:
//   bookkeeping          FQAT's per-step bookkeeping on ResNet-50's quantizer layout (52 per-channel
//                        weight scales, 53 per-tensor activation scales): the freeze controller's
//                        decision plus the gradient trace's record, the trace's JSON size after the
//                        steps, and one Adam step over ResNet-50's 25.6M parameters. No model runs.
//   landscape-overhead   Landscape.compute's own cost per point (setting θ + αd₁ + βd₂ and restoring)
//                        on an 11×11 plane for mnist_cnn and resnet20, with an empty evaluation and with
//                        a 64-image one; and the content hash's throughput over 25.6M floats.
import Foundation
import Landscape
import NN
import Optim
import TensorCore

extension Bench {
    /// ResNet-50's quantizer layout (docs/quantization.md §3): 52 per-channel weight scales (one
    /// element per output channel) and 53 per-tensor activation scales, named as `quantize` names them.
    static func resnet50ScaleSizes() -> [(String, Int)] {
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

    func runBookkeeping() {
        let sizes = Bench.resnet50ScaleSizes()
        let elements = sizes.map(\.1).reduce(0, +)
        var rng = RNG(seed: 1)
        let steps = quick ? 200 : 2000
        let grads: [[ScaleGradients]] = (0..<8).map { _ in
            sizes.map { ScaleGradients(name: $0.0, qat: rng.normalTensor([$0.1]), flat: rng.normalTensor([$0.1])) }
        }
        do {
            var controller = try FreezeController(settings: FreezeSettings(policy: .adaptive, windowLength: 100, threshold: 0.3),
                                                  names: sizes.map(\.0))
            var trace = GradientTrace(factorNames: sizes.map(\.0))
            let result = GradientStepResult(loss: 1, perturbedLoss: 1, gradientNorm: 1, perturbationNorm: 0.05, scales: grads[0])
            let t0 = now()
            for t in 0..<steps {
                var r = result
                r.scales = grads[t % 8]
                let d = controller.decide(r.scales)
                trace.record(result: r, decision: d)
            }
            let perStep = (now() - t0) / Double(steps)
            let encoded = try JSONEncoder().encode(trace)
            emit(Measurement(workload: "bookkeeping", detail: "resnet50 layout: controller+trace", batch: 0, threads: 1,
                             seconds: perStep,
                             extra: ["factors": Double(sizes.count), "scale_elements": Double(elements), "steps": Double(steps),
                                     "trace_kib": Double(encoded.count) / 1024]))
        } catch {
            FileHandle.standardError.write("fqat-bench: bookkeeping failed: \(error)\n".data(using: .utf8)!)
        }
        // Adam over ResNet-50's 25.6M parameters (2.5M with --quick).
        let count = quick ? 2_555_703 : 25_557_032
        let big = Parameter(name: "w", kind: .weight, value: rng.normalTensor([count]))
        big.grad = rng.normalTensor([count])
        let adam = Adam(parameters: [big], learningRate: 1e-4, weightDecay: 1e-4)
        for threads in threadCounts {
            setThreads(threads)
            let t = medianTime(repeats: quick ? 3 : 5) { adam.step() }
            emit(Measurement(workload: "bookkeeping", detail: "adam step, \(count) parameters", batch: 0, threads: threads,
                             seconds: t, extra: ["parameters": Double(count)]))
        }
    }

    func runLandscapeOverhead() {
        var rng = RNG(seed: 1)
        for (architecture, inChannels, side) in [("mnist_cnn", 1, 28), ("resnet20", 3, 32)] {
            let net: Network
            do { net = try Network.make(architecture: architecture, inChannels: inChannels, classes: 10, seed: 1) } catch {
                FileHandle.standardError.write("fqat-bench: landscape-overhead: \(error)\n".data(using: .utf8)!)
                continue
            }
            let x = rng.normalTensor([64, inChannels, side, side])
            let labels = (0..<64).map { _ in rng.int(below: 10) }
            for threads in threadCounts {
                setThreads(threads)
                do {
                    let request = LandscapeRequest.plane(x: try GridAxis(-1, 1, count: 11), y: try GridAxis(-1, 1, count: 11),
                                                         evaluation: "fqat-bench overhead")
                    // Overhead only: the closure does nothing, so the time is setting θ(α, β) and bookkeeping.
                    let overhead = try Landscape.compute(model: net, request: request) { (0, 0) }
                    let evaluated = try Landscape.compute(model: net, request: request) {
                        let r = softmaxCrossEntropy(logits: net.forward(x, .eval), labels: labels)
                        return (Double(r.loss), Double(r.correct) / 0.64)
                    }
                    emit(Measurement(workload: "landscape-overhead", detail: "\(architecture) 11x11 plane", batch: 64, threads: threads,
                                     seconds: overhead.seconds / Double(max(1, overhead.evaluatedPoints)),
                                     extra: ["parameters": Double(net.parameterCount), "moved": Double(overhead.surface.movingElements),
                                             "overhead_points_per_second": overhead.pointsPerSecond,
                                             "points_per_second": evaluated.pointsPerSecond,
                                             "overhead_share": evaluated.overheadSeconds / max(evaluated.seconds, 1e-12)]))
                } catch {
                    FileHandle.standardError.write("fqat-bench: landscape-overhead failed: \(error)\n".data(using: .utf8)!)
                }
            }
        }
        // Content hash throughput over a ResNet-50-sized state (25.6M floats; 2.56M with --quick).
        let count = quick ? 2_560_000 : 25_600_000
        var big = Tensor(shape: [count], repeating: 0.5)
        for i in stride(from: 0, to: big.count, by: 4099) { big.data[i] = Float(i) }
        var digest: UInt64 = 0
        let t = medianTime(repeats: quick ? 3 : 5) {
            var h = ContentHasher()
            h.combine(big)
            digest = h.finalize()
        }
        emit(Measurement(workload: "landscape-overhead", detail: "content hash, \(count) floats", batch: 0, threads: 1,
                         seconds: t, extra: ["gb_per_second": Double(4 * count) / t / 1e9, "digest_low32": Double(digest & 0xffff_ffff)]))
    }
}
