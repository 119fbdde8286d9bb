// User errors of the training layer, the quantization helper, and divergence: a non-finite step
// stops the run at its last good state.
import Datasets
import Foundation
import NN
import Optim
import Quant
import TensorCore
@testable import Training
import XCTest

final class ErrorTests: XCTestCase {
    func testMethodAndModelMustAgree() throws {
        let data = try TrainingFixtures.styleFMNIST(perDomain: 100)
        let env = try EnvironmentAssignment(testDomains: [0], domainCount: 4)
        let fp = try TrainingFixtures.tinyModel.make()
        let quantized = try TrainingFixtures.quantizedTinyModel(data: data, environments: env)
        let hp = Hyperparameters()
        for m in TrainingMethod.allCases {
            let net = m.isQuantized ? fp : quantized
            XCTAssertThrowsError(try Run(network: net, dataset: data, environments: env, method: m, hyperparameters: hp, seed: 0)) { e in
                XCTAssertEqual(e as? TrainingError, m.isQuantized ? .needsQuantizedModel(m.rawValue) : .quantizedModelForFullPrecisionMethod(m.rawValue))
                XCTAssertTrue("\(e)".contains(m.isQuantized ? "quantize" : "full precision"), "\(e)")
            }
        }
        // EWGS δ re-estimation needs EWGS quantizers (the model has LSQ ones).
        var ewgs = Hyperparameters.defaults(for: .qat)
        ewgs.ewgsHessianEvery = 10
        XCTAssertThrowsError(try Run(network: quantized, dataset: data, environments: env, method: .qat, hyperparameters: ewgs, seed: 0)) { e in
            XCTAssertTrue("\(e)".contains("EWGS"), "\(e)")
        }
        // Model and data must fit.
        let rgb = try Network.make(architecture: "resnet8", inChannels: 3, classes: 10, width: 0.5)
        XCTAssertThrowsError(try Run(network: rgb, dataset: data, environments: env, method: .erm, hyperparameters: hp, seed: 0)) { e in
            XCTAssertTrue("\(e)".contains("3 input channels"), "\(e)")
        }
    }

    func testEveryDomainHeldOutIsRefused() throws {
        let data = try TrainingFixtures.styleFMNIST(perDomain: 100)
        XCTAssertThrowsError(try EnvironmentAssignment(testDomains: [0, 1, 2, 3], domainCount: 4))
        var all = try EnvironmentAssignment(testDomains: [0], domainCount: 4)
        all.testDomains = [0, 1, 2, 3]
        all.trainingDomains = []
        XCTAssertThrowsError(try Run(network: try TrainingFixtures.tinyModel.make(), dataset: data, environments: all,
                                     method: .erm, hyperparameters: Hyperparameters(), seed: 0)) { e in
            XCTAssertEqual(e as? TrainingError, .noTrainingDomains)
            XCTAssertTrue("\(e)".contains("at least one domain"))
        }
    }

    func testHyperparameterValidation() throws {
        let cases: [(WritableKeyPath<Hyperparameters, Double>, Double, String)] = [
            (\.learningRate, 0, "lr"), (\.learningRate, .infinity, "lr"), (\.weightDecay, -1, "wd"), (\.rho, 0, "rho"),
            (\.alpha, -0.1, "alpha"), (\.dropout, 1, "dropout"), (\.scaleLearningRate, -1, "scale_lr"),
        ]
        for (key, value, name) in cases {
            var h = Hyperparameters()
            h[keyPath: key] = value
            XCTAssertThrowsError(try h.validate()) { XCTAssertTrue("\($0)".hasPrefix(name), "\($0)") }
        }
        var h = Hyperparameters()
        h.window = 1
        XCTAssertThrowsError(try h.validate()) { XCTAssertTrue("\($0)".contains("K must")) }
        h = Hyperparameters()
        h.tau = 1.5
        XCTAssertThrowsError(try h.validate())
        h = Hyperparameters()
        h.ewgsHessianEvery = -1
        XCTAssertThrowsError(try h.validate())
    }

