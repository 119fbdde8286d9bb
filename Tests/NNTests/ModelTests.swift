import XCTest
import TensorCore
@testable import NN

final class ModelTests: XCTestCase {
    func testResNet20NamesShapesAndCount() throws {
        let net = try Network.make(architecture: "resnet20", inChannels: 3, classes: 10, seed: 0)
        let names = net.parameters.map(\.name)
        XCTAssertEqual(names.first, "conv1.weight")
        XCTAssertTrue(names.contains("layer1.0.conv1.weight"))
        XCTAssertTrue(names.contains("layer3.2.bn2.bias"))
        XCTAssertEqual(names.suffix(2), ["fc.weight", "fc.bias"])
        XCTAssertFalse(names.contains { $0.contains("downsample") }, "option A has no projection parameters")
        // He et al. 2016 Table 6: ResNet-20 has 0.27M parameters; exactly 269,722 with a 10-way fc.
        XCTAssertEqual(net.parameterCount, 269_722)
        XCTAssertEqual(net.buffers.count, 19 * 2)
        XCTAssertEqual(net.stateDict()["layer2.0.conv1.weight"]?.shape, [32, 16, 3, 3])
        XCTAssertEqual(net.convolutions.count, 19)
        let x = randomTensor([2, 3, 32, 32], seed: 1)
        XCTAssertEqual(net.forward(x, .eval).shape, [2, 10])
        XCTAssertEqual(net.features(x, .eval).shape, [2, 64])
    }

    func testCifarOptionBAndDepths() throws {
        let b = try Network.make(architecture: "resnet32", inChannels: 1, classes: 7, width: 2, shortcut: .projection)
        XCTAssertNotNil(b.stateDict()["layer2.0.downsample.0.weight"])
        XCTAssertEqual(b.stateDict()["layer2.0.downsample.0.weight"]?.shape, [64, 32, 1, 1])
        XCTAssertEqual(b.stateDict()["layer3.0.downsample.1.running_var"]?.shape, [128])
        XCTAssertEqual(b.stateDict()["conv1.weight"]?.shape, [32, 1, 3, 3])
        XCTAssertEqual(b.stateDict()["fc.weight"]?.shape, [7, 128])
        let r56 = try Network.make(architecture: "resnet56", inChannels: 1, classes: 10)
        XCTAssertEqual(r56.convolutions.count, 55)
        XCTAssertEqual(r56.forward(randomTensor([1, 1, 28, 28], seed: 2), .eval).shape, [1, 10])
    }

    func testMnistCNNMatchesDomainBed() throws {
        let net = try Network.make(architecture: "mnist_cnn", inChannels: 1, classes: 10)
        XCTAssertEqual(net.parameters.map(\.name), [
            "conv1.weight", "conv1.bias", "bn0.weight", "bn0.bias", "conv2.weight", "conv2.bias", "bn1.weight", "bn1.bias",
            "conv3.weight", "conv3.bias", "bn2.weight", "bn2.bias", "conv4.weight", "conv4.bias", "bn3.weight", "bn3.bias",
            "fc.weight", "fc.bias"])
        XCTAssertEqual(net.stateDict()["conv2.weight"]?.shape, [128, 64, 3, 3])
        XCTAssertEqual(net.convolutions[1].stride, 2)
        XCTAssertTrue(net.buffers.isEmpty)
        let x = randomTensor([2, 1, 28, 28], seed: 3)
        XCTAssertEqual(net.features(x, .eval).shape, [2, 128])
        // conv → ReLU → GroupNorm order: the featurizer's modules in this order.
        let kinds = net.namedModules().dropFirst().prefix(6).map { $0.1.self is Conv2d ? "conv" : $0.1 is ReLU ? "relu" : $0.1 is GroupNorm ? "gn" : "?" }
        XCTAssertEqual(kinds, ["conv", "relu", "gn", "conv", "relu", "gn"])
    }

