// Reproduces the PyTorch LSQ conv block of scripts/make_quant_fixture.py: output, input gradient,
// weight gradient, bias gradient and both step-size gradients.
import Foundation
import NN
@testable import Quant
import TensorCore
import XCTest

func fixturePath(_ name: String) -> String {
    if let url = Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures") { return url.path }
    return URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/\(name)").path
}

final class PyTorchFixtureTests: XCTestCase {
    func testLSQConvBlockMatchesPyTorch() throws {
        let file = try SafeTensors.read(contentsOf: URL(fileURLWithPath: fixturePath("lsq_conv_block.safetensors")))
        func tensor(_ name: String) -> Tensor { file.tensors[name]!.floatTensor }
        var rng = RNG(seed: 0)
        let conv = Conv2d(name: "conv", inChannels: 3, outChannels: 4, kernel: 3, padding: 1, bias: true, rng: &rng)
        conv.weight.value = tensor("weight")
        conv.bias!.value = tensor("bias")
        let wq = Quantizer(layerName: "conv", role: .weight, bits: 4, range: .signed, granularity: .perChannel,
                           channels: 4, weight: conv.weight)
        wq.scale.value = tensor("s_w")
        let aq = Quantizer(layerName: "conv", role: .activation, bits: 4, range: .unsigned)
        aq.scale.value = tensor("s_a")
        conv.weightQuantizer = wq
        conv.inputQuantizer = aq
        let bn = BatchNorm2d(name: "bn", channels: 4, eps: 1e-5)
        bn.weight.value = tensor("bn_weight")
        bn.bias.value = tensor("bn_bias")
        bn.runningMean.value = tensor("bn_running_mean")
        bn.runningVar.value = tensor("bn_running_var")
        bn.frozen = true   // BN in eval mode inside a training pass, as in the PyTorch block
        let block = Sequential([("conv", conv), ("bn", bn), ("relu", ReLU())])

        let y = block.forward(tensor("x"), ForwardContext(training: true))
        let dx = block.backward(tensor("upstream"))
        let comparisons: [(String, Tensor, Tensor, Float)] = [
            ("y", y, tensor("y"), 1e-5),
            ("grad_x", dx, tensor("grad_x"), 1e-5),
            ("grad_weight", conv.weight.grad, tensor("grad_weight"), 1e-4),
            ("grad_bias", conv.bias!.grad, tensor("grad_bias"), 1e-4),
            ("grad_s_a", aq.scale.grad, tensor("grad_s_a"), 1e-4),
            ("grad_s_w", wq.scale.grad, tensor("grad_s_w"), 1e-4),
        ]
        var lines: [String] = []
        for (name, got, expected, tolerance) in comparisons {
            XCTAssertEqual(got.shape.reduce(1, *), expected.count, name)
            // Relative to the largest reference magnitude of the tensor, so near-zero entries of a
            // sum over many products do not dominate.
            let scale = max(expected.maxAbs(), 1e-12)
            var worst: Float = 0
            for i in 0..<expected.count { worst = max(worst, abs(got.data[i] - expected.data[i]) / scale) }
            lines.append("\(name): max |diff|/max|ref| = \(worst)")
            XCTAssertLessThan(worst, tolerance, "\(name) differs from PyTorch by \(worst) (relative to max |ref| \(scale))")
        }
        print("PyTorch LSQ conv block:\n  " + lines.joined(separator: "\n  "))
    }
}
