import XCTest
import ReferenceKernels
import TensorCore
@testable import NN

/// A test double for the Quant module's quantizers: y = s·x with one learnable scalar s (kind .scale).
/// Enough to check that Conv2d/Linear route values and gradients through their quantizer slots.
final class ScalingQuantizer: TensorQuantizer {
    let scale: Parameter
    private(set) var input: Tensor?
    init(name: String, value: Float) { scale = Parameter(name: name, kind: .scale, value: Tensor(shape: [1], data: [value])) }
    func forward(_ x: Tensor, _ ctx: ForwardContext) -> Tensor {
        if ctx.needsBackward { input = x }
        return x.scaled(by: scale.value.data[0])
    }
    func backward(_ dy: Tensor) -> Tensor {
        let x = input!
        input = nil
        scale.grad.data[0] += Float(dy.dot(x))
        return dy.scaled(by: scale.value.data[0])
    }
    var parameters: [Parameter] { [scale] }
    func clearCache() { input = nil }
}

final class LayerGradientTests: XCTestCase {
    /// Conv2d over kernel sizes 1, 3, 7, strides 1–3, paddings 0–3, with and without bias.
    /// Linear in x and W, so the central difference is exact up to float rounding: tolerance 2e-3.
    func testConv2dGradients() throws {
        var rng = RNG(seed: 1)
        let configs: [(cin: Int, cout: Int, k: Int, s: Int, p: Int, bias: Bool, h: Int, w: Int, n: Int)] = [
            (2, 3, 3, 1, 1, true, 5, 5, 2),
            (3, 2, 3, 2, 1, false, 7, 6, 2),
            (2, 4, 1, 1, 0, true, 4, 4, 3),
            (4, 2, 1, 2, 0, false, 5, 5, 2),
            (1, 2, 7, 2, 3, false, 9, 9, 1),
            (2, 2, 3, 3, 2, true, 6, 7, 2),
            (3, 3, 3, 1, 0, true, 5, 5, 1),
        ]
        try forEachBackend { backend in
            for (i, c) in configs.enumerated() {
                let conv = Conv2d(name: "conv\(i)", inChannels: c.cin, outChannels: c.cout, kernel: c.k, stride: c.s,
                                  padding: c.p, bias: c.bias, initialization: .pytorchDefault, rng: &rng)
                let x = rng.normalTensor([c.n, c.cin, c.h, c.w])
                GradientCheck().assertGradients(conv, input: x, "Conv2d \(c) on \(backend.rawValue)")
            }
        }
    }

    /// Gradients flow through both quantizer slots: W.grad = Qw.backward(dW'), dx = Qa.backward(dx'),
    /// and the quantizers' own parameters receive their gradients.
    func testConv2dAndLinearRouteThroughQuantizers() throws {
        var rng = RNG(seed: 2)
        let conv = Conv2d(name: "c", inChannels: 2, outChannels: 3, kernel: 3, stride: 1, padding: 1, bias: true, rng: &rng)
        conv.weightQuantizer = ScalingQuantizer(name: "c.weight_scale", value: 0.7)
        conv.inputQuantizer = ScalingQuantizer(name: "c.input_scale", value: 1.3)
        XCTAssertEqual(conv.parameters.map(\.name), ["c.weight", "c.bias", "c.weight_scale", "c.input_scale"])
        let x = rng.normalTensor([2, 2, 4, 4])
        try forEachBackend { backend in
            GradientCheck().assertGradients(conv, input: x, "quantized Conv2d on \(backend.rawValue)")
        }

        let linear = Linear(name: "fc", inFeatures: 5, outFeatures: 3, rng: &rng)
        linear.weightQuantizer = ScalingQuantizer(name: "fc.weight_scale", value: 0.8)
        linear.inputQuantizer = ScalingQuantizer(name: "fc.input_scale", value: 1.1)
        GradientCheck().assertGradients(linear, input: rng.normalTensor([4, 5]), "quantized Linear")
    }

