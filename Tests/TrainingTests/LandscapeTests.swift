// Tests of the Landscape module on a tiny conv net (conv 1→4 with bias, BN, ReLU, global average
// pool, fc 4→3) with optional stand-in fake quantizers whose step sizes are `.scale` parameters.
// Tolerances: normalised filter norms to 1e-5 relative (Float direction, Double norms); surface
// values against hand-set weights exactly (same Float formula, deterministic forward); restores are
// compared bit for bit.
import Foundation
import NN
import TensorCore
import XCTest
@testable import Landscape

/// A uniform fake quantizer with a per-tensor or per-channel (axis 0) step size, standing in for Quant's.
final class StandInQuantizer: TensorQuantizer {
    let scale: Parameter
    init(name: String, scales: [Float]) {
        scale = Parameter(name: name + ".s", kind: .scale, value: Tensor(shape: [scales.count], data: scales))
    }
    func forward(_ x: Tensor, _ ctx: ForwardContext) -> Tensor {
        var y = x
        let blocks = scale.count, per = x.count / blocks
        for i in 0..<x.count {
            let s = max(scale.value.data[i / per], 1e-6)
            y.data[i] = min(max((x.data[i] / s).rounded(.toNearestOrEven), -8), 7) * s
        }
        return y
    }
    func backward(_ dy: Tensor) -> Tensor { dy }
    var parameters: [Parameter] { [scale] }
    func clearCache() {}
}

final class LandscapeTests: XCTestCase {
    struct Tiny {
        let network: Network
        let conv: Conv2d
        let bn: BatchNorm2d
        let fc: Linear
    }

    /// conv1 (4,1,3,3)+bias, bn1, relu, avgpool, fc (3,4)+bias. Quantized: per-channel conv weight
    /// scales (4), per-tensor conv input and fc weight scales (1 each).
    func makeTiny(seed: UInt64 = 7, quantized: Bool = false, perChannelWeights: Bool = true) -> Tiny {
        var rng = RNG(seed: seed)
        let conv = Conv2d(name: "conv1", inChannels: 1, outChannels: 4, kernel: 3, padding: 1, bias: true, rng: &rng)
        conv.bias!.value = rng.normalTensor([4], std: 0.1)
        let bn = BatchNorm2d(name: "bn1", channels: 4)
        bn.runningMean.value = rng.normalTensor([4], std: 0.1)
        bn.runningVar.value = Tensor(shape: [4], data: (0..<4).map { _ in 0.5 + rng.uniform() })
        bn.weight.value = Tensor(shape: [4], data: (0..<4).map { _ in 0.8 + 0.4 * rng.uniform() })
        bn.bias.value = rng.normalTensor([4], std: 0.1)
        let fc = Linear(name: "fc", inFeatures: 4, outFeatures: 3, rng: &rng)
        if quantized {
            let w = conv.weight.value
            let channelMax: [Float] = (0..<4).map { c in (0..<9).map { abs(w.data[c * 9 + $0]) }.max()! / 7 }
            conv.weightQuantizer = StandInQuantizer(name: "conv1.w",
                                                    scales: perChannelWeights ? channelMax : [channelMax.max()!])
            conv.inputQuantizer = StandInQuantizer(name: "conv1.a", scales: [0.25])
            fc.weightQuantizer = StandInQuantizer(name: "fc.w", scales: [fc.weight.value.maxAbs() / 7])
        }
        let featurizer = Sequential([("conv1", conv), ("bn1", bn), ("relu", ReLU()), ("avgpool", GlobalAvgPool())])
        return Tiny(network: Network(architecture: "tiny", inChannels: 1, classes: 3, featurizer: featurizer, classifier: fc),
                    conv: conv, bn: bn, fc: fc)
    }

    /// 24 random 1×6×6 images with labels in 0..<3.
    func makeData(seed: UInt64 = 3) -> (Tensor, [Int]) {
        var rng = RNG(seed: seed)
        return (rng.normalTensor([24, 1, 6, 6]), (0..<24).map { _ in rng.int(below: 3) })
    }

