// The model-level workloads and what they share: thread control, the ResNet-20 under test, a
// synthetic batch, repeat counts and FLOP accounting. Each workload lives in its own file:
//   ConvShapes.swift     conv    forward+backward of every distinct ResNet-20 convolution shape
//   TrainingSteps.swift  erm, lsq, fqat (with the FQAT bookkeeping share), eval
//   Operators.swift      ops     the non-convolution layers of a step, one kind at a time
//   Memory.swift         memory  peak RSS vs the activations kept for backward (batch 128 ERM)
//   DataLoading.swift    data    batch preparation: style-fmnist and 224×224 PNG/JPEG folders
//   LandscapeBench.swift landscape points/s of a 21×21 plane on 1000 images
// See docs/benchmarks.md for what each number means.
import Foundation
import NN
import Quant
import TensorCore

/// Sets the thread count of both OpenBLAS (inside each gemm) and the engine's own parallel loops.
func setThreads(_ n: Int) {
    BLAS.setThreads(n)
    Parallel.threads = n
}

/// Repeat counts and sizes: the full run, or a smoke run with `--quick`.
struct BenchPlan {
    let quick: Bool
    let threadCounts: [Int]
    /// Timed repeats; the median is reported.
    var repeats: Int { quick ? 1 : 3 }
    /// Untimed runs before the timed ones (allocator, OpenBLAS thread pool, optimizer state).
    var warmup: Int { 1 }
    /// `--batch N[,N...]` replaces the training and evaluation batches below.
    var batches: [Int]? = nil
    var trainingBatches: [Int] { batches ?? (quick ? [16] : [32, 64, 128]) }
    var evaluationBatches: [Int] { batches ?? (quick ? [32] : [64, 256]) }
    /// The batch of the per-shape convolution measurements (the issue asks for 64).
    var convolutionBatch: Int { quick ? 8 : 64 }
    /// Batch of the memory measurement (the issue asks for 128).
    var memoryBatch: Int { quick ? 16 : 128 }
    /// Steps per timed repeat: about 256 images per repeat, at least one step.
    func steps(batch: Int) -> Int { quick ? 1 : max(1, 256 / batch) }
}

/// The network every model workload measures: CIFAR ResNet-20 (option-A shortcuts) on 1×28×28
/// inputs with 10 classes, as scripts/bench_pytorch.py builds it.
func makeResNet20(seed: UInt64 = 0) -> Network {
    // Only fails for invalid arguments, which these are not.
    try! Network.make(architecture: "resnet20", inChannels: 1, classes: 10, width: 1, shortcut: .zeroPadding, seed: seed)
}

/// The paper's quantization layout (4-bit LSQ, weights per channel, activations per tensor, stem
/// weights and the classifier in full precision), calibrated with MSE ranges on one batch.
func quantize(_ network: Network, calibrationBatch: Tensor) {
    do {
        try attachQuantizers(to: network, config: QuantizationConfig(method: .lsq, weightBits: 4, activationBits: 4,
                                                                    weightGranularity: .perChannel))
        try calibrateQuantizers(in: network, batches: [calibrationBatch])
    } catch {
        fatalError("fqat-bench: quantizing the network failed: \(error)")
    }
}

/// Uniform [0, 1) images (N, 1, 28, 28) and uniform labels in 0..<10, like torch.rand/randint.
func syntheticBatch(_ n: Int, seed: UInt64 = 7) -> (images: Tensor, labels: [Int]) {
    var rng = RNG(seed: seed)
    let images = rng.uniformTensor([n, 1, 28, 28], 0, 1)
    let labels = (0..<n).map { _ in rng.int(below: 10) }
    return (images, labels)
}

/// One convolution of the network with the input shape it sees (batch dimension excluded).
struct ConvolutionSite {
    var conv: Conv2d
    /// (Cin, H, W)
    var inputShape: [Int]
    /// (Cout, OH, OW)
    var outputShape: [Int]
    /// Multiply-adds × 2 of one forward pass for one image.
    var forwardFlopsPerImage: Double {
        2.0 * Double(outputShape.reduce(1, *)) * Double(conv.inChannels * conv.kernelSize * conv.kernelSize)
    }
}