    /// Through the `Module` protocol (as Network and the optimizers see them), Conv2d and Linear report
    /// their own and their quantizers' parameters and `clearCache` drops the kept operands and the
    /// quantizers' caches: the QuantizerSlots defaults, not Module's children-only ones, are the witnesses.
    func testSlottedLayersAnswerModuleRequirementsWithTheirSlots() {
        var rng = RNG(seed: 6)
        let conv = Conv2d(name: "c", inChannels: 1, outChannels: 2, kernel: 3, padding: 1, rng: &rng)
        let linear = Linear(name: "fc", inFeatures: 4, outFeatures: 2, rng: &rng)
        let layers: [(name: String, module: Module, slots: any QuantizerSlots, x: Tensor)] = [
            ("c", conv, conv, rng.normalTensor([2, 1, 3, 3])), ("fc", linear, linear, rng.normalTensor([2, 4]))]
        for (name, module, slots, x) in layers {
            let quantizer = ScalingQuantizer(name: name + ".input_scale", value: 1.5)
            if let c = module as? Conv2d { c.inputQuantizer = quantizer } else if let l = module as? Linear { l.inputQuantizer = quantizer }
            XCTAssertEqual(module.parameters.last?.name, name + ".input_scale", name)
            _ = module.forward(x, ForwardContext(training: true))
            XCTAssertNotNil(slots.operandCache.operands, "\(name) keeps its operands for backward")
            XCTAssertNotNil(quantizer.input)
            module.clearCache()
            XCTAssertNil(slots.operandCache.operands, "\(name): clearCache drops them")
            XCTAssertNil(quantizer.input, "\(name): clearCache clears its quantizers")
        }
    }

    final class ConstantOverride: ConvInferenceOverride {
        var calls = 0
        func forward(_ x: Tensor, conv: Conv2d) -> Tensor {
            calls += 1
            return Tensor(shape: [x.shape[0], conv.outChannels, 1, 1], repeating: 42)
        }
    }

    func testInferenceOverrideUsedOnlyWithoutBackward() {
        var rng = RNG(seed: 3)
        let conv = Conv2d(name: "c", inChannels: 1, outChannels: 2, kernel: 3, padding: 1, rng: &rng)
        let override = ConstantOverride()
        conv.inferenceOverride = override
        let x = rng.normalTensor([2, 1, 4, 4])
        let y = conv.forward(x, .eval)
        XCTAssertEqual(y.shape, [2, 2, 1, 1])
        XCTAssertEqual(y.data, [42, 42, 42, 42])
        let yt = conv.forward(x, ForwardContext(training: true))
        XCTAssertEqual(yt.shape, [2, 2, 4, 4])
        XCTAssertEqual(override.calls, 1)
        let d = yt.maxRelativeDifference(convolution2dReference(x, weight: conv.weight.value, options: conv.options))
        XCTAssertLessThan(d, 1e-5, "normal compute when backward is needed: max rel diff \(d)")
    }

    /// On both backends: the Linear layer's products run on oneDNN's sgemm there.
    func testLinearGradients() throws {
        try forEachBackend { backend in
            var rng = RNG(seed: 4)
            for bias in [true, false] {
                let l = Linear(name: "fc", inFeatures: 7, outFeatures: 4, bias: bias, rng: &rng)
                GradientCheck().assertGradients(l, input: rng.normalTensor([3, 7]), "Linear bias \(bias) on \(backend)")
            }
        }
    }

    /// BatchNorm with batch statistics is nonlinear in x (through μ and σ): step 1e-2, tolerance 5e-3.
    func testBatchNormGradientsAllModes() {
        var rng = RNG(seed: 5)
        for (n, c, h, w) in [(4, 3, 3, 3), (2, 2, 5, 4), (8, 4, 1, 1)] {
            let bn = BatchNorm2d(name: "bn", channels: c)
            bn.weight.value = rng.uniformTensor([c], 0.5, 1.5)
            bn.bias.value = rng.normalTensor([c])
            bn.runningMean.value = rng.normalTensor([c], std: 0.5)
            bn.runningVar.value = rng.uniformTensor([c], 0.5, 2)
            let x = rng.normalTensor([n, c, h, w], mean: 0.3, std: 1.5)
            var check = GradientCheck(step: 5e-3, tolerance: 1e-3)
            check.assertGradients(bn, input: x, "BatchNorm2d training \([n, c, h, w])")
            check.context = { .init(training: false, updateRunningStats: false, needsBackward: true) }
            check.assertGradients(bn, input: x, "BatchNorm2d eval \([n, c, h, w])")
            bn.frozen = true
            check.context = { .init(training: true, updateRunningStats: true) }
            check.assertGradients(bn, input: x, "BatchNorm2d frozen \([n, c, h, w])")
        }
    }

