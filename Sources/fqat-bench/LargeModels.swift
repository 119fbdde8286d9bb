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
        let quantized = workload.hasSuffix("-quant")
        let architecture = quantized ? String(workload.dropLast("-quant".count)) : workload
        let batches = batches ?? [quick ? 2 : 32], repeats = quick ? 1 : 3
        if quantized {
            // A fresh network for each kind: each is quantized and calibrated from full precision.
            for kind in [TrainingWorkload.lsq, .fqat] {
                guard let model = LargeModel(architecture, batches: batches) else { return }
                runQuantized(model, kind, repeats: repeats)
            }
        } else if let model = LargeModel(architecture, batches: batches) {
            runFullPrecision(model, repeats: repeats)
        }
    }

    /// A full-precision training step (forward in train mode, cross-entropy, backward, Adam) and an
    /// eval forward.
    private func runFullPrecision(_ model: LargeModel, repeats: Int) {
        let network = model.network
        let optimizer = Adam(weights: network.parameters, scales: [], learningRate: 1e-3, weightDecay: 0, scaleLearningRate: 0)
        forEachBatch(model) { threads, batch, images, labels in
            let train = medianTimes(repeats: repeats, warmup: 1) {
                let logits = network.forward(images, ForwardContext(training: true, updateRunningStats: true))
                let (_, gradient, _) = softmaxCrossEntropy(logits: logits, labels: labels)
                _ = network.backward(gradient)
                optimizer.step(skipping: [])
            }
            emit(model, "erm", detail: "fp32 adam", batch: batch, threads: threads, forwardPasses: 3, train)
            network.clearCache()
            let eval = medianTimes(repeats: repeats, warmup: 1) { _ = network.forward(images, .eval) }
            emit(model, "eval", detail: "fp32", batch: batch, threads: threads, forwardPasses: 1, eval)
        }
    }

    /// One quantized training step through FQATStepper; the network is calibrated on a batch of the
    /// first size first.
    private func runQuantized(_ model: LargeModel, _ kind: TrainingWorkload, repeats: Int) {
        let network = model.network
        var calibration = RNG(seed: 3)
        let setup = TrainingSetup(kind, network: network,
                                  calibrationBatch: calibration.uniformTensor([model.batches[0]] + LargeModel.imageShape, 0, 1))
        let timer = PassTimer()
        forEachBatch(model) { threads, batch, images, labels in
            let body = gradientClosure(network, images, labels, timer)
            var failure: Error?
            let step = medianTimes(repeats: repeats, warmup: 1) {
                guard failure == nil else { return }
                do { try setup.stepper.step(body) } catch { failure = error }
            }
            network.clearCache()
            if let failure {
                FileHandle.standardError.write("fqat-bench: \(model.architecture) \(kind.rawValue) step failed at batch \(batch): \(failure)\n".data(using: .utf8)!)
                return
            }
            emit(model, kind.rawValue, detail: kind == .fqat ? "lsq-4bit sagm" : "lsq-4bit", batch: batch, threads: threads,
                 forwardPasses: 3 * Double(kind.passes), step)
        }
    }

    /// Calls `body` at every thread count and batch size with that batch's synthetic images and labels.
    private func forEachBatch(_ model: LargeModel, _ body: (_ threads: Int, _ batch: Int, _ images: Tensor, _ labels: [Int]) -> Void) {
        for threads in plan.threadCounts {
            setThreads(threads)
            for batch in model.batches {
                var rng = RNG(seed: 7)
                let images = rng.uniformTensor([batch] + LargeModel.imageShape, 0, 1)
                let labels = (0..<batch).map { _ in rng.int(below: LargeModel.classes) }
                body(threads, batch, images, labels)
            }
        }
    }

    /// One row `<model>-<kind>`; `forwardPasses` counts a backward as two forwards (for GFLOP/s).
    private func emit(_ model: LargeModel, _ kind: String, detail: String, batch: Int, threads: Int,
                      forwardPasses: Double, _ times: (wall: Double, cpu: Double)) {
        emit(Measurement(workload: "\(model.architecture)-\(kind)", detail: "\(model.architecture) 3x224x224 \(detail)",
                         batch: batch, threads: threads, imagesPerSecond: Double(batch) / times.wall,
                         gflops: forwardPasses * model.flopsPerImage * Double(batch) / times.wall / 1e9, seconds: times.wall,
                         extra: ["cpu_ms_per_image": times.cpu / Double(batch) * 1e3, "cpu_per_wall": times.cpu / times.wall]))
    }
}

/// A torchvision ResNet at the paper's input size (7 classes, as PACS) and the batches to time it at.
struct LargeModel {
    static let classes = 7
    static let imageShape = [3, 224, 224]
    let architecture: String
    let network: Network
    let flopsPerImage: Double
    let batches: [Int]

    init?(_ architecture: String, batches: [Int]) {
        do {
            network = try Network.make(architecture: architecture, inChannels: 3, classes: LargeModel.classes, width: 1, seed: 0)
        } catch {
            FileHandle.standardError.write("fqat-bench: cannot build \(architecture): \(error)\n".data(using: .utf8)!)
            return nil
        }
        self.architecture = architecture
        self.batches = batches
        flopsPerImage = largeModelForwardFlops(network, imageShape: LargeModel.imageShape)
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
