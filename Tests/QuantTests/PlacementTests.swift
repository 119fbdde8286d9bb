// Placement (paper layout, patterns, overrides, errors), calibration of a model, the report, and
// the integer convolution against the fake-quantized one.
import ReferenceKernels
import NN
@testable import Quant
import TensorCore
import XCTest

/// conv1 (stem) → ReLU → layer1 {0: conv1 → ReLU → conv2 → ReLU} → layer2 {0: conv1 (stride 2) →
/// ReLU → GroupNorm → conv2} → global average pool → fc. layer2.0.conv2 sees GroupNorm outputs.
func makeSmallModel(seed: UInt64 = 0, inChannels: Int = 1) -> Sequential {
    var rng = RNG(seed: seed)
    let block1 = Sequential([
        ("conv1", Conv2d(name: "layer1.0.conv1", inChannels: 8, outChannels: 8, kernel: 3, padding: 1, rng: &rng)),
        ("relu1", ReLU()),
        ("conv2", Conv2d(name: "layer1.0.conv2", inChannels: 8, outChannels: 8, kernel: 3, padding: 1, bias: true, rng: &rng)),
        ("relu2", ReLU()),
    ])
    let block2 = Sequential([
        ("conv1", Conv2d(name: "layer2.0.conv1", inChannels: 8, outChannels: 16, kernel: 3, stride: 2, padding: 1, rng: &rng)),
        ("relu1", ReLU()),
        ("gn", GroupNorm(name: "layer2.0.gn", groups: 4, channels: 16)),
        ("conv2", Conv2d(name: "layer2.0.conv2", inChannels: 16, outChannels: 16, kernel: 3, padding: 1, bias: true, rng: &rng)),
    ])
    return Sequential([
        ("conv1", Conv2d(name: "conv1", inChannels: inChannels, outChannels: 8, kernel: 3, padding: 1, rng: &rng)),
        ("relu", ReLU()),
        ("layer1", Sequential([("0", block1)])),
        ("layer2", Sequential([("0", block2)])),
        ("pool", GlobalAvgPool()),
        ("flatten", Flatten()),
        ("fc", Linear(name: "fc", inFeatures: 16, outFeatures: 5, rng: &rng)),
    ])
}

final class PlacementTests: XCTestCase {
    func testPaperLayout() throws {
        let model = makeSmallModel()
        let qs = try attachQuantizers(to: model, config: QuantizationConfig(weightBits: 4, activationBits: 3))
        XCTAssertEqual(qs.map(\.scale.name), [
            "conv1.a.s",
            "layer1.0.conv1.w.s", "layer1.0.conv1.a.s",
            "layer1.0.conv2.w.s", "layer1.0.conv2.a.s",
            "layer2.0.conv1.w.s", "layer2.0.conv1.a.s",
            "layer2.0.conv2.w.s", "layer2.0.conv2.a.s",
        ])
        XCTAssertEqual(scaleParameters(in: model).map(\.name), qs.map(\.scale.name), "parameter order")
        XCTAssertEqual(quantizers(in: model).map(\.name), qs.map(\.name))
        let stem = convolutions(in: model)[0]
        XCTAssertNil(stem.weightQuantizer)
        XCTAssertEqual((stem.inputQuantizer as? Quantizer)?.range, .signed)
        XCTAssertEqual(qs[1].granularity, .perChannel)
        XCTAssertEqual(qs[1].channels, 8)
        XCTAssertEqual(qs[1].range, .signed)
        XCTAssertEqual(qs[1].bits, 4)
        XCTAssertEqual(qs[2].range, .unsigned)
        XCTAssertEqual(qs[2].bits, 3)
        let fc = (model["fc"] as! Linear)
        XCTAssertNil(fc.weightQuantizer)
        XCTAssertNil(fc.inputQuantizer)
        XCTAssertEqual(removeQuantizers(from: model), 9)
        XCTAssertTrue(scaleParameters(in: model).isEmpty)
        XCTAssertNoThrow(try attachQuantizers(to: model, config: QuantizationConfig()))
    }