    /// Mean cross-entropy and percent correct in eval mode.
    func evaluator(_ net: Network, _ data: (Tensor, [Int])) -> () throws -> (loss: Double, accuracy: Double) {
        return {
            let r = softmaxCrossEntropy(logits: net.forward(data.0, .eval), labels: data.1)
            return (Double(r.loss), 100 * Double(r.correct) / Double(data.1.count))
        }
    }

    /// Deep copies (fresh storage) of every parameter and buffer value.
    func deepCopy(_ net: Network) -> [Tensor] {
        LandscapeState(module: net).values().map { Tensor(shape: $0.shape, data: $0.data.map { $0 }) }
    }

    func assertBitEqual(_ net: Network, _ saved: [Tensor], _ context: String, file: StaticString = #filePath, line: UInt = #line) {
        let now = LandscapeState(module: net).values()
        XCTAssertEqual(now.count, saved.count, context, file: file, line: line)
        for (i, (a, b)) in zip(now, saved).enumerated() {
            XCTAssertEqual(a.shape, b.shape, "\(context): entry \(i)", file: file, line: line)
            let differing = zip(a.data, b.data).filter { $0.bitPattern != $1.bitPattern }.count
            XCTAssertEqual(differing, 0, "\(context): entry \(i) (\(LandscapeState(module: net).name(at: i))) has \(differing) changed elements",
                           file: file, line: line)
        }
    }

