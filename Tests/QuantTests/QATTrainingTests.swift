// End to end: a quantized network trains (weights and step sizes) with plain SGD on a fixed batch.
import NN
@testable import Quant
import TensorCore
import XCTest

final class QATTrainingTests: XCTestCase {
    func testLSQAndEWGSTrainingLowersTheLoss() throws {
        for method in QuantizationMethod.allCases {
            var rng = RNG(seed: 50)
            let net = try Network.make(architecture: "mnist_cnn", inChannels: 1, classes: 4, width: 0.25, seed: 3)
            try attachQuantizers(to: net, config: QuantizationConfig(method: method, weightBits: 4, activationBits: 4))
            let x = rng.normalTensor([16, 1, 8, 8])
            let labels = (0..<16).map { $0 % 4 }
            try calibrateQuantizers(in: net, batches: [x])
            let scalesBefore = scaleParameters(in: net).map(\.value)
            var losses: [Float] = []
            for _ in 0..<40 {
                net.zeroGrad()
                let logits = net.forward(x, ForwardContext(training: true))
                let (loss, gradient, _) = softmaxCrossEntropy(logits: logits, labels: labels)
                losses.append(loss)
                _ = net.backward(gradient)
                for p in net.parameters {
                    XCTAssertTrue(p.grad.isFinite, p.name)
                    p.value.add(p.grad, scaled: p.kind == .scale ? -1e-3 : -0.1)
                }
            }
            print("\(method): loss \(losses.first!) → \(losses.last!)")
            XCTAssertLessThan(losses.last!, 0.7 * losses.first!, "\(method): \(losses.first!) → \(losses.last!)")
            XCTAssertNotEqual(scaleParameters(in: net).map(\.value), scalesBefore, "\(method): step sizes receive gradients")
        }
    }
}