    /// Running statistics follow PyTorch: momentum 0.1, unbiased variance; frozen and
    /// updateRunningStats=false leave them alone; eval uses them.
    func testBatchNormRunningStatistics() {
        let bn = BatchNorm2d(name: "bn1", channels: 1)
        XCTAssertEqual(bn.buffers.map(\.name), ["bn1.running_mean", "bn1.running_var"])
        let x = Tensor(shape: [2, 1, 1, 2], data: [1, 2, 3, 6])  // mean 3, biased var 3.5, unbiased 14/3
        _ = bn.forward(x, ForwardContext(training: true, updateRunningStats: false))
        XCTAssertEqual(bn.runningMean.value.data, [0])
        XCTAssertEqual(bn.runningVar.value.data, [1])
        let y = bn.forward(x, ForwardContext(training: true))
        XCTAssertEqual(bn.runningMean.value.data[0], 0.3, accuracy: 1e-6)
        XCTAssertEqual(bn.runningVar.value.data[0], 0.9 + 0.1 * 14 / 3, accuracy: 1e-6)
        XCTAssertEqual(y.data[0], (1 - 3) / (3.5 + 1e-5).squareRoot(), accuracy: 1e-5)
        bn.frozen = true
        let yf = bn.forward(x, ForwardContext(training: true))
        XCTAssertEqual(bn.runningMean.value.data[0], 0.3, accuracy: 1e-6, "frozen BN must not update running stats")
        let rv = bn.runningVar.value.data[0]
        XCTAssertEqual(yf.data[3], (6 - 0.3) / (rv + 1e-5).squareRoot(), accuracy: 1e-5)
        bn.frozen = false
        let ye = bn.forward(x, .eval)
        XCTAssertEqual(ye, yf)
    }

    func testGroupNormGradients() {
        var rng = RNG(seed: 6)
        for (groups, c, n, h, w) in [(1, 4, 2, 3, 3), (2, 4, 2, 3, 2), (4, 4, 3, 3, 3), (3, 6, 1, 4, 4)] {
            let gn = GroupNorm(name: "gn", groups: groups, channels: c)
            gn.weight.value = rng.uniformTensor([c], 0.5, 1.5)
            gn.bias.value = rng.normalTensor([c])
            let x = rng.normalTensor([n, c, h, w], mean: -0.2, std: 2)
            GradientCheck(step: 5e-3, tolerance: 1e-3).assertGradients(gn, input: x, "GroupNorm(\(groups), \(c)) on \([n, c, h, w])")
        }
    }

    func testGroupNormForwardStatistics() {
        var rng = RNG(seed: 7)
        let gn = GroupNorm(name: "gn", groups: 2, channels: 4)
        let x = rng.normalTensor([2, 4, 3, 3], mean: 5, std: 3)
        let y = gn.forward(x, .eval)
        // Each (sample, group) of 2·9 values has mean 0 and biased variance ≈ 1.
        for r in 0..<4 {
            let g = Tensor(shape: [18], data: Array(y.data[(r * 18)..<((r + 1) * 18)]))
            XCTAssertEqual(g.mean(), 0, accuracy: 1e-5)
            XCTAssertEqual(g.squaredNorm() / 18, 1, accuracy: 1e-3)
        }
    }

    func testActivationAndPoolingGradients() {
        var rng = RNG(seed: 8)
        GradientCheck().assertGradients(ReLU(), input: awayFromZero(rng.normalTensor([2, 3, 4, 4])), "ReLU")
        GradientCheck().assertGradients(GlobalAvgPool(), input: rng.normalTensor([2, 3, 3, 5]), "GlobalAvgPool")
        GradientCheck().assertGradients(Flatten(), input: rng.normalTensor([2, 3, 2, 2]), "Flatten")
        for (k, s, p, h) in [(3, 2, 1, 7), (2, 2, 0, 6), (3, 1, 1, 5), (3, 2, 0, 8)] {
            // Distinct values 0.1 apart so no finite-difference step changes a window's winner.
            let count = 2 * 2 * h * h
            let values = rng.permutation(count).map { Float($0) * 0.1 - Float(count) * 0.05 }
            let x = Tensor(shape: [2, 2, h, h], data: values)
            GradientCheck().assertGradients(MaxPool2d(kernel: k, stride: s, padding: p), input: x, "MaxPool2d k\(k) s\(s) p\(p)")
        }
    }

