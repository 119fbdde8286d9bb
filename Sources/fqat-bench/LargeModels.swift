// `resnet18`, `resnet50`: the paper's model sizes (torchvision layout, 3×224×224, 7 classes as PACS)
// at batch 32 by default — one full-precision training step (forward, backward, Adam) and one
// evaluation forward — so that their cost per image can be read beside PyTorch's
// (scripts/bench_pytorch.py --models resnet18,resnet50). Not part of the default run (a ResNet-50
// step at 224 px takes seconds per image on one thread): ask with `--only resnet18,resnet50`.
// Rows are named `<model>-erm` and `<model>-eval`, as the PyTorch script prints them.
// `resnet18-quant`, `resnet50-quant` (also opt-in): the same models quantized as the shell does
// (4-bit LSQ, per-channel weights, MSE-calibrated on the batch; stem weights and the classifier in
// full precision), one `lsq` step (one pass) and one `fqat` step (SAGM's two passes, the adaptive
// freeze policy, the trace on) through FQATStepper, as the ResNet-20 `lsq`/`fqat` workloads; rows
// `<model>-lsq` and `<model>-fqat`, as `scripts/bench_pytorch.py --models … --quantized` prints them.
import Foundation
import NN
import Optim
import TensorCore

extension Bench {
    /// Large-model workloads, opt-in only (not run when `--only` is absent).
    static let largeModels = ["resnet18", "resnet50", "resnet18-quant", "resnet50-quant"]

    func runLargeModel(_ workload: String) {
        if workload.hasSuffix("-quant") {
            let architecture = String(workload.dropLast("-quant".count))
            for kind in [TrainingWorkload.lsq, .fqat] { runLargeQuantized(architecture, kind) }
        } else {
            runLargeFullPrecision(workload)
        }
    }

    private func runLargeFullPrecision(_ architecture: String) {
        let classes = 7, side = 224
        let network: Network
        do {
            network = try Network.make(architecture: architecture, inChannels: 3, classes: classes, width: 1, seed: 0)
        } catch {
            FileHandle.standardError.write("fqat-bench: cannot build \(architecture): \(error)\n".data(using: .utf8)!)
            return
        }
        let flopsPerImage = largeModelForwardFlops(network, imageShape: [3, side, side])
        let weights = network.parameters
        let optimizer = Adam(weights: weights, scales: [], learningRate: 1e-3, weightDecay: 0, scaleLearningRate: 0)
        let batches = batches ?? [quick ? 2 : 32]
        let repeats = quick ? 1 : 3
        for threads in plan.threadCounts {
            setThreads(threads)
            for batch in batches {
                var rng = RNG(seed: 7)
                let images = rng.uniformTensor([batch, 3, side, side], 0, 1)
                let labels = (0..<batch).map { _ in rng.int(below: classes) }
                // Training step: forward in train mode, cross-entropy, backward, Adam.
                func step() {
                    let logits = network.forward(images, ForwardContext(training: true, updateRunningStats: true))
                    let (_, gradient, _) = softmaxCrossEntropy(logits: logits, labels: labels)
                    _ = network.backward(gradient)
                    optimizer.step(skipping: [])
                }
                let train = medianTimes(repeats: repeats, warmup: 1, step)
                emit(Measurement(workload: "\(architecture)-erm", detail: "\(architecture) 3x\(side)x\(side) fp32 adam",
                                 batch: batch, threads: threads, imagesPerSecond: Double(batch) / train.wall,
                                 gflops: 3 * flopsPerImage * Double(batch) / train.wall / 1e9, seconds: train.wall,
                                 extra: ["cpu_ms_per_image": train.cpu / Double(batch) * 1e3,
                                         "cpu_per_wall": train.cpu / train.wall]))
                network.clearCache()
                let eval = medianTimes(repeats: repeats, warmup: 1) { _ = network.forward(images, .eval) }
                emit(Measurement(workload: "\(architecture)-eval", detail: "\(architecture) 3x\(side)x\(side) fp32",
                                 batch: batch, threads: threads, imagesPerSecond: Double(batch) / eval.wall,
                                 gflops: flopsPerImage * Double(batch) / eval.wall / 1e9, seconds: eval.wall,
                                 extra: ["cpu_ms_per_image": eval.cpu / Double(batch) * 1e3,
                                         "cpu_per_wall": eval.cpu / eval.wall]))
            }
        }
    }
}

extension Bench {
    /// One quantized training step of a 224-px model: the network is built and calibrated on its
    /// first batch, then each thread count and batch is timed like `runLargeFullPrecision`'s step.
    private func runLargeQuantized(_ architecture: String, _ kind: TrainingWorkload) {
        let classes = 7, side = 224
        let network: Network
        do {
            network = try Network.make(architecture: architecture, inChannels: 3, classes: classes, width: 1, seed: 0)
        } catch {
            FileHandle.standardError.write("fqat-bench: cannot build \(architecture): \(error)\n".data(using: .utf8)!)
            return
        }
        let flopsPerImage = largeModelForwardFlops(network, imageShape: [3, side, side])
        let batches = batches ?? [quick ? 2 : 32]
        let repeats = quick ? 1 : 3
        var calibration = RNG(seed: 3)
        let setup = TrainingSetup(kind, network: network,
                                  calibrationBatch: calibration.uniformTensor([batches[0], 3, side, side], 0, 1))
        let timer = PassTimer()
        for threads in plan.threadCounts {
            setThreads(threads)
            for batch in batches {
                var rng = RNG(seed: 7)
                let images = rng.uniformTensor([batch, 3, side, side], 0, 1)
                let labels = (0..<batch).map { _ in rng.int(below: classes) }
                let body = gradientClosure(network, images, labels, timer)
                var failure: Error?
                let step = medianTimes(repeats: repeats, warmup: 1) {
                    guard failure == nil else { return }
                    do { try setup.stepper.step(body) } catch { failure = error }
                }
                network.clearCache()
                if let failure {
                    FileHandle.standardError.write("fqat-bench: \(architecture) \(kind.rawValue) step failed at batch \(batch): \(failure)\n".data(using: .utf8)!)
                    continue
                }
                emit(Measurement(workload: "\(architecture)-\(kind.rawValue)",
                                 detail: "\(architecture) 3x\(side)x\(side) lsq-4bit\(kind == .fqat ? " sagm" : "")",
                                 batch: batch, threads: threads, imagesPerSecond: Double(batch) / step.wall,
                                 gflops: 3 * flopsPerImage * Double(kind.passes) * Double(batch) / step.wall / 1e9,
                                 seconds: step.wall,
                                 extra: ["cpu_ms_per_image": step.cpu / Double(batch) * 1e3,
                                         "cpu_per_wall": step.cpu / step.wall]))
            }
        }
    }
}

/// Forward FLOPs of one image through every convolution and the classifier (2 × multiply-adds), from
/// each convolution's output shape; unlike `forwardFlopsPerImage` this needs no chain of convolutions
/// (torchvision ResNets have downsample branches).
func largeModelForwardFlops(_ network: Network, imageShape: [Int]) -> Double {
    var flops = 0.0
    let rows = network.describeLayers(inputShape: imageShape)
    var outputByName: [String: [Int]] = [:]
    for r in rows { if let s = r.outputShape { outputByName[r.name] = s } }
    for (name, module) in network.namedModules() {
        guard let conv = module as? Conv2d, let out = outputByName[name] else { continue }
        flops += 2.0 * Double(out.reduce(1, *)) * Double(conv.inChannels * conv.kernelSize * conv.kernelSize)
    }
    return flops + 2.0 * Double(network.classifier.inFeatures * network.classifier.outFeatures)
}
