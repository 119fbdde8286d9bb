// `conv`: forward and backward time of each distinct ResNet-20 convolution shape on 1×28×28
// inputs, through the engine's fast path (TensorCore.convolution2d / convolution2dBackward, which
// Conv2d calls), and its GFLOP/s as a fraction of the sgemm peak at the same thread count.
//
// FLOPs: forward 2·N·Cout·OH·OW·Cin·k²; backward twice that (dW and dX; the engine computes dX
// for the stem too). The convolution is im2col + one GEMM per pass, so the gap to the sgemm peak is
// the im2col/col2im and layout copies plus the GEMM's efficiency on these thin shapes (K = Cin·9
// is 9 for the stem and at most 576).
import Foundation
import TensorCore

/// A convolution shape: input (Cin, H, W), Cout, kernel, stride, padding.
struct ConvolutionShape: Hashable {
    var inChannels: Int, height: Int, width: Int, outChannels: Int, kernel: Int, stride: Int, padding: Int

    var label: String {
        let oh = (height + 2 * padding - kernel) / stride + 1, ow = (width + 2 * padding - kernel) / stride + 1
        return "\(inChannels)x\(height)x\(width)->\(outChannels)x\(oh)x\(ow) k\(kernel)s\(stride)"
    }
}

extension Bench {
    func runConvolutionShapes(sgemmPeak: [Int: Double]) {
        let network = makeResNet20()
        // Distinct shapes in forward order, with how many layers share each.
        var order: [ConvolutionShape] = []
        var count: [ConvolutionShape: Int] = [:]
        for site in convolutionSites(network) {
            let c = site.conv
            let shape = ConvolutionShape(inChannels: c.inChannels, height: site.inputShape[1], width: site.inputShape[2],
                                         outChannels: c.outChannels, kernel: c.kernelSize, stride: c.stride, padding: c.padding)
            if count[shape] == nil { order.append(shape) }
            count[shape, default: 0] += 1
        }
        let batch = plan.convolutionBatch
        let repeats = quick ? 1 : 5
        // Calls per timed sample, so one sample lasts tens of milliseconds.
        let calls = quick ? 1 : 3
        for threads in plan.threadCounts {
            setThreads(threads)
            var totalSeconds = 0.0, totalFlops = 0.0, totalCPU = 0.0
            for shape in order {
                var rng = RNG(seed: 11)
                let x = rng.normalTensor([batch, shape.inChannels, shape.height, shape.width])
                let w = rng.normalTensor([shape.outChannels, shape.inChannels, shape.kernel, shape.kernel], std: 0.1)
                let options = Convolution2dOptions(stride: shape.stride, padding: shape.padding)
                let y = convolution2d(x, weight: w, options: options)
                let dy = rng.normalTensor(y.shape)
                let forwardTimes = medianTimes(repeats: repeats, warmup: 1) {
                    for _ in 0..<calls { _ = convolution2d(x, weight: w, options: options) }
                }
                let backwardTimes = medianTimes(repeats: repeats, warmup: 1) {
                    for _ in 0..<calls { _ = convolution2dBackward(x, weight: w, outputGradient: dy, options: options) }
                }
                let forward = forwardTimes.wall / Double(calls), backward = backwardTimes.wall / Double(calls)
                let cpu = (forwardTimes.cpu + backwardTimes.cpu) / Double(calls)
                let forwardFlops = 2.0 * Double(y.count) * Double(shape.inChannels * shape.kernel * shape.kernel)
                let flops = 3 * forwardFlops
                let gflops = flops / (forward + backward) / 1e9
                let layers = count[shape]!
                totalSeconds += Double(layers) * (forward + backward)
                totalCPU += Double(layers) * cpu
                totalFlops += Double(layers) * flops
                var extra: [String: Double] = [
                    "forward_ms": forward * 1e3, "backward_ms": backward * 1e3,
                    "forward_gflops": forwardFlops / forward / 1e9, "backward_gflops": 2 * forwardFlops / backward / 1e9,
                    "layers": Double(layers), "cpu_ms": cpu * 1e3,
                ]
                if let peak = sgemmPeak[threads] { extra["sgemm_fraction"] = gflops / peak }
                emit(Measurement(workload: "conv", detail: shape.label, batch: batch, threads: threads,
                                 gflops: gflops, seconds: forward + backward, extra: extra))
            }
            convolutionCPUSeconds[threads] = totalCPU
            var extra: [String: Double] = ["layers": Double(order.reduce(0) { $0 + count[$1]! }), "cpu_ms": totalCPU * 1e3]
            if let peak = sgemmPeak[threads] { extra["sgemm_fraction"] = totalFlops / totalSeconds / 1e9 / peak }
            emit(Measurement(workload: "conv", detail: "all ResNet-20 convs (fwd+bwd)", batch: batch, threads: threads,
                             gflops: totalFlops / totalSeconds / 1e9, seconds: totalSeconds, extra: extra))
        }
    }
}
