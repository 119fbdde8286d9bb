// Evaluation of every domain's in and out splits in eval mode (DomainBed protocol, docs/data.md §6):
// Val (I.D) = mean out-split accuracy over training domains; Test (OOD) = accuracy on each test
// domain's in split.
import Datasets
import NN
import TensorCore

/// Accuracy and mean cross-entropy of one split.
public struct SplitResult: Equatable, Sendable {
    public var domain: Int
    public var part: SplitPart
    public var correct: Int
    public var count: Int
    public var lossSum: Double

    public var accuracy: Double { count == 0 ? .nan : Double(correct) / Double(count) }
    public var loss: Double { count == 0 ? .nan : lossSum / Double(count) }
    /// Binomial standard error of the accuracy.
    public var standardError: Double {
        guard count > 0 else { return .nan }
        let p = accuracy
        return (p * (1 - p) / Double(count)).squareRoot()
    }
}

public enum Evaluator {
    /// Runs the model in eval mode over one evaluation set. `shouldStop` is polled between batches.
    public static func evaluate(_ network: Module, dataset: DomainDataset, set: EvaluationSet,
                                batchSize: Int = 256, shouldStop: () -> Bool = { false }) throws -> SplitResult {
        var result = SplitResult(domain: set.domain, part: set.part, correct: 0, count: 0, lossSum: 0)
        var it = set.batches(of: dataset, batchSize: batchSize)
        while let batch = try it.next() {
            if shouldStop() { throw TrainingError.interrupted(step: 0) }
            let logits = network.forward(batch.images, .eval)
            let (loss, _, correct) = softmaxCrossEntropy(logits: logits, labels: batch.labels)
            result.correct += correct
            result.count += batch.labels.count
            result.lossSum += Double(loss) * Double(batch.labels.count)
        }
        return result
    }

    /// Evaluates every domain's in and out split and folds them into a DomainBed-shaped record.
    /// `trainingInSplits: false` leaves out the training domains' in splits (the images they train
    /// on), which neither train-domain validation, the OOD score nor the oracle reads.
    public static func record(_ network: Module, dataset: DomainDataset, splits: [DomainSplit],
                              environments: EnvironmentAssignment, step: Int, batchSize: Int = 256,
                              trainingInSplits: Bool = true,
                              shouldStop: () -> Bool = { false }) throws -> (EvalRecord, [SplitResult]) {
        var inAcc: [Int: Double] = [:], outAcc: [Int: Double] = [:]
        var metrics: [String: Double] = [:]
        var results: [SplitResult] = []
        let testDomains = Set(environments.testDomains)
        for set in EvaluationSet.all(splits: splits) where !set.indices.isEmpty {
            if !trainingInSplits && set.part == .in && !testDomains.contains(set.domain) { continue }
            let r = try evaluate(network, dataset: dataset, set: set, batchSize: batchSize, shouldStop: shouldStop)
            results.append(r)
            switch set.part {
            case .in: inAcc[set.domain] = r.accuracy
            case .out: outAcc[set.domain] = r.accuracy
            }
            metrics["env\(set.domain)_\(set.part.rawValue)_loss"] = r.loss
        }
        let record = EvalRecord(step: step, inAccuracy: inAcc, outAccuracy: outAcc,
                                testDomains: environments.testDomains, metrics: metrics)
        return (record, results)
    }
}

extension EvalRecord {
    /// Val: mean out-split accuracy over the training domains (train-domain validation, I.D).
    public var validationAccuracy: Double {
        let ds = trainingDomains.compactMap { outAccuracy[$0] }
        return ds.isEmpty ? .nan : ds.reduce(0, +) / Double(ds.count)
    }

    /// Test: mean in-split accuracy over the test domains (OOD).
    public var testAccuracy: Double {
        let ds = testDomains.compactMap { inAccuracy[$0] }
        return ds.isEmpty ? .nan : ds.reduce(0, +) / Double(ds.count)
    }
}
