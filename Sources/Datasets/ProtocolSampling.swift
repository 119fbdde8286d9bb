// Training batches and evaluation sets (docs/data.md §6, Training batches).
//
// DomainBed keeps one InfiniteDataLoader per training domain over that domain's in-split, with
// RandomSampler(replacement=True) + BatchSampler(drop_last=True): every batch is `batch`
// independent uniform draws from the split. Each step takes one batch from every training domain
// and concatenates them in domain order, giving [B·D, C, H, W]. Here each domain's sampler has its
// own RNG stream and augmentation draws come from a separate stream, so the whole sampler state is a
// few RNG states: `TrainingSamplerState` is Codable and resuming it continues the exact sequence.
import Foundation
import TensorCore

/// Everything needed to continue a training-batch sequence exactly.
public struct TrainingSamplerState: Codable, Equatable, Sendable {
    public var trainingDomains: [Int]
    /// Size of each training domain's in-split, checked on resume.
    public var poolSizes: [Int]
    public var batchPerDomain: Int
    /// Apply the training augmentation (file-backed data sets only).
    public var augment: Bool
    /// One index stream per training domain.
    public var domainRNGs: [RNG]
    /// The stream augmentation seeds are drawn from.
    public var augmentationRNG: RNG
    /// Batches produced so far.
    public var step: Int
}

/// One infinite with-replacement sampler per training domain.
public struct TrainingSampler: Sendable {
    public private(set) var state: TrainingSamplerState
    /// In-split positions of each training domain.
    public let pools: [[Int]]

    /// Samples the in-splits of `trainingDomains`; `seed` fixes the whole sequence.
    public init(splits: [DomainSplit], trainingDomains: [Int], batchPerDomain: Int, seed: UInt64, augment: Bool = true) {
        precondition(batchPerDomain > 0, "batchPerDomain must be positive")
        precondition(!trainingDomains.isEmpty, "TrainingSampler needs at least one training domain")
        for d in trainingDomains {
            precondition(d >= 0 && d < splits.count, "training domain \(d) of \(splits.count) splits")
            precondition(!splits[d].inIndices.isEmpty, "training domain \(d) has an empty in-split")
        }
        var root = RNG(seed: seed)
        let streams = trainingDomains.map { _ in root.split() }
        pools = trainingDomains.map { splits[$0].inIndices }
        state = TrainingSamplerState(trainingDomains: trainingDomains, poolSizes: pools.map(\.count),
                                     batchPerDomain: batchPerDomain, augment: augment, domainRNGs: streams,
                                     augmentationRNG: root.split(), step: 0)
    }

    /// Continues from a saved state over the same splits.
    public init(resuming state: TrainingSamplerState, splits: [DomainSplit]) throws {
        guard state.domainRNGs.count == state.trainingDomains.count else {
            throw DatasetError.samplerMismatch(reason: "\(state.domainRNGs.count) streams for \(state.trainingDomains.count) training domains")
        }
        for (k, d) in state.trainingDomains.enumerated() {
            guard d >= 0 && d < splits.count else {
                throw DatasetError.samplerMismatch(reason: "training domain \(d) but the data has \(splits.count) domains")
            }
            guard splits[d].inIndices.count == state.poolSizes[k] else {
                throw DatasetError.samplerMismatch(reason: "domain \(d)'s in-split has \(splits[d].inIndices.count) examples, the state was saved with \(state.poolSizes[k])")
            }
        }
        self.state = state
        self.pools = state.trainingDomains.map { splits[$0].inIndices }
    }

    /// The next step's positions per training domain (each `batchPerDomain` uniform draws with
    /// replacement from the domain's in-split); advances the state.
    public mutating func nextIndices() -> [[Int]] {
        var out: [[Int]] = []
        for k in pools.indices {
            let pool = pools[k]
            var draws = [Int]()
            draws.reserveCapacity(state.batchPerDomain)
            for _ in 0..<state.batchPerDomain { draws.append(pool[state.domainRNGs[k].int(below: pool.count)]) }
            out.append(draws)
        }
        state.step += 1
        return out
    }