    /// torchvision's published parameter counts: resnet18 11,689,512 and resnet50 25,557,032 (3 channels,
    /// 1000 classes), and its state-dict names.
    func testTorchvisionResNets() throws {
        let r18 = try Network.make(architecture: "resnet18", inChannels: 3, classes: 1000)
        XCTAssertEqual(r18.parameterCount, 11_689_512)
        let sd18 = r18.stateDict()
        XCTAssertEqual(sd18.count, 102)  // torchvision's 122 entries minus 20 num_batches_tracked
        for name in ["conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight", "layer1.1.bn2.bias",
                     "layer2.0.downsample.0.weight", "layer2.0.downsample.1.running_var", "layer4.1.conv2.weight", "fc.bias"] {
            XCTAssertNotNil(sd18[name], name)
        }
        XCTAssertNil(sd18["layer1.0.downsample.0.weight"])
        XCTAssertEqual(sd18["conv1.weight"]?.shape, [64, 3, 7, 7])
        let r50 = try Network.make(architecture: "resnet50", inChannels: 3, classes: 1000)
        XCTAssertEqual(r50.parameterCount, 25_557_032)
        XCTAssertEqual(r50.convolutions.count, 53)
        let sd50 = r50.stateDict()
        XCTAssertEqual(sd50["layer1.0.downsample.0.weight"]?.shape, [256, 64, 1, 1])
        XCTAssertEqual(sd50["layer4.2.conv3.weight"]?.shape, [2048, 512, 1, 1])
        XCTAssertEqual(sd50["layer3.5.bn3.running_mean"]?.shape, [1024])
        XCTAssertEqual(sd50["fc.weight"]?.shape, [1000, 2048])
        let small = try Network.make(architecture: "resnet50", inChannels: 1, classes: 5, width: 0.125)
        XCTAssertEqual(small.forward(randomTensor([2, 1, 32, 32], seed: 4), .eval).shape, [2, 5])
        XCTAssertEqual(small.features(randomTensor([1, 1, 32, 32], seed: 4), .eval).shape, [1, 256])
    }