    func testMaxPoolForwardMatchesHandExample() {
        let x = Tensor(shape: [1, 1, 3, 3], data: [1, 5, 2, 4, 3, 9, 0, 8, 7])
        let pool = MaxPool2d(kernel: 3, stride: 2, padding: 1)
        let y = pool.forward(x, ForwardContext(training: true))
        XCTAssertEqual(y.data, [5, 9, 8, 9])
        let dx = pool.backward(Tensor(shape: [1, 1, 2, 2], data: [1, 2, 3, 4]))
        XCTAssertEqual(dx.data, [0, 1, 0, 0, 0, 6, 0, 3, 0])
    }

    func testDropout() {
        var rng = RNG(seed: 10)
        let x = rng.normalTensor([4, 50])
        let drop = Dropout(0.3)
        var check = GradientCheck()
        check.context = { ForwardContext(training: true, rng: RNGBox(RNG(seed: 77))) }
        check.assertGradients(drop, input: x, "Dropout")
        let y = drop.forward(x, ForwardContext(training: true, rng: RNGBox(RNG(seed: 1))))
        let zeros = y.data.filter { $0 == 0 }.count
        XCTAssertEqual(Double(zeros) / 200, 0.3, accuracy: 0.1)
        for i in 0..<x.count where y.data[i] != 0 { XCTAssertEqual(y.data[i], x.data[i] / 0.7, accuracy: 1e-5) }
        XCTAssertEqual(drop.forward(x, .eval), x)
    }

    func testSequentialGradients() {
        var rng = RNG(seed: 11)
        let net = Sequential([
            ("conv", Conv2d(name: "conv", inChannels: 2, outChannels: 4, kernel: 3, stride: 2, padding: 1, bias: true, rng: &rng)),
            ("gn", GroupNorm(name: "gn", groups: 2, channels: 4)),
            ("pool", GlobalAvgPool()),
            ("fc", Linear(name: "fc", inFeatures: 4, outFeatures: 3, rng: &rng)),
        ])
        XCTAssertEqual(net.parameters.map(\.name), ["conv.weight", "conv.bias", "gn.weight", "gn.bias", "fc.weight", "fc.bias"])
        GradientCheck(step: 5e-3, tolerance: 1e-3).assertGradients(net, input: rng.normalTensor([3, 2, 6, 6]), "Sequential")
    }

    func testSoftmaxCrossEntropy() {
        // Hand value: logits (0, ln 3) with label 1: p = 3/4, loss = ln(4/3).
        let (loss, grad, correct) = softmaxCrossEntropy(logits: Tensor(shape: [1, 2], data: [0, log(3)]), labels: [1])
        XCTAssertEqual(loss, log(4.0 / 3.0), accuracy: 1e-6)
        XCTAssertEqual(grad.data[0], 0.25, accuracy: 1e-6)
        XCTAssertEqual(grad.data[1], -0.25, accuracy: 1e-6)
        XCTAssertEqual(correct, 1)
        // Stable for huge logits.
        let big = softmaxCrossEntropy(logits: Tensor(shape: [2, 3], data: [1000, 0, -1000, 0, 1000, 999]), labels: [0, 2])
        XCTAssertTrue(big.loss.isFinite && big.gradient.isFinite)
        XCTAssertEqual(big.loss, Float(0 + (1 + log(1 + exp(-1.0)))) / 2, accuracy: 1e-4)
        XCTAssertEqual(big.correct, 1)
        // Finite differences of the mean loss with respect to the logits (Double loss, step 1e-3).
        var rng = RNG(seed: 12)
        let logits = rng.normalTensor([5, 4], std: 2)
        let labels = [0, 3, 1, 1, 2]
        let g = softmaxCrossEntropy(logits: logits, labels: labels).gradient
        var worst: Float = 0
        for i in 0..<logits.count {
            var p = logits, m = logits
            p.data[i] += 1e-2; m.data[i] -= 1e-2
            let num = (Double(softmaxCrossEntropy(logits: p, labels: labels).loss) - Double(softmaxCrossEntropy(logits: m, labels: labels).loss)) / 2e-2
            worst = max(worst, abs(Float(num) - g.data[i]))
        }
        XCTAssertLessThan(worst, 1e-4, "cross-entropy gradient max abs difference \(worst)")
    }
}