    func testPatternsOverridesAndKeepList() throws {
        let model = makeSmallModel()
        let config = QuantizationConfig(
            method: .ewgs, weightBits: 4, activationBits: 4, weightGranularity: .perTensor,
            keepFullPrecision: ["layer2.0.conv2"],
            bitOverrides: [LayerBitOverride(pattern: "layer1", weightBits: 8),
                           LayerBitOverride(pattern: "/layer1\\.0\\.conv2/", activationBits: 2),
                           LayerBitOverride(pattern: "layer?.*conv1", activationBits: 5)])
        let plan = try QuantizationPlan(model: model, config: config)
        XCTAssertEqual(plan.layers, [
            LayerQuantizationPlan(layer: "conv1", weightBits: nil, activationBits: 4, isStem: true),
            LayerQuantizationPlan(layer: "layer1.0.conv1", weightBits: 8, activationBits: 5, isStem: false),
            LayerQuantizationPlan(layer: "layer1.0.conv2", weightBits: 8, activationBits: 2, isStem: false),
            LayerQuantizationPlan(layer: "layer2.0.conv1", weightBits: 4, activationBits: 5, isStem: false),
            LayerQuantizationPlan(layer: "layer2.0.conv2", weightBits: nil, activationBits: nil, isStem: false),
        ])
        let qs = try attachQuantizers(to: model, plan: plan)
        XCTAssertEqual(qs.count, 7)
        XCTAssertTrue(qs.allSatisfy { $0.method == .ewgs && $0.granularity == .perTensor })

        XCTAssertTrue(try LayerPattern("layer3.*").matches("layer3.0.downsample.0"))
        XCTAssertFalse(try LayerPattern("layer3.*").matches("layer30"))
        XCTAssertTrue(try LayerPattern("layer3").matches("layer3.1.conv2"))
        XCTAssertFalse(try LayerPattern("layer3").matches("layer30.conv"))
        XCTAssertTrue(try LayerPattern("*conv2").matches("layer1.0.conv2"))
        XCTAssertFalse(try LayerPattern("*conv2").matches("layer1.0.conv1"))
        XCTAssertTrue(try LayerPattern("/layer[0-9]\\.1\\..*/").matches("layer4.1.conv1"))
    }

    func testErrorsSayWhatIsWrong() throws {
        let model = makeSmallModel()
        func message(_ config: QuantizationConfig) -> String {
            do { _ = try attachQuantizers(to: model, config: config); return "no error" } catch { return "\(error)" }
        }
        XCTAssertTrue(message(QuantizationConfig(weightBits: 9)).contains("bit width 9 for weights"))
        XCTAssertTrue(message(QuantizationConfig(activationBits: 1)).contains("choose 2 to 8 bits"))
        XCTAssertTrue(message(QuantizationConfig(bitOverrides: [LayerBitOverride(pattern: "layer1", weightBits: 12)]))
            .contains("weights of 'layer1'"))
        let noMatch = message(QuantizationConfig(keepFullPrecision: ["layer9.*"]))
        XCTAssertTrue(noMatch.contains("'layer9.*' matches no convolution"), noMatch)
        XCTAssertTrue(noMatch.contains("conv1, layer1.0.conv1"), noMatch)
        XCTAssertTrue(message(QuantizationConfig(keepFullPrecision: ["/layer[/"])).contains("is not valid"))
        XCTAssertTrue(scaleParameters(in: model).isEmpty, "a failed attach leaves the model untouched")
        try attachQuantizers(to: model, config: QuantizationConfig())
        let again = message(QuantizationConfig())
        XCTAssertTrue(again.contains("already quantized"), again)
        XCTAssertThrowsError(try calibrateQuantizers(in: makeSmallModel(), batches: [Tensor.zeros([1, 1, 8, 8])])) {
            XCTAssertEqual($0 as? QuantizationError, .notQuantized)
        }
        XCTAssertThrowsError(try calibrateQuantizers(in: model, batches: [])) {
            XCTAssertEqual($0 as? QuantizationError, .noCalibrationData)
        }
    }

    /// Calibration on a model: the stem sees a normalised (signed) image, layer2.0.conv2 GroupNorm
    /// outputs (signed), the rest post-ReLU inputs (unsigned). The report's SQNRs are finite and grow
    /// with the bit width.
    func testCalibrationAndReport() throws {
        var rng = RNG(seed: 30)
        let batches = (0..<3).map { _ in rng.normalTensor([4, 1, 12, 12]) }
        var sqnr: [Int: [LayerQuantizationReport]] = [:]
        for bits in [3, 6] {
            let model = makeSmallModel()
            try attachQuantizers(to: model, config: QuantizationConfig(weightBits: bits, activationBits: bits))
            let summary = try calibrateQuantizers(in: model, batches: batches)
            XCTAssertEqual(summary.signedActivations, ["conv1.a", "layer2.0.conv2.a"])
            XCTAssertEqual(summary.weightQuantizers, 4)
            XCTAssertEqual(summary.activationQuantizers, 5)
            XCTAssertTrue(summary.unreached.isEmpty)
            XCTAssertTrue(quantizers(in: model).allSatisfy(\.isInitialized))
            let report = quantizationReport(for: model, batch: batches[0])
            XCTAssertEqual(report.count, 5)
            XCTAssertNil(report[0].weightSQNR)
            for row in report.dropFirst() {
                XCTAssertTrue(row.weightSQNR!.isFinite && row.weightSQNR! > 0, "\(row)")
                XCTAssertTrue(row.activationSQNR!.isFinite && row.activationSQNR! > 0, "\(row)")
            }
            sqnr[bits] = report
            let text = formatQuantizationReport(report)
            XCTAssertTrue(text.contains("layer2.0.conv2"))
            XCTAssertTrue(text.contains("w SQNR dB"))
        }
        for (lo, hi) in zip(sqnr[3]!, sqnr[6]!) {
            if let a = lo.weightSQNR, let b = hi.weightSQNR { XCTAssertGreaterThan(b, a + 10, lo.layer) }
            if let a = lo.activationSQNR, let b = hi.activationSQNR { XCTAssertGreaterThan(b, a + 10, lo.layer) }
        }
        // A 6-bit weight quantizer with MSE init: SQNR near the 6.02·b rule (minus the Gaussian's clipping loss).
        XCTAssertGreaterThan(sqnr[6]![1].weightSQNR!, 25)
    }

