import XCTest
@testable import Datasets
import TensorCore

final class SamplerTests: XCTestCase {
    /// Three domains whose images encode (domain, position) so batches can be checked exactly.
    func makeDataset() -> DomainDataset {
        let sizes = [50, 80, 30]
        let domains = sizes.enumerated().map { d, n -> Domain in
            var t = Tensor(shape: [n, 1, 2, 2])
            for i in 0..<n { for p in 0..<4 { t.data[i * 4 + p] = Float(d * 1000 + i) } }
            return Domain(name: "d\(d)", labels: (0..<n).map { ($0 + d) % 3 }, images: .memory(t))
        }
        return DomainDataset(name: "toy", classNames: ["a", "b", "c"], imageShape: [1, 2, 2], domains: domains)
    }

    func testBatchesConcatenateOneBatchPerTrainingDomain() throws {
        let data = makeDataset()
        let splits = data.domainBedSplits(trialSeed: 0)
        let env = try EnvironmentAssignment(testDomainNames: ["d1"], in: data)
        XCTAssertEqual(env.trainingDomains, [0, 2])
        var sampler = TrainingSampler(splits: splits, trainingDomains: env.trainingDomains, batchPerDomain: 8, seed: 1)
        let batch = try sampler.next(from: data)
        XCTAssertEqual(batch.images.shape, [16, 1, 2, 2])
        for row in 0..<16 {
            let value = Int(batch.images.data[row * 4])
            let domain = value / 1000, position = value % 1000
            XCTAssertEqual(domain, row < 8 ? 0 : 2, "rows are grouped by training domain")
            XCTAssertTrue(splits[domain].inIndices.contains(position), "draws come from the in-split only")
            XCTAssertEqual(batch.labels[row], data.domains[domain].labels[position])
        }
        XCTAssertEqual(sampler.state.step, 1)
    }

    func testSamplingIsUniformWithReplacement() {
        let splits = [DomainSplit(inIndices: Array(0..<10), outIndices: [])]
        var sampler = TrainingSampler(splits: splits, trainingDomains: [0], batchPerDomain: 50, seed: 3)
        var counts = [Int](repeating: 0, count: 10)
        var sawRepeat = false
        for _ in 0..<200 {
            let draws = sampler.nextIndices()[0]
            if Set(draws).count < draws.count { sawRepeat = true }
            for i in draws { counts[i] += 1 }
        }
        XCTAssertTrue(sawRepeat, "with replacement, a batch of 50 from 10 repeats")
        // 10,000 draws: each count ≈ 1000 ± 30 (sd); allow 5 sd.
        for c in counts { XCTAssertEqual(Double(c), 1000, accuracy: 150) }
    }

    func testDeterministicAndResumableThroughCodableState() throws {
        let data = makeDataset()
        let splits = data.domainBedSplits(trialSeed: 23)
        var a = TrainingSampler(splits: splits, trainingDomains: [0, 1], batchPerDomain: 5, seed: 42)
        var b = TrainingSampler(splits: splits, trainingDomains: [0, 1], batchPerDomain: 5, seed: 42)
        var c = TrainingSampler(splits: splits, trainingDomains: [0, 1], batchPerDomain: 5, seed: 43)
        for _ in 0..<3 { XCTAssertEqual(a.nextIndices(), b.nextIndices()) }
        XCTAssertNotEqual(a.nextIndices(), c.nextIndices())
        _ = b.nextIndices()

        // Save, continue, then resume the saved state and compare the continuations.
        let saved = try JSONEncoder().encode(a.state)
        let continued = (0..<4).map { _ in a.nextIndices() }
        let restored = try JSONDecoder().decode(TrainingSamplerState.self, from: saved)
        var resumed = try TrainingSampler(resuming: restored, splits: splits)
        XCTAssertEqual((0..<4).map { _ in resumed.nextIndices() }, continued)
        XCTAssertEqual(resumed.state, a.state)

        // A state from other splits is refused with a reason.
        let otherSplits = data.domainBedSplits(trialSeed: 23, holdoutFraction: 0.5)
        assertDatasetError(try TrainingSampler(resuming: restored, splits: otherSplits),
                           contains: ["in-split has 25 examples", "saved with 40"])
    }

    func testEvaluationSetsAndIterator() throws {
        let data = makeDataset()
        let splits = data.domainBedSplits(trialSeed: 0)
        let sets = EvaluationSet.all(splits: splits)
        XCTAssertEqual(sets.map(\.name), ["env0_in", "env1_in", "env2_in", "env0_out", "env1_out", "env2_out"])
        XCTAssertEqual(sets[4].indices.count, 16)   // int(80 * 0.2)
        var iterator = sets[1].batches(of: data, batchSize: 25)
        var seen: [Int] = []
        var sizes: [Int] = []
        while let batch = try iterator.next() {
            sizes.append(batch.labels.count)
            for r in 0..<batch.labels.count { seen.append(Int(batch.images.data[r * 4]) - 1000) }
        }
        XCTAssertEqual(sizes, [25, 25, 14])
        XCTAssertEqual(seen, splits[1].inIndices)
    }

    func testEnvironmentAssignments() throws {
        let data = makeDataset()
        XCTAssertEqual(EnvironmentAssignment.leaveOneDomainOut(domainCount: 3).map(\.testDomains), [[0], [1], [2]])
        let groups = try EnvironmentAssignment.leaveOneGroupOut(groups: [["d0", "d2"], ["d1"]], in: data)
        XCTAssertEqual(groups.map(\.testDomains), [[0, 2], [1]])
        XCTAssertEqual(groups[0].trainingDomains, [1])
        assertDatasetError(try EnvironmentAssignment(testDomainNames: ["d9"], in: data),
                           contains: ["unknown domain \"d9\"", "\"d0\", \"d1\", \"d2\""])
        assertDatasetError(try EnvironmentAssignment(testDomains: [0, 1, 2], domainCount: 3), contains: ["at least one domain left for training"])
        assertDatasetError(try EnvironmentAssignment.leaveOneGroupOut(groups: [["d0"], ["d0", "d1"]], in: data),
                           contains: ["each domain in at most one group"])
        // Case-insensitive names are accepted when unambiguous.
        XCTAssertEqual(try EnvironmentAssignment(testDomainNames: ["D2"], in: data).testDomains, [2])
    }

    func testBatchPreparationTiming() throws {
        let data = makeDataset()
        var sampler = TrainingSampler(splits: data.domainBedSplits(trialSeed: 0), trainingDomains: [0, 1, 2], batchPerDomain: 4, seed: 0)
        let timing = try sampler.timeBatchPreparation(dataset: data, batches: 5)
        XCTAssertEqual(timing.batches, 5)
        XCTAssertEqual(timing.imagesPerBatch, 12)
        XCTAssertEqual(sampler.state.step, 5)
        XCTAssertGreaterThan(timing.totalSeconds, 0)
    }
}
