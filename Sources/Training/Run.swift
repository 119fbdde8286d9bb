// A training run on the DomainBed protocol: batches from every training domain, one step of the
// chosen method (Optim.FQATStepper), evaluation of every domain every `evalEvery` steps, records
// and train-domain-validation selection. A run can be paused (the caller stops asking for steps,
// or `shouldStop` answers true) and continued; `checkpoint()` holds everything needed to continue
// exactly. The engine prints nothing: progress goes to the caller's callback.
import Datasets
import Foundation
import NN
import Optim
import TensorCore

/// What the caller is told after each step and each evaluation.
public enum RunEvent {
    case step(StepReport, elapsed: Double)
    case evaluation(EvalRecord, [SplitResult])
}

/// Summary of a `train` call.
public struct TrainSummary: Sendable {
    public var stepsRun: Int
    public var finalStep: Int
    public var lastLoss: Float
    public var meanLoss: Double
    public var seconds: Double
    public var imagesPerSecond: Double
    public var interrupted: Bool
    public var lastRecord: EvalRecord?
    public var selected: Selection?
}

public final class Run {
    public let network: Network
    public let dataset: DomainDataset
    public let environments: EnvironmentAssignment
    public let splits: [DomainSplit]
    public let method: TrainingMethod
    public private(set) var hyperparameters: Hyperparameters
    public let stepper: FQATStepper
    public private(set) var sampler: TrainingSampler
    /// Every evaluation of this run, in order.
    public private(set) var records: [EvalRecord] = []
    /// DomainBed `args` written into every record (dataset, algorithm, seeds, …).
    public var recordArgs: [String: RecordValue]
    /// Where the starting weights came from, written into every record.
    public var provenance: [String: RecordValue]
    let dropoutRNG: RNGBox
    public let seed: UInt64
    public let trialSeed: Int

    /// Steps taken so far in this run.
    public var step: Int { stepper.stepsTaken }
    public var scales: [Parameter] { stepper.scales }

    public init(network: Network, dataset: DomainDataset, environments: EnvironmentAssignment,
                method: TrainingMethod, hyperparameters: Hyperparameters, seed: UInt64, trialSeed: Int = 0,
                provenance: [String: RecordValue] = [:], traceRecentSteps: Int? = 2000) throws {
        try hyperparameters.validate()
        guard !environments.trainingDomains.isEmpty else { throw TrainingError.noTrainingDomains }
        let all = network.parameters
        let scales = all.filter { $0.kind == .scale }
        if method.isQuantized && scales.isEmpty { throw TrainingError.needsQuantizedModel(method.rawValue) }
        if !method.isQuantized && !scales.isEmpty { throw TrainingError.quantizedModelForFullPrecisionMethod(method.rawValue) }
        let weights = all.filter { $0.kind != .scale }
        self.network = network
        self.dataset = dataset
        self.environments = environments
        self.method = method
        self.hyperparameters = hyperparameters
        self.seed = seed
        self.trialSeed = trialSeed
        self.provenance = provenance
        splits = dataset.domainBedSplits(trialSeed: trialSeed)
        sampler = TrainingSampler(splits: splits, trainingDomains: environments.trainingDomains,
                                  batchPerDomain: hyperparameters.batchPerDomain, seed: seed,
                                  augment: hyperparameters.augment)
        dropoutRNG = RNGBox(RNG(seed: RNG.seed(combining: seed, 0xD20)))
        let adam = Adam(weights: weights, scales: scales, learningRate: hyperparameters.learningRate,
                        weightDecay: hyperparameters.weightDecay, scaleLearningRate: hyperparameters.scaleLearningRate)
        let gradientMethod: GradientMethod = method.usesFlatnessPass
            ? .sagm(SAGM(rho: Float(hyperparameters.rho), alpha: Float(hyperparameters.alpha))) : .singlePass
        stepper = try FQATStepper(weights: weights, scales: scales, method: gradientMethod, optimizer: adam,
                                  freeze: FreezeSettings(policy: method.freezePolicy, windowLength: hyperparameters.window,
                                                         threshold: hyperparameters.tau),
                                  traceRecentSteps: traceRecentSteps)
        recordArgs = ["dataset": .string(dataset.name), "algorithm": .string(method.rawValue),
                      "seed": .int(Int(seed)), "trial_seed": .int(trialSeed)]
        applyNetworkSettings()
    }

    func applyNetworkSettings() {
        network.setFrozenBatchNorm(hyperparameters.frozenBatchNorm)
        network.featureDropout = hyperparameters.dropout > 0 ? Dropout(Float(hyperparameters.dropout)) : nil
    }

