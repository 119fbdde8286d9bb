import XCTest
import TensorCore
@testable import NN

/// Plain SGD with momentum, written here (the Optim module owns the real optimizers), drives the loss of
/// a tiny ResNet on a fixed synthetic batch down, bit-identically for the same seed.
final class TrainingSmokeTests: XCTestCase {
    func train(seed: UInt64, steps: Int) throws -> [Float] {
        let net = try Network.make(architecture: "resnet8", inChannels: 1, classes: 4, width: 0.5, seed: seed)
        var rng = RNG(seed: seed + 100)
        // 16 images of 12×12: class k has a bright 4×4 square in quadrant k, plus noise.
        let n = 16
        var x = rng.normalTensor([n, 1, 12, 12], std: 0.3)
        let labels = (0..<n).map { $0 % 4 }
        for i in 0..<n {
            let (r0, c0) = ((labels[i] / 2) * 6 + 1, (labels[i] % 2) * 6 + 1)
            for r in r0..<(r0 + 4) { for c in c0..<(c0 + 4) { x.data[x.offset(i, 0, r, c)] += 1.5 } }
        }
        var velocity = net.parameters.map { Tensor.zeros(like: $0.value) }
        var losses: [Float] = []
        for _ in 0..<steps {
            net.zeroGrad()
            let logits = net.forward(x, ForwardContext(training: true))
            let (loss, dLogits, _) = softmaxCrossEntropy(logits: logits, labels: labels)
            losses.append(loss)
            _ = net.backward(dLogits)
            // v ← 0.9·v + g;  θ ← θ − 0.05·v   (PyTorch SGD, momentum 0.9, no dampening)
            for (i, p) in net.parameters.enumerated() {
                velocity[i].scale(by: 0.9)
                velocity[i].add(p.grad)
                p.value.add(velocity[i], scaled: -0.05)
            }
        }
        let eval = softmaxCrossEntropy(logits: net.forward(x, .eval), labels: labels)
        losses.append(eval.loss)
        return losses
    }

    func testSGDDrivesLossDownDeterministically() throws {
        let a = try train(seed: 3, steps: 40)
        let b = try train(seed: 3, steps: 40)
        XCTAssertEqual(a, b, "same seed, same losses, bit for bit")
        print("SGD losses", a.enumerated().filter { $0.offset % 8 == 0 || $0.offset >= a.count - 2 }.map { String(format: "%.4f", $0.element) })
        XCTAssertTrue(a.allSatisfy(\.isFinite))
        let first = a[0], last = a[a.count - 2]
        XCTAssertEqual(first, log(4), accuracy: 0.6, "initial loss near ln(4)")
        XCTAssertLessThan(last, 0.25 * first, "training loss \(first) -> \(last): \(a)")
        XCTAssertLessThan(a.last!, first, "eval-mode loss with running statistics after training: \(a.last!)")
    }
}