/// Every Conv2d of the network with its input shape, from the layer description (which propagates
/// shapes through blocks), in forward order.
func convolutionSites(_ network: Network, imageShape: [Int] = [1, 28, 28]) -> [ConvolutionSite] {
    let rows = network.describeLayers(inputShape: imageShape)
    var outputByName: [String: [Int]] = [:]
    for r in rows { if let s = r.outputShape { outputByName[r.name] = s } }
    // In a CIFAR ResNet with option-A shortcuts the convolutions form one chain: each one's input
    // has the spatial size of the previous one's output and its own declared channel count.
    var sites: [ConvolutionSite] = []
    var spatial = Array(imageShape.dropFirst())
    for (name, module) in network.namedModules() {
        guard let conv = module as? Conv2d, let out = outputByName[name] else { continue }
        let input = [conv.inChannels] + spatial
        precondition(conv.outputShape(for: [1] + input).dropFirst().elementsEqual(out),
                     "fqat-bench: convolution \(name) does not chain (input \(input), output \(out))")
        sites.append(ConvolutionSite(conv: conv, inputShape: input, outputShape: out))
        spatial = Array(out.dropFirst())
    }
    return sites
}

/// FLOPs of one forward pass of one image: every convolution plus the classifier. Elementwise
/// layers (BatchNorm, ReLU, add, quantizers) are not counted, as is usual for GFLOP/s figures.
func forwardFlopsPerImage(_ network: Network) -> Double {
    let convs = convolutionSites(network).reduce(0) { $0 + $1.forwardFlopsPerImage }
    return convs + 2.0 * Double(network.classifier.inFeatures * network.classifier.outFeatures)
}

extension Bench {
    var plan: BenchPlan {
        var p = BenchPlan(quick: quick, threadCounts: threadCounts)
        p.batches = batches
        return p
    }

    /// Model-level workloads (conv shapes, ERM/LSQ/FQAT training steps, eval, data, landscape).
    func runModelWorkloads(sgemmPeak: [Int: Double]) {
        var peaks = sgemmPeak
        if wants("conv") {
            // The fraction-of-peak column needs sgemm at the same thread counts; measure it quietly
            // when the sgemm workload was filtered out.
            for t in plan.threadCounts where peaks[t] == nil { peaks[t] = measureSgemm(threads: t).wall }
            runConvolutionShapes(sgemmPeak: peaks)
        }
        if wants("erm") { runTraining(.erm) }
        if wants("lsq") { runTraining(.lsq) }
        if wants("fqat") { runTraining(.fqat); runFQATBookkeeping() }
        if wants("eval") { runEvaluation() }
        if wants("ops") { runOperatorBreakdown() }
        if wants("data") { runDataLoading() }
        if wants("landscape") { runLandscape() }
        if wants("landscape-overhead") { runLandscapeOverhead() }
        if wants("memory") { runMemory() }
        for model in Bench.largeModels where wants(model) { runLargeModel(model) }
        setThreads(ProcessInfo.processInfo.activeProcessorCount)
    }

    /// GFLOP/s of an n×n×n OpenBLAS sgemm at `threads` (median), the reference for fractions of peak,
    /// by wall time, and by CPU time per thread: on a shared machine the second does not count the
    /// time other processes held the core (exact for 1 thread). Always OpenBLAS's `gemm`, whatever the
    /// backend (`Tensor.matmul` would run oneDNN's sgemm on the oneDNN backend).
    func measureSgemm(threads: Int) -> (wall: Double, cpu: Double) {
        setThreads(threads)
        let n = quick ? 512 : 1024
        var rng = RNG(seed: 1)
        let a = rng.normalTensor([n, n]), b = rng.normalTensor([n, n])
        var c = Tensor(shape: [n, n])
        let t = medianTimes(repeats: quick ? 3 : 5) {
            a.data.withUnsafeBufferPointer { pa in
                b.data.withUnsafeBufferPointer { pb in
                    c.data.withUnsafeMutableBufferPointer { pc in
                        gemm(m: n, n: n, k: n, a: pa.baseAddress!, lda: n, b: pb.baseAddress!, ldb: n, c: pc.baseAddress!, ldc: n)
                    }
                }
            }
        }
        let flops = 2.0 * Double(n * n * n)
        return (flops / t.wall / 1e9, flops / (t.cpu / Double(threads)) / 1e9)
    }
}