    func testQuantizeHelper() throws {
        let data = try TrainingFixtures.styleFMNIST(perDomain: 100)
        let env = try EnvironmentAssignment(testDomains: [3], domainCount: 4)
        let a = try Quantize.calibrationBatches(dataset: data, environments: env, count: 2, perDomain: 5, seed: 9)
        let b = try Quantize.calibrationBatches(dataset: data, environments: env, count: 2, perDomain: 5, seed: 9)
        XCTAssertEqual(a.map(\.shape), [[15, 1, 28, 28], [15, 1, 28, 28]])
        XCTAssertEqual(a, b, "deterministic")
        XCTAssertNotEqual(a[0], a[1])
        // Only training in-split images: each row equals some in-split image of domains 0–2.
        let splits = data.domainBedSplits(trialSeed: 0)
        for (k, d) in [0, 1, 2].enumerated() {
            let pool = try data.batch(domain: d, indices: splits[d].inIndices).images
            for row in 0..<5 {
                let image = Array(a[0].data[((k * 5 + row) * 784)..<((k * 5 + row + 1) * 784)])
                XCTAssertTrue((0..<pool.shape[0]).contains { Array(pool.data[($0 * 784)..<(($0 + 1) * 784)]) == image })
            }
        }

        let net = try TrainingFixtures.tinyModel.make()
        XCTAssertThrowsError(try Quantize.prepare(network: net, config: QuantizationConfig(), calibrationBatches: [])) {
            XCTAssertEqual($0 as? QuantizationError, .noCalibrationData)
        }
        XCTAssertTrue(quantizers(in: net).isEmpty, "nothing attached on error")
        XCTAssertThrowsError(try Quantize.prepare(network: net, config: QuantizationConfig(weightBits: 9), calibrationBatches: a))
        XCTAssertTrue(quantizers(in: net).isEmpty)
        let summary = try Quantize.prepare(network: net, config: QuantizationConfig(weightBits: 3, activationBits: 5), calibrationBatches: a)
        XCTAssertEqual(summary.batches, 2)
        XCTAssertTrue(summary.unreached.isEmpty)
        let qs = quantizers(in: net)
        XCTAssertEqual(qs.filter { $0.role == .activation }.count, net.convolutions.count)
        XCTAssertEqual(qs.filter { $0.role == .weight }.count, net.convolutions.count - 1, "the stem keeps FP weights")
        XCTAssertTrue(qs.allSatisfy { $0.isInitialized })
        XCTAssertEqual(qs.first { $0.role == .activation }?.range, .unsigned, "raw [0, 1] pixels: unsigned stem input")
        XCTAssertThrowsError(try Quantize.prepare(network: net, config: QuantizationConfig(), calibrationBatches: a)) {
            guard case .alreadyQuantized? = $0 as? QuantizationError else { return XCTFail("\($0)") }
        }
    }

    /// Three domains of 40 noisy 1×12×12 images; one in-split image of domain 1 is poisoned with NaN.
    func poisonedData() -> (DomainDataset, poisoned: Int) {
        var rng = RNG(seed: 8)
        var domains: [Domain] = []
        let splits = (0..<3).map { DomainSplit.domainBed(count: 40, trialSeed: 0, domainIndex: $0) }
        let poisoned = splits[1].inIndices[0]
        for d in 0..<3 {
            let labels = (0..<40).map { $0 % 4 }
            var images = rng.normalTensor([40, 1, 12, 12], std: 0.5)
            for i in 0..<40 { images.data[i * 144 + labels[i] * 30] += 3 }
            if d == 1 { images.data[poisoned * 144 + 77] = .nan }
            domains.append(Domain(name: "d\(d)", labels: labels, images: .memory(images)))
        }
        return (DomainDataset(name: "poisoned", classNames: ["a", "b", "c", "d"], imageShape: [1, 12, 12], domains: domains), poisoned)
    }