    /// Changes the freeze policy's τ or K mid-run (the `policy` command).
    public func setFreezeSettings(_ settings: FreezeSettings) throws {
        try stepper.reconfigure(settings)
        hyperparameters.tau = settings.threshold
        hyperparameters.window = settings.windowLength
    }

    /// One training step on the next batch. Throws `TrainingError.diverged` on a non-finite loss or
    /// gradient, leaving weights, scales and optimizer state as they were before the step.
    @discardableResult
    public func takeStep() throws -> StepReport {
        let batch = try sampler.next(from: dataset)
        do {
            return try stepper.step { pass in
                let ctx = ForwardContext(training: true, updateRunningStats: pass == 1, rng: dropoutRNG)
                let logits = network.forward(batch.images, ctx)
                let (loss, gradient, _) = softmaxCrossEntropy(logits: logits, labels: batch.labels)
                _ = network.backward(gradient)
                return loss
            }
        } catch let e as StepError {
            network.clearCache()
            throw TrainingError.diverged(step: step + 1, message: "\(e)")
        }
    }

    /// Evaluates every domain now and appends a record.
    @discardableResult
    public func evaluate(extraMetrics: [String: Double] = [:], shouldStop: () -> Bool = { false }) throws -> (EvalRecord, [SplitResult]) {
        var (record, results) = try Evaluator.record(network, dataset: dataset, splits: splits, environments: environments,
                                                     step: step, batchSize: hyperparameters.evalBatch, shouldStop: shouldStop)
        record.args = recordArgs
        record.args["bits"] = recordArgs["bits"]
        var hp: [String: RecordValue] = [:]
        for (k, v) in hyperparameters.recordValues { hp[k] = .double(v) }
        record.hparams = hp
        record.provenance = provenance
        for (k, v) in extraMetrics { record.metrics[k] = v }
        records.append(record)
        return (record, results)
    }

    /// Trains `steps` more steps, evaluating every `evalEvery` steps and at the end (as DomainBed).
    /// `shouldStop` is polled at every step boundary; when it answers true the run pauses there with
    /// all state intact (`interrupted` in the summary).
    public func train(steps: Int, evaluateAtEnd: Bool = true, shouldStop: () -> Bool = { false },
                      onEvent: (RunEvent) -> Void = { _ in }) throws -> TrainSummary {
        precondition(steps >= 0, "steps must be ≥ 0")
        let t0 = Date()
        var lossSum = 0.0, last: Float = .nan, ran = 0
        var lossWindow = 0.0, lossCount = 0
        var interrupted = false
        var evaluatedAtLastStep = false
        for _ in 0..<steps {
            if shouldStop() { interrupted = true; break }
            let ts = Date()
            let report = try takeStep()
            ran += 1
            last = report.loss
            lossSum += Double(report.loss)
            lossWindow += Double(report.loss); lossCount += 1
            evaluatedAtLastStep = false
            onEvent(.step(report, elapsed: Date().timeIntervalSince(ts)))
            if step % hyperparameters.evalEvery == 0 {
                let (r, res) = try evaluate(extraMetrics: ["loss": lossWindow / Double(max(lossCount, 1))], shouldStop: shouldStop)
                lossWindow = 0; lossCount = 0
                evaluatedAtLastStep = true
                onEvent(.evaluation(r, res))
            }
        }
        if evaluateAtEnd && !interrupted && ran > 0 && !evaluatedAtLastStep {
            let (r, res) = try evaluate(extraMetrics: ["loss": lossWindow / Double(max(lossCount, 1))], shouldStop: shouldStop)
            onEvent(.evaluation(r, res))
        }
        let secs = Date().timeIntervalSince(t0)
        let imagesPerStep = hyperparameters.batchPerDomain * environments.trainingDomains.count
        return TrainSummary(stepsRun: ran, finalStep: step, lastLoss: last,
                            meanLoss: ran == 0 ? .nan : lossSum / Double(ran), seconds: secs,
                            imagesPerSecond: secs > 0 ? Double(ran * imagesPerStep) / secs : 0,
                            interrupted: interrupted, lastRecord: records.last,
                            selected: ModelSelection.select(records, method: .trainingDomainValidation))
    }

    /// Train-domain-validation selection over this run's records (or the oracle, labelled as such).
    public func selection(_ method: SelectionMethod = .trainingDomainValidation) -> Selection? {
        ModelSelection.select(records, method: method)
    }
}