    /// The integer conv equals the fake-quantized conv: same codes, exact Int32 sums, rescaled.
    func testIntegerConvMatchesFakeQuantizedConv() throws {
        var rng = RNG(seed: 31)
        for (stride, padding, granularity, range) in [(1, 1, ScaleGranularity.perChannel, QuantizationRange.unsigned),
                                                      (2, 0, .perTensor, .signed), (2, 1, .perChannel, .signed)] {
            let conv = Conv2d(name: "c", inChannels: 5, outChannels: 7, kernel: 3, stride: stride, padding: padding,
                              bias: true, rng: &rng)
            let wq = Quantizer(layerName: "c", role: .weight, bits: 8, range: .signed, granularity: granularity,
                               channels: 7, weight: conv.weight)
            wq.initializeScale(from: conv.weight.value, method: .mse)
            let aq = Quantizer(layerName: "c", role: .activation, bits: 8, range: range)
            var x = rng.normalTensor([3, 5, 9, 9])
            if range == .unsigned { x = Tensor(shape: x.shape, data: x.data.map { max(0, $0) }) }
            aq.initializeScale(from: x, method: .mse)
            conv.weightQuantizer = wq
            conv.inputQuantizer = aq
            let fake = conv.forward(x, .eval)
            conv.inferenceOverride = IntegerConv(conv: conv)
            let integer = conv.forward(x, .eval)
            XCTAssertEqual(integer.shape, fake.shape)
            let diff = integer.maxRelativeDifference(fake)
            XCTAssertLessThan(diff, 1e-5, "stride \(stride) padding \(padding) \(granularity) \(range): \(diff)")
            // And against a Double reference of the integer definition.
            let codesA = aq.integerCodes(x), codesW = wq.integerCodes(conv.weight.value)
            let ref = convolution2dReference(codesA, weight: codesW, options: conv.options)
            let sw = wq.effectiveScales, sa = aq.effectiveScales[0]
            let perOut = ref.count / (3 * 7)
            var maxAbs: Float = 0
            for i in 0..<ref.count {
                let co = (i / perOut) % 7
                let expected = ref.data[i] * (sw.count == 1 ? sw[0] : sw[co]) * sa + conv.bias!.value.data[co]
                maxAbs = max(maxAbs, abs(expected - integer.data[i]))
            }
            XCTAssertLessThan(maxAbs, 1e-4)
        }
    }

    /// Snapshot → fresh model → restore gives the same quantizers and outputs; mismatches are refused.
    func testQuantizerStateRoundTrip() throws {
        var rng = RNG(seed: 32)
        let x = rng.normalTensor([2, 1, 8, 8])
        let model = makeSmallModel()
        try attachQuantizers(to: model, config: QuantizationConfig(method: .ewgs, weightBits: 3, activationBits: 5))
        try calibrateQuantizers(in: model, batches: [x])
        quantizers(in: model)[2].ewgsDelta = 0.25
        quantizers(in: model)[1].scale.trainable = false
        let states = quantizerStates(in: model)
        let fresh = makeSmallModel()
        try restoreQuantizers(states, in: fresh)
        XCTAssertEqual(quantizerStates(in: fresh), states)
        XCTAssertEqual(fresh.forward(x, .eval), model.forward(x, .eval))
        XCTAssertEqual(quantizers(in: fresh).first { $0.name == "layer2.0.conv2.a" }?.range, .signed)
        // Updating existing quantizers in place.
        try restoreQuantizers(states, in: model)
        XCTAssertEqual(quantizerStates(in: model), states)
        var wrong = states
        wrong[1].scale = [1, 2]
        XCTAssertThrowsError(try restoreQuantizers(wrong, in: makeSmallModel())) { XCTAssertTrue("\($0)".contains("needs 8"), "\($0)") }
        XCTAssertThrowsError(try restoreQuantizers(Array(states.dropFirst()), in: fresh)) { XCTAssertTrue("\($0)".contains("differ"), "\($0)") }
        wrong = states
        wrong[0].layer = "conv9"
        let untouched = makeSmallModel()
        XCTAssertThrowsError(try restoreQuantizers(wrong, in: untouched)) { XCTAssertTrue("\($0)".contains("conv9"), "\($0)") }
        XCTAssertTrue(quantizers(in: untouched).isEmpty, "nothing attached on error")
    }
}