    func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("landscape-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    // MARK: Grid and hash

    func testGridAxisIsLinspace() throws {
        let a = try GridAxis(parsing: "-1:1:5")
        XCTAssertEqual(a.values, [-1, -0.5, 0, 0.5, 1])
        let b = try GridAxis(-0.5, 1.5, count: 401)
        XCTAssertEqual(b.values.count, 401)
        XCTAssertEqual(b.values.last, 1.5)
        XCTAssertEqual(b.values[100], 0, accuracy: 1e-15)
        XCTAssertEqual(try GridAxis(0.3, 0.3, count: 1).values, [0.3])
        XCTAssertThrowsError(try GridAxis(1, -1, count: 5))
        XCTAssertThrowsError(try GridAxis(-1, 1, count: 0))
        XCTAssertThrowsError(try GridAxis(parsing: "-1:1"))
        XCTAssertThrowsError(try GridAxis(-1, 1, count: 1))
    }

    func testContentHashIsStreamingAndSensitive() {
        var rng = RNG(seed: 11)
        let bytes: [UInt8] = (0..<1000).map { _ in UInt8(rng.int(below: 256)) }
        func digest(_ pieces: [Range<Int>]) -> UInt64 {
            var h = ContentHasher()
            for r in pieces { Array(bytes[r]).withUnsafeBytes { h.combine(bytes: $0) } }
            return h.finalize()
        }
        let whole = digest([0..<1000])
        XCTAssertEqual(whole, digest([0..<3, 3..<40, 40..<41, 41..<999, 999..<1000]), "chunking must not change the hash")
        XCTAssertEqual(whole, digest([0..<1000]), "deterministic")
        // Every single-bit flip of a few positions changes the digest.
        var flipped = Set<UInt64>()
        for position in [0, 7, 31, 32, 500, 998, 999] {
            for bit in 0..<8 {
                var h = ContentHasher()
                var copy = bytes
                copy[position] ^= UInt8(1 << bit)
                copy.withUnsafeBytes { h.combine(bytes: $0) }
                let d = h.finalize()
                XCTAssertNotEqual(d, whole, "flip of bit \(bit) at byte \(position) not seen")
                flipped.insert(d)
            }
        }
        XCTAssertEqual(flipped.count, 56, "flips should give distinct digests")
        // Short inputs and length prefixes.
        var h1 = ContentHasher(), h2 = ContentHasher()
        h1.combine("ab"); h1.combine("c")
        h2.combine("a"); h2.combine("bc")
        XCTAssertNotEqual(h1.finalize(), h2.finalize())
        XCTAssertEqual(LandscapeKey(hex: LandscapeKey(value: 0x0123_4567_89ab_cdef).hex)?.value, 0x0123_4567_89ab_cdef)
        XCTAssertEqual(LandscapeKey(value: 5).hex, "0000000000000005")
    }

    // MARK: Directions

    func testFilterNormalisationAndBiasBNZero() throws {
        let tiny = makeTiny(quantized: true)
        let state = LandscapeState(module: tiny.network)
        let d = try LandscapeDirection.random(state: state, options: DirectionOptions(seed: 1), count: 1)[0]
        var checked = 0
        for i in 0..<state.count {
            let name = state.name(at: i), kind = state.kind(at: i), w = state.value(at: i)
            switch kind {
            case .weight:
                let dt = try XCTUnwrap(d.tensors[i], "\(name) must have a direction")
                let filters = w.shape[0], per = w.count / filters
                for f in 0..<filters {
                    let wn = (0..<per).reduce(0.0) { $0 + Double(w.data[f * per + $1]) * Double(w.data[f * per + $1]) }.squareRoot()
                    let dn = (0..<per).reduce(0.0) { $0 + Double(dt.data[f * per + $1]) * Double(dt.data[f * per + $1]) }.squareRoot()
                    XCTAssertEqual(dn, wn, accuracy: 1e-5 * wn, "\(name) filter \(f): ‖d_f‖ \(dn) vs ‖w_f‖ \(wn)")
                    checked += 1
                }
            case .bias, .normWeight, .normBias, .scale, .buffer:
                XCTAssertNil(d.tensors[i], "\(name) (\(kind)) must have a zero direction under biasbn / weights mode")
            }
        }
        XCTAssertEqual(checked, 4 + 3, "conv filters and fc rows")

        // Original without --xignore biasbn: d = w for ndim ≤ 1; normalised: |d_i| = |w_i|.
        let copy = try LandscapeDirection.random(state: state, options: DirectionOptions(seed: 1, smallTensors: .copy), count: 1)[0]
        let normalized = try LandscapeDirection.random(state: state, options: DirectionOptions(seed: 1, smallTensors: .normalized), count: 1)[0]
        for i in 0..<state.count where [.bias, .normWeight, .normBias].contains(state.kind(at: i)) {
            let w = state.value(at: i)
            XCTAssertEqual(copy.tensors[i], w, state.name(at: i))
            let n = try XCTUnwrap(normalized.tensors[i])
            for j in 0..<w.count { XCTAssertEqual(abs(n.data[j]), abs(w.data[j]), accuracy: 1e-6 * abs(w.data[j]) + 1e-12) }
        }
        // Weight entries are the same draw whatever the small-tensor option: one entry does not shift another.
        for i in 0..<state.count where state.kind(at: i) == .weight { XCTAssertEqual(copy.tensors[i], d.tensors[i]) }

        // Same seed, same direction; another seed, another; cosine by hand.
        let again = try LandscapeDirection.random(state: state, options: DirectionOptions(seed: 1), count: 2)
        XCTAssertEqual(again[0].tensors, d.tensors)
        XCTAssertNotEqual(again[1].tensors, d.tensors)
        var dot = 0.0, na = 0.0, nb = 0.0
        for i in 0..<state.count {
            guard let a = again[0].tensors[i], let b = again[1].tensors[i] else { continue }
            for j in 0..<a.count {
                dot += Double(a.data[j]) * Double(b.data[j]); na += Double(a.data[j] * a.data[j]); nb += Double(b.data[j] * b.data[j])
            }
        }
        let cosine = try XCTUnwrap(again[0].cosine(with: again[1]))
        XCTAssertEqual(cosine, dot / (na.squareRoot() * nb.squareRoot()), accuracy: 1e-6)
        XCTAssertLessThan(abs(cosine), 1)
    }

    // MARK: Surfaces

    func testPlaneValuesEqualDirectEvaluation() throws {
        let tiny = makeTiny(quantized: true)
        let data = makeData()
        let evaluate = evaluator(tiny.network, data)
        let options = DirectionOptions(seed: 5)
        let request = LandscapeRequest.plane(x: try GridAxis(-1, 1, count: 5), y: try GridAxis(-0.5, 0.5, count: 3),
                                             directions: options, evaluation: "tiny random 24")
        var reports: [LandscapeProgress] = []
        let result = try Landscape.compute(model: tiny.network, request: request, progress: { reports.append($0) }, evaluate: evaluate)
        let surface = result.surface
        XCTAssertTrue(surface.isComplete)
        XCTAssertEqual(result.evaluatedPoints, 15)
        XCTAssertEqual(surface.loss.count, 3, "rows are y")
        XCTAssertEqual(surface.loss[0].count, 5, "columns are x")
        XCTAssertEqual(reports.map(\.done), Array(1...15))
        XCTAssertTrue(reports.allSatisfy { $0.total == 15 })
        XCTAssertEqual(reports[6].alpha, -0.5)
        XCTAssertEqual(reports[6].beta, 0, "flat order is x fastest")
        XCTAssertNotNil(surface.cosine)

        // Set the weights by hand at a few points and evaluate directly.
        let state = LandscapeState(module: tiny.network)
        let saved = state.values()
        let dirs = try LandscapeDirection.random(state: state, options: options, count: 2)
        for (row, column) in [(0, 0), (1, 2), (2, 4), (0, 3), (1, 1)] {
            let a = Float(surface.alphas[column]), b = Float(surface.betas![row])
            for i in 0..<state.count {
                var v = saved[i]
                for j in 0..<v.count {
                    v.data[j] = saved[i].data[j] + a * (dirs[0].tensors[i]?.data[j] ?? 0) + b * (dirs[1].tensors[i]?.data[j] ?? 0)
                }
                state.setValue(v, at: i)
            }
            let direct = try evaluate()
            XCTAssertEqual(surface.loss[row][column], direct.loss, accuracy: 1e-12,
                           "point α \(a) β \(b): surface \(surface.loss[row][column]) vs direct \(direct.loss)")
            XCTAssertEqual(surface.accuracy[row][column], direct.accuracy)
            state.restore(saved)
        }
        // The centre is the unperturbed model, and the surface is not flat (the directions move something).
        XCTAssertEqual(surface.loss[1][2], try evaluate().loss)
        XCTAssertGreaterThan(surface.loss.flatMap { $0 }.max()! - surface.loss.flatMap { $0 }.min()!, 1e-3)
    }

    func testWeightsRestoredBitExactlyOnFinishStopAndError() throws {
        struct Boom: Error {}
        let tiny = makeTiny(quantized: true)
        let data = makeData()
        let evaluate = evaluator(tiny.network, data)
        let saved = deepCopy(tiny.network)
        let request = LandscapeRequest.plane(x: try GridAxis(-1, 1, count: 4), y: try GridAxis(-1, 1, count: 3),
                                             directions: DirectionOptions(target: .both, scales: .elementwise),
                                             evaluation: "e")
        // The closure also disturbs a buffer, as a training-mode forward would; every point must still
        // start from the saved buffers, and the end state must be the original.
        var meansSeen: [Float] = []
        _ = try Landscape.compute(model: tiny.network, request: request) {
            meansSeen.append(tiny.bn.runningMean.value.data[0])
            tiny.bn.runningMean.value.data[0] += 1
            return try evaluate()
        }
        XCTAssertEqual(Set(meansSeen), [saved[saved.count - 2].data[0]], "each point starts from the saved buffer")
        assertBitEqual(tiny.network, saved, "after a complete surface")

        var calls = 0
        let stopped = try Landscape.compute(model: tiny.network, request: request, shouldStop: { calls >= 5 }) {
            calls += 1
            return try evaluate()
        }
        XCTAssertFalse(stopped.completed)
        XCTAssertEqual(stopped.surface.completedPoints, 5)
        XCTAssertTrue(stopped.surface.loss[1][0].isFinite, "the 5th point (row 1, column 0) is kept")
        XCTAssertTrue(stopped.surface.loss[1][1].isNaN, "the 6th point was not evaluated")
        XCTAssertTrue(stopped.surface.loss[2][3].isNaN, "points not evaluated are NaN")
        assertBitEqual(tiny.network, saved, "after a stopped surface")

        calls = 0
        XCTAssertThrowsError(try Landscape.compute(model: tiny.network, request: request) {
            calls += 1
            if calls == 4 { throw Boom() }
            return try evaluate()
        }) { XCTAssertTrue($0 is Boom) }
        assertBitEqual(tiny.network, saved, "after an evaluation error")
    }

    func testScalesFixedInWeightsModeAndOnlyScalesMoveInScalesMode() throws {
        let tiny = makeTiny(quantized: true)
        let data = makeData()
        let evaluate = evaluator(tiny.network, data)
        let state = LandscapeState(module: tiny.network)
        let saved = deepCopy(tiny.network)
        let scaleIndices = (0..<state.count).filter { state.kind(at: $0) == .scale }
        let otherIndices = (0..<state.count).filter { state.kind(at: $0) != .scale }
        XCTAssertEqual(scaleIndices.map { state.name(at: $0) }, ["conv1.w.s", "conv1.a.s", "fc.w.s"])
        let axis = try GridAxis(-0.5, 0.5, count: 3)

        /// Runs a line and records, at every point, which entries differ from the saved values.
        func movedEntries(_ options: DirectionOptions) throws -> [Set<String>] {
            var moved: [Set<String>] = []
            _ = try Landscape.compute(model: tiny.network, request: .line(axis, directions: options, evaluation: "e")) {
                let now = state.values()
                moved.append(Set((0..<state.count).filter { now[$0] != saved[$0] }.map { state.name(at: $0) }))
                return try evaluate()
            }
            assertBitEqual(tiny.network, saved, "after \(options)")
            return moved
        }

        let weights = try movedEntries(DirectionOptions(seed: 2, target: .weights))
        XCTAssertEqual(weights[1], [], "α = 0 is the trained model")
        XCTAssertEqual(weights[0], ["conv1.weight", "fc.weight"], "weights mode moves weights (ndim > 1) only, scales fixed")

        // Authors' scales mode: only per-channel scales (count > 1) move; per-tensor ones have zero
        // direction under biasbn; weights untouched.
        let authors = try movedEntries(DirectionOptions(seed: 2, target: .scales))
        XCTAssertEqual(authors[0], ["conv1.w.s"])
        XCTAssertEqual(authors[2], ["conv1.w.s"])
        let d = try LandscapeDirection.random(state: state, options: DirectionOptions(seed: 2, target: .scales), count: 1)[0]
        let perChannel = try XCTUnwrap(d.tensors[scaleIndices[0]])
        for c in 0..<4 {
            XCTAssertEqual(abs(perChannel.data[c]), abs(saved[scaleIndices[0]].data[c]), accuracy: 1e-6,
                           "each per-channel step moves by ±|s_c| per unit α (filter normalisation of a (C,1,1,1) tensor)")
        }
        for i in otherIndices { XCTAssertNil(d.tensors[i], "\(state.name(at: i)) must not move in scales mode") }

        // Elementwise: every scale moves, still nothing else.
        let elementwise = try movedEntries(DirectionOptions(seed: 2, target: .scales, scales: .elementwise))
        XCTAssertEqual(elementwise[0], ["conv1.w.s", "conv1.a.s", "fc.w.s"])

        // Both.
        let both = try movedEntries(DirectionOptions(seed: 2, target: .both))
        XCTAssertEqual(both[0], ["conv1.weight", "fc.weight", "conv1.w.s"])

        // Only per-tensor scales + authors + ignore: nothing to move, said clearly.
        let perTensor = makeTiny(quantized: true, perChannelWeights: false)
        XCTAssertThrowsError(try Landscape.compute(model: perTensor.network,
                                                   request: .line(axis, directions: DirectionOptions(target: .scales), evaluation: "e"),
                                                   evaluate: evaluator(perTensor.network, data))) { error in
            guard case LandscapeError.emptyDirection(let message)? = error as? LandscapeError else {
                return XCTFail("expected emptyDirection, got \(error)")
            }
            XCTAssertTrue(message.contains("elementwise"), message)
        }
    }

    // MARK: Interpolation

    func testInterpolationEndpointsReproduceBothModels() throws {
        let first = makeTiny(seed: 7, quantized: true)
        let second = makeTiny(seed: 8, quantized: true)
        let data = makeData()
        let lossFirst = try evaluator(first.network, data)()
        let lossSecond = try evaluator(second.network, data)()
        XCTAssertNotEqual(lossFirst.loss, lossSecond.loss)
        let saved = deepCopy(first.network)
        let request = LandscapeRequest.interpolation(try GridAxis(-0.5, 1.5, count: 5), evaluation: "e")
        var atOne: [Tensor] = []
        let result = try Landscape.compute(model: first.network, request: request, endpoint: second.network.stateDict()) {
            if atOne.isEmpty, first.network.parameters[0].value == second.network.parameters[0].value {
                atOne = LandscapeState(module: first.network).values()
            }
            return try self.evaluator(first.network, data)()
        }
        let s = result.surface
        XCTAssertEqual(s.alphas, [-0.5, 0, 0.5, 1, 1.5])
        XCTAssertEqual(s.loss[0][1], lossFirst.loss, "α = 0 is the first model")
        XCTAssertEqual(s.loss[0][3], lossSecond.loss, "α = 1 is the second model")
        XCTAssertEqual(s.accuracy[0][3], lossSecond.accuracy)
        XCTAssertEqual(atOne, LandscapeState(module: second.network).values(), "α = 1 sets every tensor, buffers and scales included, to θ₂")
        assertBitEqual(first.network, saved, "after interpolation")

        // A missing tensor in the endpoint is named.
        var partial = second.network.stateDict()
        partial["bn1.running_var"] = nil
        XCTAssertThrowsError(try Landscape.compute(model: first.network, request: request, endpoint: partial,
                                                   evaluate: evaluator(first.network, data))) { error in
            XCTAssertTrue("\(error)".contains("bn1.running_var"), "\(error)")
        }
        XCTAssertThrowsError(try Landscape.compute(model: first.network, request: request, evaluate: evaluator(first.network, data)))
    }

    // MARK: Cache

    func testCacheHitsForSameInputsAndMissesAfterAnyChange() throws {
        let tiny = makeTiny(quantized: true)
        let data = makeData()
        let evaluate = evaluator(tiny.network, data)
        let cache = LandscapeCache(directory: try temporaryDirectory())
        let request = LandscapeRequest.plane(x: try GridAxis(-1, 1, count: 3), y: try GridAxis(-1, 1, count: 3),
                                             evaluation: "tiny 24", model: "tiny 4-bit")
        var evaluations = 0
        func run(_ r: LandscapeRequest = request, shouldStop: (() -> Bool)? = nil) throws -> LandscapeResult {
            try Landscape.compute(model: tiny.network, request: r, cache: cache, shouldStop: shouldStop) {
                evaluations += 1
                return try evaluate()
            }
        }
        let fresh = try run()
        XCTAssertFalse(fresh.cacheHit)
        XCTAssertEqual(evaluations, 9)
        XCTAssertTrue(FileManager.default.fileExists(atPath: try XCTUnwrap(fresh.cacheFile).path))

        evaluations = 0
        let hit = try run()
        XCTAssertTrue(hit.cacheHit)
        XCTAssertEqual(evaluations, 0)
        XCTAssertEqual(hit.surface.loss, fresh.surface.loss)
        XCTAssertEqual(hit.surface.key, fresh.surface.key)

        // One ulp in one weight, one buffer element, one scale: each must miss.
        let changes: [(String, () -> Void, () -> Void)] = [
            ("weight", { tiny.conv.weight.value.data[5] = tiny.conv.weight.value.data[5].nextUp },
                       { tiny.conv.weight.value.data[5] = tiny.conv.weight.value.data[5].nextDown }),
            ("buffer", { tiny.bn.runningVar.value.data[2] = tiny.bn.runningVar.value.data[2].nextUp },
                       { tiny.bn.runningVar.value.data[2] = tiny.bn.runningVar.value.data[2].nextDown }),
            ("scale", { let q = tiny.conv.inputQuantizer as! StandInQuantizer; q.scale.value.data[0] = q.scale.value.data[0].nextUp },
                      { let q = tiny.conv.inputQuantizer as! StandInQuantizer; q.scale.value.data[0] = q.scale.value.data[0].nextDown }),
        ]
        for (what, change, undo) in changes {
            change()
            evaluations = 0
            let r = try run()
            XCTAssertFalse(r.cacheHit, "a changed \(what) must not reuse the cached surface")
            XCTAssertEqual(evaluations, 9, what)
            XCTAssertNotEqual(r.surface.key, fresh.surface.key, what)
            undo()
        }
        evaluations = 0
        XCTAssertTrue(try run().cacheHit, "back to the original tensors: hit again")

        var other = request
        other.evaluation = "tiny 24 val"
        XCTAssertFalse(try run(other).cacheHit, "another evaluation set")
        other = request
        other.model = "tiny 3-bit"
        XCTAssertFalse(try run(other).cacheHit, "another model descriptor")
        other = request
        other.directions.seed = 1
        XCTAssertFalse(try run(other).cacheHit, "another seed")
        other = request
        other.x = try GridAxis(-1, 1, count: 5)
        XCTAssertFalse(try run(other).cacheHit, "another grid")

        // A stopped surface is cached and resumed; the result equals a fresh full computation.
        var resumeRequest = request
        resumeRequest.evaluation = "resume"
        evaluations = 0
        let partial = try run(resumeRequest, shouldStop: { evaluations >= 4 })
        XCTAssertEqual(partial.surface.completedPoints, 4)
        evaluations = 0
        let resumed = try run(resumeRequest)
        XCTAssertEqual(resumed.resumedPoints, 4)
        XCTAssertEqual(evaluations, 5)
        XCTAssertEqual(resumed.surface.loss, fresh.surface.loss, "resumed surface equals the fresh one")
        XCTAssertEqual(resumed.surface.accuracy, fresh.surface.accuracy)

        // A corrupted file is ignored (recomputed), never trusted.
        try Data("{not json".utf8).write(to: try XCTUnwrap(fresh.cacheFile))
        evaluations = 0
        XCTAssertFalse(try run().cacheHit)
        XCTAssertEqual(evaluations, 9)
    }

    // MARK: Flatness

    /// L = 1 + α² + β², A = 90 − 4(α² + β²) on -1:1:5 in both axes.
    func quadraticSurface(columns: Int = 5, rows: Int? = 5) throws -> LandscapeSurface {
        let x = try GridAxis(-1, 1, count: columns)
        let request = rows == nil ? LandscapeRequest.line(x, evaluation: "quadratic")
                                  : LandscapeRequest.plane(x: x, y: try GridAxis(-1, 1, count: rows!), evaluation: "quadratic")
        var s = LandscapeSurface(key: LandscapeKey(value: 1), request: request)
        for k in 0..<s.totalPoints {
            let p = s.point(k)
            let r2 = p.alpha * p.alpha + p.beta * p.beta
            s.loss[p.row][p.column] = 1 + r2
            s.accuracy[p.row][p.column] = 90 - 4 * r2
        }
        s.completedPoints = s.totalPoints
        return s
    }

    func testFlatnessOnAQuadraticSurface() throws {
        let report = try quadraticSurface().flatness(radii: [0.5, 0.75, 1.0])
        XCTAssertEqual(report.centreLoss, 1)
        XCTAssertEqual(report.centreAccuracy, 90)
        XCTAssertEqual(report.centreAlpha, 0)
        // r = 0.5: the 4 axis neighbours at distance 0.5 (ΔL 0.25, ΔA −1: retained at tolerance 1).
        XCTAssertEqual(report.radii[0].points, 4)
        XCTAssertEqual(report.radii[0].maximumLossIncrease, 0.25, accuracy: 1e-12)
        XCTAssertEqual(report.radii[0].meanLossIncrease, 0.25, accuracy: 1e-12)
        XCTAssertEqual(report.radii[0].accuracyRetention, 1)
        // r = 0.75: plus the 4 diagonals at 0.707 (ΔL 0.5, ΔA −2).
        XCTAssertEqual(report.radii[1].points, 8)
        XCTAssertEqual(report.radii[1].maximumLossIncrease, 0.5, accuracy: 1e-12)
        XCTAssertEqual(report.radii[1].meanLossIncrease, 0.375, accuracy: 1e-12)
        XCTAssertEqual(report.radii[1].accuracyRetention, 0.5)
        // r = 1: plus (±1, 0), (0, ±1) (ΔL 1).
        XCTAssertEqual(report.radii[2].points, 12)
        XCTAssertEqual(report.radii[2].maximumLossIncrease, 1, accuracy: 1e-12)
        XCTAssertEqual(report.radii[2].meanLossIncrease, 7.0 / 12, accuracy: 1e-12)
        XCTAssertEqual(report.radii[2].accuracyRetention, 4.0 / 12, accuracy: 1e-12)

        // 1-D: along the line.
        let line = try quadraticSurface(columns: 9, rows: nil).flatness(radii: [0.25, 1])
        XCTAssertEqual(line.dimension, 1)
        XCTAssertEqual(line.radii[0].points, 2)
        XCTAssertEqual(line.radii[0].maximumLossIncrease, 0.0625, accuracy: 1e-12)
        XCTAssertEqual(line.radii[1].points, 8)
        XCTAssertEqual(line.radii[1].meanLossIncrease, 2 * (0.0625 + 0.25 + 0.5625 + 1) / 8, accuracy: 1e-12)

        // A sharper surface scores worse in the table.
        var sharp = try quadraticSurface()
        for r in 0..<5 { for c in 0..<5 { sharp.loss[r][c] = 1 + 3 * (sharp.loss[r][c] - 1) } }
        let sharpReport = try sharp.flatness(radii: [0.5, 0.75, 1.0])
        XCTAssertEqual(sharpReport.radii[2].maximumLossIncrease, 3, accuracy: 1e-12)
        let table = FlatnessReport.table([("flat", report), ("sharp", sharpReport)])
        XCTAssertTrue(table.contains("max ΔL r=0.5"), table)
        XCTAssertEqual(table.split(separator: "\n").count, 4, table)
        // The one-line caption printed under each landscape panel.
        XCTAssertEqual(report.caption, "centre 1, 90.0% | max ΔL r=0.5 0.25, r=0.75 0.5, r=1 1")
        XCTAssertEqual(sharpReport.caption, "centre 1, 90.0% | max ΔL r=0.5 0.75, r=0.75 1.5, r=1 3")
        let coarse = try quadraticSurface().flatness(radii: [0.1, 1])
        XCTAssertEqual(coarse.caption, "centre 1, 90.0% | max ΔL r=0.1 –, r=1 1", "no grid point within 0.1")

        // A stopped surface without its centre cannot be summarised; bad radii are refused.
        var stopped = try quadraticSurface()
        stopped.completedPoints = 12
        XCTAssertThrowsError(try stopped.flatness())
        XCTAssertThrowsError(try quadraticSurface().flatness(radii: [0]))
        // A diverged point counts as an infinite increase.
        var diverged = try quadraticSurface()
        diverged.loss[2][3] = .nan
        XCTAssertEqual(try diverged.flatness(radii: [0.5]).radii[0].maximumLossIncrease, .infinity)
    }

    // MARK: CSV and files

    func testCSVAndSurfaceFileRoundTrip() throws {
        var plane = try quadraticSurface(columns: 2, rows: 2)
        plane.completedPoints = 3
        plane.loss[1][1] = .nan
        plane.accuracy[1][1] = .nan
        XCTAssertEqual(plane.csv(), """
            alpha,beta,loss,accuracy
            -1.0,-1.0,3.0,82.0
            1.0,-1.0,3.0,82.0
            -1.0,1.0,3.0,82.0
            1.0,1.0,nan,nan

            """)
        XCTAssertEqual(plane.csv(blankLineBetweenRows: true).components(separatedBy: "\n\n").count, 2)
        let line = try quadraticSurface(columns: 3, rows: nil)
        XCTAssertEqual(line.csv(), "alpha,loss,accuracy\n-1.0,2.0,86.0\n0.0,1.0,90.0\n1.0,2.0,86.0\n")

        let dir = try temporaryDirectory()
        try line.writeCSV(to: dir.appendingPathComponent("line.csv"))
        XCTAssertEqual(try String(contentsOf: dir.appendingPathComponent("line.csv"), encoding: .utf8), line.csv())
        let file = dir.appendingPathComponent("plane.json")
        try LandscapeCache.write(plane, to: file)
        let back = try LandscapeCache.read(file)
        XCTAssertEqual(back.alphas, plane.alphas)
        XCTAssertEqual(back.completedPoints, 3)
        XCTAssertTrue(back.loss[1][1].isNaN)
        XCTAssertEqual(back.loss[0], plane.loss[0])
        XCTAssertEqual(back.request, plane.request)
    }
}