    /// The next training batch: [batchPerDomain · D, C, H, W] in training-domain order, with labels.
    public mutating func next(from dataset: DomainDataset) throws -> LabeledBatch {
        let perDomain = nextIndices()
        let size = dataset.imageSize
        let total = perDomain.reduce(0) { $0 + $1.count }
        var images = Tensor(shape: [total] + dataset.imageShape)
        var labels: [Int] = []
        labels.reserveCapacity(total)
        var row = 0
        try images.data.withUnsafeMutableBufferPointer { out in
            for (k, indices) in perDomain.enumerated() {
                let domain = state.trainingDomains[k]
                try dataset.fill(domain: domain, indices: indices, augment: state.augment, rng: &state.augmentationRNG,
                                 into: out.baseAddress! + row * size)
                labels += indices.map { dataset.domains[domain].labels[$0] }
                row += indices.count
            }
        }
        return LabeledBatch(images: images, labels: labels)
    }
}

/// One evaluation set: a domain's in or out split, named as DomainBed names its loaders.
public struct EvaluationSet: Equatable, Sendable {
    public var domain: Int
    public var part: SplitPart
    public var indices: [Int]
    /// "env0_in", "env0_out", …
    public var name: String { "env\(domain)_\(part.rawValue)" }

    public init(domain: Int, part: SplitPart, indices: [Int]) {
        self.domain = domain; self.part = part; self.indices = indices
    }

    /// Every domain's in split, then every domain's out split (DomainBed's loader order).
    public static func all(splits: [DomainSplit]) -> [EvaluationSet] {
        splits.enumerated().map { EvaluationSet(domain: $0.offset, part: .in, indices: $0.element.inIndices) }
            + splits.enumerated().map { EvaluationSet(domain: $0.offset, part: .out, indices: $0.element.outIndices) }
    }

    /// Batches of this set in order, without augmentation.
    public func batches(of dataset: DomainDataset, batchSize: Int = 128) -> EvaluationIterator {
        EvaluationIterator(dataset: dataset, set: self, batchSize: batchSize)
    }
}

/// Walks an evaluation set in batches of up to `batchSize` (the last may be smaller).
public struct EvaluationIterator: Sendable {
    public let dataset: DomainDataset
    public let set: EvaluationSet
    public let batchSize: Int
    public private(set) var position = 0

    public init(dataset: DomainDataset, set: EvaluationSet, batchSize: Int) {
        precondition(batchSize > 0, "evaluation batchSize must be positive")
        self.dataset = dataset; self.set = set; self.batchSize = batchSize
    }

    /// The next batch, or nil at the end.
    public mutating func next() throws -> LabeledBatch? {
        guard position < set.indices.count else { return nil }
        let end = min(position + batchSize, set.indices.count)
        let batch = try dataset.batch(domain: set.domain, indices: Array(set.indices[position..<end]))
        position = end
        return batch
    }
}

/// Wall-clock cost of preparing training batches (for fqat-bench).
public struct BatchPreparationTiming: Equatable, Sendable {
    public var batches: Int
    public var imagesPerBatch: Int
    public var totalSeconds: Double
    public var secondsPerBatch: Double { totalSeconds / Double(max(batches, 1)) }
    public var imagesPerSecond: Double { Double(batches * imagesPerBatch) / max(totalSeconds, 1e-12) }
}

extension TrainingSampler {
    /// Prepares `batches` batches from `dataset` and measures the wall-clock time (advances the sampler).
    public mutating func timeBatchPreparation(dataset: DomainDataset, batches: Int) throws -> BatchPreparationTiming {
        precondition(batches > 0, "time at least one batch")
        let start = DispatchTime.now().uptimeNanoseconds
        var imagesPerBatch = 0
        for _ in 0..<batches { imagesPerBatch = try next(from: dataset).labels.count }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return BatchPreparationTiming(batches: batches, imagesPerBatch: imagesPerBatch, totalSeconds: seconds)
    }
}