    func testMakeRejectsUnknownNamesAndBadSettings() {
        XCTAssertThrowsError(try Network.make(architecture: "resnet21")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("unknown architecture 'resnet21'"), text)
            for known in ["resnet20", "resnet32", "resnet56", "mnist_cnn", "resnet18", "resnet50"] {
                XCTAssertTrue(text.contains(known), "error should list \(known): \(text)")
            }
        }
        XCTAssertThrowsError(try Network.make(architecture: "resnet20", inChannels: 0))
        XCTAssertThrowsError(try Network.make(architecture: "resnet20", classes: 0))
        XCTAssertThrowsError(try Network.make(architecture: "resnet20", width: 0))
    }

    func testSameSeedSameWeights() throws {
        let a = try Network.make(architecture: "resnet20", inChannels: 1, seed: 5)
        let b = try Network.make(architecture: "resnet20", inChannels: 1, seed: 5)
        let c = try Network.make(architecture: "resnet20", inChannels: 1, seed: 6)
        XCTAssertEqual(a.stateDict(), b.stateDict())
        XCTAssertNotEqual(a.stateDict()["conv1.weight"], c.stateDict()["conv1.weight"])
        // Kaiming fan_out: std √(2 / (16·9)) ≈ 0.118 for layer1 convs.
        let w = a.stateDict()["layer1.0.conv1.weight"]!
        XCTAssertEqual((w.squaredNorm() / Double(w.count)).squareRoot(), (2.0 / 144).squareRoot(), accuracy: 0.012)
    }

    /// Residual blocks against central finite differences, batch statistics and running statistics.
    /// A step may cross a ReLU kink, so an element passes when the central or a one-sided difference
    /// at any of the steps 1e-3, 3e-4, 1e-4, 3e-3 is within relative tolerance 1e-2 (a wrong gradient
    /// disagrees at every step and on both sides); and the directional derivative along the gradient
    /// and three random directions is within 2e-2 of ∇L·d at step 1e-3.
    func testBlocksAgainstFiniteDifferences() {
        var rng = RNG(seed: 30)
        let blocks: [(String, Module, [Int])] = [
            ("BasicBlock identity", BasicBlock(name: "b", inChannels: 4, outChannels: 4, stride: 1, shortcut: .zeroPadding, rng: &rng), [4, 4, 5, 5]),
            ("BasicBlock option A", BasicBlock(name: "b", inChannels: 4, outChannels: 8, stride: 2, shortcut: .zeroPadding, rng: &rng), [4, 4, 6, 6]),
            ("BasicBlock option B", BasicBlock(name: "b", inChannels: 4, outChannels: 8, stride: 2, shortcut: .projection, rng: &rng), [4, 4, 7, 7]),
            ("Bottleneck stride 2", Bottleneck(name: "b", inChannels: 8, planes: 4, stride: 2, rng: &rng), [4, 8, 6, 6]),
            ("Bottleneck identity", Bottleneck(name: "b", inChannels: 16, planes: 4, stride: 1, rng: &rng), [4, 16, 5, 5]),
        ]
        for (label, block, shape) in blocks {
            let x = rng.normalTensor(shape)
            for training in [true, false] {
                var check = GradientCheck(step: 1e-3, tolerance: 1e-2, maxElements: 60)
                check.fallbackSteps = [3e-4, 1e-4, 3e-3]
                check.context = { ForwardContext(training: training, updateRunningStats: false, needsBackward: true) }
                check.assertGradients(block, input: x, "\(label) training \(training)")
                check.step = 1e-3
                let errors = check.directionalErrors(block, input: x)
                XCTAssertLessThan(errors.max()!, 2e-2, "\(label) training \(training): directional derivative relative errors \(errors)")
            }
        }
    }

    /// Whole networks: CIFAR ResNets with both shortcuts and MNIST_CNN in training mode (same criteria as
    /// the blocks); torchvision ResNet-18/50 by directional derivatives in eval
    /// mode with randomised running statistics. (At initialisation a deep BN network in batch-statistics
    /// mode with a tiny batch has exploding, rapidly varying gradients — Yang et al. 2019 — so finite
    /// differences there measure curvature, not correctness; the PyTorch fixture covers training mode.)
    func testNetworksAgainstFiniteDifferences() throws {
        var rng = RNG(seed: 20)
        let small: [(Network, [Int])] = [
            (try Network.make(architecture: "resnet8", inChannels: 1, classes: 3, width: 0.25, shortcut: .zeroPadding, seed: 1), [3, 1, 8, 8]),
            (try Network.make(architecture: "resnet8", inChannels: 2, classes: 3, width: 0.25, shortcut: .projection, seed: 2), [3, 2, 8, 8]),
            (try Network.make(architecture: "mnist_cnn", inChannels: 1, classes: 3, width: 0.125, seed: 5), [2, 1, 8, 8]),
        ]
        for (net, shape) in small {
            let x = rng.normalTensor(shape)
            var check = GradientCheck(step: 1e-3, tolerance: 1e-2, maxElements: 40)
            check.fallbackSteps = [3e-4, 1e-4, 3e-3]
            check.context = { ForwardContext(training: true, updateRunningStats: false) }
            check.assertGradients(net, input: x, "\(net.architecture) \(shape)")
            check.step = 1e-3
            let errors = check.directionalErrors(net, input: x)
            XCTAssertLessThan(errors.max()!, 2e-2, "\(net.architecture): directional derivative relative errors \(errors)")
        }
        for architecture in ["resnet18", "resnet50"] {
            let net = try Network.make(architecture: architecture, inChannels: 1, classes: 3, width: 1.0 / 16, seed: 3)
            for bn in net.batchNorms {
                bn.runningMean.value = rng.normalTensor([bn.channels], std: 0.2)
                bn.runningVar.value = rng.uniformTensor([bn.channels], 0.5, 2)
            }
            let x = rng.normalTensor([2, 1, 64, 64])
            var check = GradientCheck(step: 1e-3)
            check.context = { ForwardContext(training: false, updateRunningStats: false, needsBackward: true) }
            let errors = check.directionalErrors(net, input: x)
            XCTAssertLessThan(errors.max()!, 2e-2, "\(architecture): directional derivative relative errors \(errors)")
        }
    }

    func testFrozenBatchNormAndDescription() throws {
        let net = try Network.make(architecture: "resnet20", inChannels: 1, classes: 10)
        net.setFrozenBatchNorm(true)
        XCTAssertTrue(net.batchNorms.allSatisfy(\.frozen))
        XCTAssertEqual(net.batchNorms.count, 19)
        let before = net.stateDict()["layer1.0.bn1.running_mean"]!
        _ = net.forward(randomTensor([4, 1, 28, 28], seed: 1), ForwardContext(training: true))
        XCTAssertEqual(net.stateDict()["layer1.0.bn1.running_mean"], before)
        net.setFrozenBatchNorm(false)
        _ = net.forward(randomTensor([4, 1, 28, 28], seed: 1), ForwardContext(training: true))
        XCTAssertNotEqual(net.stateDict()["layer1.0.bn1.running_mean"], before)

        let rows = net.describeLayers(inputShape: [1, 28, 28])
        let byName = Dictionary(rows.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(byName["conv1"]?.type, "Conv2d")
        XCTAssertEqual(byName["conv1"]?.outputShape, [16, 28, 28])
        XCTAssertEqual(byName["conv1"]?.parameterCount, 144)
        XCTAssertEqual(byName["layer2.0"]?.type, "BasicBlock")
        XCTAssertEqual(byName["layer2.0"]?.outputShape, [32, 14, 14])
        XCTAssertEqual(byName["layer2.0.conv2"]?.outputShape, [32, 14, 14])
        XCTAssertEqual(byName["layer2.0.shortcut"]?.outputShape, [32, 14, 14])
        XCTAssertEqual(byName["layer3.2.bn2"]?.outputShape, [64, 7, 7])
        XCTAssertEqual(byName["avgpool"]?.outputShape, [64])
        XCTAssertEqual(byName["fc"]?.outputShape, [10])
        XCTAssertEqual(byName[""]?.parameterCount, net.parameterCount)
        let table = net.summary(inputShape: [1, 28, 28])
        XCTAssertTrue(table.contains("layer1.0.conv1"))
        XCTAssertTrue(table.contains("16 -> 16, kernel 3, stride 1, padding 1, no bias"), table)
        let r50 = try Network.make(architecture: "resnet50", inChannels: 3, classes: 10, width: 0.25)
        let r50rows = Dictionary(r50.describeLayers(inputShape: [3, 64, 64]).map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(r50rows["maxpool"]?.outputShape, [16, 16, 16])
        XCTAssertEqual(r50rows["layer2.0.downsample.0"]?.outputShape, [128, 8, 8])
        XCTAssertEqual(r50rows["layer4"]?.outputShape, [512, 2, 2])
    }

    func testStateDictRoundTripAndLoadReports() throws {
        let a = try Network.make(architecture: "resnet8", inChannels: 1, classes: 4, width: 0.5, seed: 1)
        let b = try Network.make(architecture: "resnet8", inChannels: 1, classes: 4, width: 0.5, seed: 2)
        _ = a.forward(randomTensor([4, 1, 8, 8], seed: 3), ForwardContext(training: true))  // non-trivial running stats
        var sd = a.stateDict()
        sd["bn1.num_batches_tracked"] = Tensor.scalar(1)
        let report = try b.load(stateDict: sd, strict: true)
        XCTAssertTrue(report.isClean, report.summary)
        XCTAssertEqual(b.stateDict(), a.stateDict())

        let c = try Network.make(architecture: "resnet8", inChannels: 1, classes: 4, width: 0.5, seed: 3)
        let original = c.stateDict()
        var bad = a.stateDict()
        bad.removeValue(forKey: "layer1.0.bn1.running_var")
        bad["extra.weight"] = Tensor.zeros([1])
        bad["fc.weight"] = Tensor.zeros([5, 32])
        XCTAssertThrowsError(try c.load(stateDict: bad, strict: true)) { error in
            guard case NNError.stateDictMismatch(let r) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(r.missing, ["layer1.0.bn1.running_var"])
            XCTAssertEqual(r.unexpected, ["extra.weight"])
            XCTAssertEqual(r.shapeMismatch.map(\.name), ["fc.weight"])
            XCTAssertTrue("\(error)".contains("strict: false"))
        }
        XCTAssertEqual(c.stateDict(), original, "a failed strict load changes nothing")
        let loose = try c.load(stateDict: bad, strict: false)
        XCTAssertEqual(loose.missing, ["layer1.0.bn1.running_var"])
        XCTAssertEqual(c.stateDict()["conv1.weight"], a.stateDict()["conv1.weight"])
        XCTAssertEqual(c.stateDict()["fc.weight"], original["fc.weight"])
    }
}