    /// Issue 17 D1: a forward pass that overflows names the layer where it first does, and says that a
    /// lower learning rate for this step cannot help (pass 1 runs on the weights before the step).
    func testDivergenceNamesTheLayerThatOverflows() throws {
        let (poisoned, index) = poisonedData()
        var domains = poisoned.domains
        if case .memory(var images) = domains[1].images {
            images.data[index * 144 + 77] = 0
            domains[1] = Domain(name: domains[1].name, labels: domains[1].labels, images: .memory(images))
        }
        let data = DomainDataset(name: "clean", classNames: poisoned.classNames, imageShape: poisoned.imageShape, domains: domains)
        let env = try EnvironmentAssignment(testDomains: [2], domainCount: 3)
        var hp = Hyperparameters.defaults(for: .erm)
        hp.batchPerDomain = 4
        hp.evalEvery = 1000
        let net = try Network.make(architecture: "resnet8", inChannels: 1, classes: 4, width: 0.5, seed: 2)
        let weight = try XCTUnwrap(net.parameters.first { $0.name == "layer2.0.conv1.weight" })
        weight.value = Tensor(shape: weight.value.shape, repeating: 3e38)
        let run = try Run(network: net, dataset: data, environments: env, method: .erm, hyperparameters: hp, seed: 12)
        XCTAssertThrowsError(try run.takeStep()) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("first overflows in 'layer2.0'"), text)
            XCTAssertTrue(text.contains("lowering lr now gives the same failure"), text)
        }
        XCTAssertEqual(run.step, 0)
    }

    /// Issue 17 D1, backward half: when the forward pass is finite the message names the layer where the
    /// backward pass first overflows and which tensor did (activation gradient or weight gradient), with
    /// advice for that case. The gradient is blown up by a test layer that is the identity going forward,
    /// by factors far beyond Float's range, so the place does not depend on any kernel's summation order.
    func testDivergenceNamesWhereTheBackwardPassOverflows() throws {
        func run(factors: [Float], pixelScale: Float, stepSize: Bool = false) throws -> String {
            let (poisoned, index) = poisonedData()
            let domains = poisoned.domains.enumerated().map { d, domain -> Domain in
                guard case .memory(var images) = domain.images else { return domain }
                if d == 1 { images.data[index * 144 + 77] = 0 }
                for i in images.data.indices { images.data[i] *= pixelScale }
                return Domain(name: domain.name, labels: domain.labels, images: .memory(images))
            }
            let data = DomainDataset(name: "scaled", classNames: poisoned.classNames, imageShape: poisoned.imageShape, domains: domains)
            var rng = RNG(seed: 3)
            var layers: [(String, Module)] = [("flatten", Flatten()), ("hidden", Linear(name: "hidden", inFeatures: 144, outFeatures: 8, rng: &rng)),
                                              ("relu", ReLU())]
            for (i, f) in factors.enumerated() { layers.insert(("amp\(i + 1)", GradientAmplifier(f)), at: 2 + 2 * i) }
            if stepSize { layers.insert(("gate", OverflowingStepSize()), at: 1) }
            let net = Network(architecture: "test-mlp", inChannels: 1, classes: 4, featurizer: Sequential(layers),
                              classifier: Linear(name: "fc", inFeatures: 8, outFeatures: 4, rng: &rng))
            let method: TrainingMethod = stepSize ? .qat : .erm
            var hp = Hyperparameters.defaults(for: method)
            hp.batchPerDomain = 4
            hp.evalEvery = 1000
            let r = try Run(network: net, dataset: data, environments: try EnvironmentAssignment(testDomains: [2], domainCount: 3),
                            method: method, hyperparameters: hp, seed: 12)
            do { try r.takeStep() } catch { XCTAssertEqual(r.step, 0); return "\(error)" }
            XCTFail("the step did not diverge")
            return ""
        }
        // hidden → amp1 (×1e30) → relu → amp2 (×1e30): the gradient passes amp2 finite (~1e29) and
        // overflows in amp1's activation gradient.
        let activation = try run(factors: [1e30, 1e30], pixelScale: 1)
        XCTAssertTrue(activation.contains("the backward pass first overflows in 'amp1': the activation gradient it passes back"), activation)
        XCTAssertTrue(activation.contains("Gradients grow as they flow back"), activation)
        XCTAssertTrue(activation.contains("lowering lr now gives the same failure"), activation)
        XCTAssertFalse(activation.contains("forward pass first overflows"), activation)
        // Inputs of ~1e7 and a gradient of ~1e33 reaching 'hidden': its weight gradient (their product,
        // ~1e40) overflows while its input gradient (~1e33) does not.
        let weight = try run(factors: [1e35], pixelScale: 1e7)
        XCTAssertTrue(weight.contains("the backward pass first overflows in 'hidden': the weight gradient of 'hidden.weight'"), weight)
        XCTAssertFalse(weight.contains("activation gradient it passes back"), weight)
        XCTAssertTrue(weight.contains("the activations feeding 'hidden' are too large"), weight)
        // A step size whose gradient (a sum over every element, as LSQ's) overflows while the activation
        // gradient passes through it finite.
        let scale = try run(factors: [], pixelScale: 1, stepSize: true)
        XCTAssertTrue(scale.contains("the backward pass first overflows in 'gate': the scale-factor gradient of 'gate.s'"), scale)
        XCTAssertTrue(scale.contains("a lower scale_lr="), scale)
    }

    func testDivergenceStopsAtTheLastGoodState() throws {
        let (data, _) = poisonedData()
        let env = try EnvironmentAssignment(testDomains: [2], domainCount: 3)
        var hp = Hyperparameters.defaults(for: .sagm)
        hp.batchPerDomain = 4
        hp.evalEvery = 1000
        hp.dropout = 0.1
        func make() throws -> Run {
            let net = try Network.make(architecture: "resnet8", inChannels: 1, classes: 4, width: 0.5, seed: 2)
            return try Run(network: net, dataset: data, environments: env, method: .sagm, hyperparameters: hp, seed: 12)
        }
        let run = try make()
        var failure: TrainingError?
        for _ in 0..<200 {
            do { try run.takeStep() } catch let e as TrainingError { failure = e; break }
        }
        guard case .diverged(let step, let message)? = failure else { return XCTFail("no divergence in 200 steps: \(String(describing: failure))") }
        XCTAssertEqual(run.step, step - 1)
        XCTAssertTrue(message.contains("not finite") || message.contains("loss is"), message)
        // The poisoned pixel is named as the cause: no advice to lower the learning rate (issue 17, D1).
        XCTAssertTrue("\(failure!)".contains("non-finite pixel"), "\(failure!)")
        XCTAssertFalse("\(failure!)".contains("Lower the learning rate"), "\(failure!)")
        XCTAssertGreaterThan(step, 1, "the poisoned image is drawn after some good steps")

        // The run is exactly a run that stopped after step − 1: weights, BN statistics (updated in pass 1
        // of the failed step, then restored), optimizer, sampler, dropout generator.
        let reference = try make()
        for _ in 0..<(step - 1) { try reference.takeStep() }
        assertSameModel(run.network, reference.network)
        XCTAssertTrue(run.network.buffers.allSatisfy { $0.value.isFinite })
        XCTAssertEqual(run.stepper.checkpoint(), reference.stepper.checkpoint())
        XCTAssertEqual(run.sampler.state, reference.sampler.state)
        XCTAssertEqual(run.dropoutRNG.rng, reference.dropoutRNG.rng)
        // The same batch comes again: the retry diverges at the same step; evaluation still works.
        XCTAssertThrowsError(try run.takeStep()) { XCTAssertEqual(($0 as? TrainingError).map { "\($0)" }, "\(failure!)") }
        XCTAssertNoThrow(try run.evaluate())
    }

    func testHugeLearningRateDivergesCleanly() throws {
        let (data, _) = poisonedData()
        // Domains 0 and 2 are clean; lr 1e30 overflows the weights to ±inf within a few steps.
        let env = try EnvironmentAssignment(testDomains: [1], domainCount: 3)
        var hp = Hyperparameters.defaults(for: .erm)
        hp.batchPerDomain = 4
        hp.learningRate = 1e30
        let run = try Run(network: try Network.make(architecture: "resnet8", inChannels: 1, classes: 4, width: 0.5, seed: 2),
                          dataset: data, environments: env, method: .erm, hyperparameters: hp, seed: 1)
        var failure: Error?
        for _ in 0..<20 {
            do { try run.takeStep() } catch { failure = error; break }
        }
        guard case .diverged(let step, _)? = failure as? TrainingError else { return XCTFail("\(String(describing: failure))") }
        XCTAssertGreaterThan(step, 1, "the first step is finite; the overflowed weights break a later one")
        XCTAssertEqual(run.step, step - 1)
        XCTAssertTrue(run.network.buffers.allSatisfy { $0.value.isFinite }, "BN statistics restored")
    }
}

/// The identity going forward; multiplies the gradient by `factor` going back (a backward pass that
/// overflows while the forward pass stays finite).
private final class GradientAmplifier: Module {
    let factor: Float
    init(_ factor: Float) { self.factor = factor }
    func forward(_ x: Tensor, _ ctx: ForwardContext) -> Tensor { x }
    func backward(_ dy: Tensor) -> Tensor {
        var g = dy
        for i in g.data.indices { g.data[i] *= factor }
        return g
    }
    var parameters: [Parameter] { [] }
}

/// The identity going forward, with a quantizer-like step size `s` whose gradient is a sum over every
/// element of the incoming gradient scaled to the top of Float's range: it overflows while the gradient
/// passed back stays as it came.
private final class OverflowingStepSize: Module {
    let s = Parameter(name: "gate.s", kind: .scale, value: Tensor(shape: [1], repeating: 1))
    func forward(_ x: Tensor, _ ctx: ForwardContext) -> Tensor { x }
    func backward(_ dy: Tensor) -> Tensor {
        var sum: Float = 0
        for v in dy.data where v != 0 { sum += 1e38 }
        s.grad.data[0] += sum
        return dy
    }
    var parameters: [Parameter] { [s] }
}
