// A training run on the DomainBed protocol: batches from every training domain, one step of the
// chosen method (Optim.FQATStepper), evaluation of every domain every `evalEvery` steps, records
// and train-domain-validation selection. A run can be paused (the caller stops asking for steps,
// or `shouldStop` answers true) and continued; `checkpoint(to:)` writes everything needed to
// continue exactly and `Run.resume(from:)` reads it back (Checkpoint.swift). The engine prints
// nothing: progress goes to the caller's callback.
import Datasets
import Foundation
import NN
import Optim
import Quant
import TensorCore
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

    public init(stepsRun: Int, finalStep: Int, lastLoss: Float, meanLoss: Double, seconds: Double, imagesPerSecond: Double,
                interrupted: Bool, lastRecord: EvalRecord?, selected: Selection?) {
        self.stepsRun = stepsRun
        self.finalStep = finalStep
        self.lastLoss = lastLoss
        self.meanLoss = meanLoss
        self.seconds = seconds
        self.imagesPerSecond = imagesPerSecond
        self.interrupted = interrupted
        self.lastRecord = lastRecord
        self.selected = selected
    }
}

/// One EWGS δ re-estimation (hyperparameter `ewgsHessianEvery`).
public struct EWGSReestimation: Sendable {
    /// The step after which δ was re-estimated.
    public var step: Int
    /// One estimate per quantizer; only EWGS quantizers received their δ.
    public var estimates: [EWGSDeltaEstimate]
}

public final class Run {
    public let network: Network
    public let dataset: DomainDataset
    public let environments: EnvironmentAssignment
    public let splits: [DomainSplit]
    public let method: TrainingMethod
    public private(set) var hyperparameters: Hyperparameters
    public let stepper: FQATStepper
    public internal(set) var sampler: TrainingSampler
    /// Every evaluation of this run, in order.
    public internal(set) var records: [EvalRecord] = []
    /// DomainBed `args` written into every record (dataset, algorithm, seeds, …).
    public var recordArgs: [String: RecordValue]
    /// Where the starting weights came from, written into every record.
    public var provenance: [String: RecordValue]
    let dropoutRNG: RNGBox
    public let seed: UInt64
    public let trialSeed: Int
    /// How to rebuild the data set when resuming from a checkpoint (nil: the caller passes it).
    public var dataDescriptor: DataDescriptor?
    /// How to rebuild the model when resuming from a checkpoint (nil: the caller passes it).
    public var modelDescriptor: ModelDescriptor?
    /// The trace capacity given at creation (kept for resuming).
    public let traceRecentSteps: Int?
    /// Training loss summed over the steps since the last evaluation (the record's "loss").
    var lossSinceEvaluation = 0.0
    var stepsSinceEvaluation = 0
    /// The latest EWGS δ re-estimation, if any.
    public internal(set) var lastEWGSReestimation: EWGSReestimation?
    /// The fixed batch of the EWGS Hessian estimate (drawn from the seed on first use).
    var hessianBatch: LabeledBatch?

    /// Steps taken so far in this run.
    public var step: Int { stepper.stepsTaken }
    public var scales: [Parameter] { stepper.scales }

    /// DomainBed's steps_per_epoch: min over ALL domains' in-splits (held-out ones included, as
    /// train.py's `min(len(env) / batch_size for env, _ in in_splits)`) of the images per step.
    public var stepsPerEpoch: Double {
        let smallest = splits.map { $0.inIndices.count }.min() ?? 0
        return Double(smallest) / Double(hyperparameters.batchPerDomain)
    }

    public init(network: Network, dataset: DomainDataset, environments: EnvironmentAssignment,
                method: TrainingMethod, hyperparameters: Hyperparameters, seed: UInt64, trialSeed: Int = 0,
                provenance: [String: RecordValue] = [:], traceRecentSteps: Int? = 2000,
                data: DataDescriptor? = nil, model: ModelDescriptor? = nil) throws {
        try hyperparameters.validate()
        guard !environments.trainingDomains.isEmpty else { throw TrainingError.noTrainingDomains }
        let domainCount = dataset.domains.count
        guard (environments.trainingDomains + environments.testDomains).allSatisfy({ $0 >= 0 && $0 < domainCount }) else {
            throw TrainingError.invalidHyperparameter("the test domains \(environments.testDomains) do not fit a data set of \(domainCount) domains")
        }
        guard dataset.imageShape[0] == network.inChannels else {
            throw TrainingError.invalidHyperparameter("the model takes \(network.inChannels) input channels but the data has \(dataset.imageShape[0]); rebuild the model or the data (channels=…)")
        }
        guard dataset.classCount <= network.classes else {
            throw TrainingError.invalidHyperparameter("the data has \(dataset.classCount) classes but the model only \(network.classes) outputs")
        }
        let all = network.parameters
        let scales = all.filter { $0.kind == .scale }
        if method.isQuantized && scales.isEmpty { throw TrainingError.needsQuantizedModel(method.rawValue) }
        if !method.isQuantized && !scales.isEmpty { throw TrainingError.quantizedModelForFullPrecisionMethod(method.rawValue) }
        if hyperparameters.ewgsHessianEvery > 0 && !quantizers(in: network).contains(where: { $0.method == .ewgs }) {
            throw TrainingError.invalidHyperparameter("ewgs_every re-estimates the EWGS δ, but the model has no EWGS quantizers; quantize with method=ewgs or set ewgs_every=0")
        }
        let weights = all.filter { $0.kind != .scale }
        self.network = network
        self.dataset = dataset
        self.environments = environments
        self.method = method
        self.hyperparameters = hyperparameters
        self.seed = seed
        self.trialSeed = trialSeed
        self.provenance = provenance
        // What the records were computed on (BLAS library and core, CPU instruction sets, threads):
        // float32 sums in another order move results, so a record says which order it came from.
        // Each record refreshes it (`evaluate`): a resumed run states where it continues, not where it started.
        self.provenance["compute"] = Run.computeProvenance()
        self.traceRecentSteps = traceRecentSteps
        self.dataDescriptor = data
        self.modelDescriptor = model
        splits = dataset.domainBedSplits(trialSeed: trialSeed)
        for d in environments.trainingDomains where splits[d].inIndices.isEmpty {
            throw TrainingError.invalidHyperparameter("training domain \(dataset.domains[d].name) has no training images (its in-split is empty)")
        }
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
                      "seed": .int(Int(truncatingIfNeeded: seed)), "trial_seed": .int(trialSeed),
                      // DomainBed's args keys its tools read (collect_results groups by
                      // hparams_seed; one fixed hyperparameter set here, so 0). `steps` is the run's
                      // planned length, updated by every `train` call (docs/sweeps.md).
                      "hparams_seed": .int(0), "holdout_fraction": .double(0.2), "task": .string("domain_generalization"),
                      // Runs are bit-identical for a seed at a given thread count (weight gradients'
                      // partial sums are grouped per thread), so the count is part of the record.
                      "threads": .int(Parallel.threads),
                      // ... and so is the convolution backend (docs/backends.md, Determinism).
                      "backend": .string(Backend.current.rawValue)]
        applyNetworkSettings()
    }

    static func computeProvenance() -> RecordValue {
        .object(ComputeInfo.current().recordFields.mapValues { .string($0) })
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

    /// What overflowed and what helps. Pass 1 computes the gradient on the weights as they are before
    /// the step, so this step's learning rate plays no part: the cause is the data, or weights (or
    /// step sizes) that earlier steps already made too large. Pass 2 (SAGM's perturbed point) depends on ρ.
    func divergenceAdvice(pass: Int, batch: LabeledBatch?) -> String {
        let images = batch?.images
        if let images, let bad = images.data.firstIndex(where: { !$0.isFinite }) {
            let perImage = images.shape.dropFirst().reduce(1, *)
            return "the batch holds a non-finite pixel (\(images.data[bad]) in image \(bad / max(perImage, 1)) of the batch): the data is damaged, a lower learning rate cannot help; check or rebuild the data"
        }
        var largest: (name: String, value: Float) = ("", 0)
        for p in network.parameters {
            if let bad = p.value.data.first(where: { !$0.isFinite }) {
                return "parameter '\(p.name)' already holds \(bad): the model was damaged before this step; load an earlier saved model or session"
            }
            let m = p.value.data.reduce(Float(0)) { max($0, abs($1)) }
            if m > largest.value { largest = (p.name, m) }
        }
        var where_ = largest.name.isEmpty ? "" : " (largest weight: |\(largest.name)| = \(largest.value))"
        if let images, let layer = firstNonFiniteLayer(images) {
            where_ = "; on this batch the forward pass first overflows in '\(layer)'" + where_
        } else if pass == 1, let batch, let found = firstNonFiniteBackward(batch) {
            // The forward pass is finite: say where the backward pass overflows and what (issue 17, D1).
            return "pass 1 differentiates the current weights before this step changes them, so lowering lr now gives the same failure at this batch; "
                + found.explanation(largestWeight: largest)
        }
        if pass == 1 {
            return "pass 1 differentiates the current weights before this step changes them, so lowering lr now gives the same failure at this batch\(where_); go back to an earlier saved model or session, or start the run again with a lower lr=, weight decay (wd=) or bn=train"
        }
        return "pass 2 evaluates the SAGM-perturbed weights\(where_); a smaller rho= (and lr=) usually helps"
    }

    /// The first layer whose output is not finite when `images` go forward (training mode, running
    /// statistics untouched; Sequential containers are walked into, other blocks count as one layer),
    /// or nil when the forward pass stays finite (the overflow is in the backward pass). Leaves the
    /// dropout generator and the caches as they were.
    func firstNonFiniteLayer(_ images: Tensor) -> String? {
        let saved = dropoutRNG.rng
        defer { dropoutRNG.rng = saved; network.clearCache() }
        let ctx = ForwardContext(training: true, updateRunningStats: false, needsBackward: false, rng: dropoutRNG)
        var x = images
        func walk(_ module: Module, _ path: String) -> String? {
            if let sequential = module as? Sequential {
                for (name, child) in sequential.children {
                    if let found = walk(child, path.isEmpty ? name : "\(path).\(name)") { return found }
                }
                return nil
            }
            x = module.forward(x, ctx)
            return x.data.contains(where: { !$0.isFinite }) ? (path.isEmpty ? "features" : path) : nil
        }
        if let layer = walk(network.featurizer, "") { return layer }
        if let dropout = network.featureDropout { x = dropout.forward(x, ctx) }
        x = network.classifier.forward(x, ctx)
        return x.data.contains(where: { !$0.isFinite }) ? "fc" : nil
    }

    /// Where the backward pass of `batch` first produces a non-finite value, for a batch whose forward
    /// pass is finite: the layers (the units of `firstNonFiniteLayer`) are differentiated one by one from
    /// the loss back to the input, and the first whose input gradient or parameter gradients are not finite
    /// is returned with what overflowed there. Nil when the forward pass (or the loss) is not finite, or
    /// when every gradient stays finite. Training mode with running statistics untouched, as pass 1 sees
    /// the model; leaves the dropout generator, the caches and the gradients (zero) as a failed step does.
    func firstNonFiniteBackward(_ batch: LabeledBatch) -> BackwardOverflow? {
        let saved = dropoutRNG.rng
        defer { dropoutRNG.rng = saved; network.zeroGrad(); network.clearCache() }
        var units: [(name: String, module: Module)] = []
        func collect(_ module: Module, _ path: String) {
            if let sequential = module as? Sequential {
                for (name, child) in sequential.children { collect(child, path.isEmpty ? name : "\(path).\(name)") }
            } else {
                units.append((path.isEmpty ? "features" : path, module))
            }
        }
        collect(network.featurizer, "")
        if let dropout = network.featureDropout { units.append(("dropout", dropout)) }
        units.append(("fc", network.classifier))
        network.zeroGrad()
        let ctx = ForwardContext(training: true, updateRunningStats: false, needsBackward: true, rng: dropoutRNG)
        var x = batch.images
        var inputLargest: [Float] = []
        for unit in units {
            inputLargest.append(x.maxAbs())
            x = unit.module.forward(x, ctx)
            guard x.isFinite else { return nil }
        }
        let (loss, gradient, _) = softmaxCrossEntropy(logits: x, labels: batch.labels)
        guard loss.isFinite else { return nil }
        var g = gradient
        for (i, unit) in units.enumerated().reversed() {
            let incoming = g.maxAbs()
            g = unit.module.backward(g)
            let bad = unit.module.parameters.filter { !$0.grad.isFinite }
            if !bad.isEmpty || !g.isFinite {
                return BackwardOverflow(layer: unit.name, activationGradient: !g.isFinite,
                                        parameters: bad.map { ($0.name, $0.kind, $0.value.maxAbs(), $0.value.data.lazy.map(abs).min() ?? 0) },
                                        incomingGradient: incoming, inputActivation: inputLargest[i])
            }
        }
        return nil
    }

    /// One training step on the next batch. Throws `TrainingError.diverged` on a non-finite loss or
    /// gradient and leaves the run exactly as after the previous step: weights, scales, optimizer,
    /// controller and trace (the stepper's guarantee), BatchNorm running statistics, the sampler and
    /// the dropout generator (restored here), so a checkpoint written afterwards is the last good
    /// state and a retry with other settings sees the same batch.
    @discardableResult
    public func takeStep() throws -> StepReport {
        let savedSampler = sampler
        let savedDropout = dropoutRNG.rng
        let buffers = network.buffers
        let savedBuffers = buffers.map(\.value)
        func rollBack() {
            sampler = savedSampler
            dropoutRNG.rng = savedDropout
            for (b, v) in zip(buffers, savedBuffers) { b.value = v }
            network.clearCache()
        }
        let report: StepReport
        var failedBatch: LabeledBatch?
        do {
            let batch = try sampler.next(from: dataset)
            failedBatch = batch
            report = try stepper.step { pass in
                let ctx = ForwardContext(training: true, updateRunningStats: pass == 1, rng: dropoutRNG)
                let logits = network.forward(batch.images, ctx)
                let (loss, gradient, _) = softmaxCrossEntropy(logits: logits, labels: batch.labels)
                _ = network.backward(gradient)
                return loss
            }
        } catch let e as StepError {
            rollBack()
            var message: String
            let pass: Int
            switch e {
            case .nonFiniteLoss(let p, let value): message = "the training loss is \(value) (pass \(p))"; pass = p
            case .nonFiniteGradient(let p, let name): message = "the gradient of '\(name)' is not finite (pass \(p))"; pass = p
            }
            message += "; " + divergenceAdvice(pass: pass, batch: failedBatch)
            throw TrainingError.diverged(step: step + 1, message: message)
        } catch {
            rollBack()
            throw error
        }
        lossSinceEvaluation += Double(report.loss)
        stepsSinceEvaluation += 1
        if hyperparameters.ewgsHessianEvery > 0 && step % hyperparameters.ewgsHessianEvery == 0 {
            try reestimateEWGSDeltas()
        }
        return report
    }

    /// Re-estimates the EWGS δ of every EWGS quantizer on the run's fixed Hessian batch (EWGS's
    /// Hessian variant, docs/quantization.md §4; Quant's `estimateEWGSDeltas`). All quantizers are probed so
    /// that LSQ ones downstream freeze their rounding too; only EWGS ones receive δ, and only a
    /// finite estimate. Deterministic: the batch comes from the seed and the Rademacher vectors from
    /// (seed, step). The forward runs with `training: false` (no dropout draw, BN on running
    /// statistics, none updated), so the run's state other than δ is untouched.
    @discardableResult
    public func reestimateEWGSDeltas() throws -> EWGSReestimation {
        let all = quantizers(in: network)
        guard !all.isEmpty else { throw TrainingError.needsQuantizedModel("ewgs δ estimate") }
        let batch = try fixedHessianBatch()
        let ctx = ForwardContext(training: false, updateRunningStats: false, needsBackward: true)
        let options = HessianDeltaOptions(maxIterations: hyperparameters.ewgsHessianIterations,
                                          seed: mixSeed(seed, 0xE3C5, UInt64(step)))
        let estimates = estimateEWGSDeltas(quantizers: all, batchCount: 1, preserving: network.parameters,
                                           options: options, apply: false) { _ in
            let logits = network.forward(batch.images, ctx)
            let (_, gradient, _) = softmaxCrossEntropy(logits: logits, labels: batch.labels)
            _ = network.backward(gradient)
        }
        for (q, e) in zip(all, estimates) where q.method == .ewgs && e.delta.isFinite { q.ewgsDelta = e.delta }
        let result = EWGSReestimation(step: step, estimates: estimates)
        lastEWGSReestimation = result
        return result
    }

    /// `batchPerDomain` images of every training domain's in-split, drawn once from the seed.
    func fixedHessianBatch() throws -> LabeledBatch {
        if let b = hessianBatch { return b }
        var rng = RNG(seed: mixSeed(seed, 0x4E55_1A4))
        var images: [Tensor] = [], labels: [Int] = []
        for d in environments.trainingDomains {
            let pool = splits[d].inIndices
            let picked = (0..<hyperparameters.batchPerDomain).map { _ in pool[rng.int(below: pool.count)] }
            let b = try dataset.batch(domain: d, indices: picked)
            images.append(b.images)
            labels += b.labels
        }
        let batch = LabeledBatch(images: Tensor.concatenate(images), labels: labels)
        hessianBatch = batch
        return batch
    }

    /// Evaluates every domain now and appends a record. The record's "loss" is the mean training
    /// loss since the previous evaluation and "epoch" is step / steps_per_epoch (DomainBed).
    @discardableResult
    public func evaluate(extraMetrics: [String: Double] = [:], shouldStop: () -> Bool = { false }) throws -> (EvalRecord, [SplitResult]) {
        var (record, results): (EvalRecord, [SplitResult])
        do {
            (record, results) = try Evaluator.record(network, dataset: dataset, splits: splits, environments: environments,
                                                     step: step, batchSize: hyperparameters.evalBatch,
                                                     trainingInSplits: hyperparameters.evaluateTrainingInSplits,
                                                     shouldStop: shouldStop)
        } catch TrainingError.interrupted {
            throw TrainingError.interrupted(step: step)
        }
        record.args = recordArgs
        var hp: [String: RecordValue] = [:]
        for (k, v) in hyperparameters.recordValues { hp[k] = .double(v) }
        record.hparams = hp
        // The compute path as it is now, after the steps this record follows (oneDNN names the kernels
        // it picked only once they ran); a resumed run keeps its saved value until then.
        provenance["compute"] = Run.computeProvenance()
        record.provenance = provenance
        if stepsSinceEvaluation > 0 { record.metrics["loss"] = lossSinceEvaluation / Double(stepsSinceEvaluation) }
        // DomainBed's epoch: the 0-based index of the step just taken (its "step") over steps_per_epoch.
        let perEpoch = stepsPerEpoch
        if perEpoch > 0 { record.metrics["epoch"] = Double(max(step - 1, 0)) / perEpoch }
        if method.isQuantized {
            // How many scale factors have g_QAT frozen for the next step (policy and manual overrides),
            // so sweeps over τ and K can be read from records alone (`plot sensitivity`).
            record.metrics["frozen_scales"] = Double(stepper.controller.frozen.lazy.filter { $0 }.count)
            record.metrics["scale_factors"] = Double(scales.count)
        }
        for (k, v) in extraMetrics { record.metrics[k] = v }
        lossSinceEvaluation = 0
        stepsSinceEvaluation = 0
        records.append(record)
        return (record, results)
    }

    /// Trains `steps` more steps, evaluating every `evalEvery` steps and at the end (as DomainBed).
    /// `shouldStop` is polled at every step boundary and between evaluation batches; when it answers
    /// true the run pauses there with all state intact (`interrupted` in the summary; an evaluation
    /// cut short leaves no record). A diverging step throws `TrainingError.diverged` with the run at
    /// its last good state.
    public func train(steps: Int, evaluateAtEnd: Bool = true, shouldStop: () -> Bool = { false },
                      onEvent: (RunEvent) -> Void = { _ in }) throws -> TrainSummary {
        precondition(steps >= 0, "steps must be ≥ 0")
        recordArgs["steps"] = .int(step + steps)
        let t0 = Date()
        var lossSum = 0.0, last: Float = .nan, ran = 0
        var interrupted = false
        var evaluatedAtLastStep = false
        do {
            for _ in 0..<steps {
                if shouldStop() { interrupted = true; break }
                let ts = Date()
                let report = try takeStep()
                ran += 1
                last = report.loss
                lossSum += Double(report.loss)
                evaluatedAtLastStep = false
                onEvent(.step(report, elapsed: Date().timeIntervalSince(ts)))
                if step % hyperparameters.evalEvery == 0 {
                    let (r, res) = try evaluate(shouldStop: shouldStop)
                    evaluatedAtLastStep = true
                    onEvent(.evaluation(r, res))
                }
            }
            if evaluateAtEnd && !interrupted && ran > 0 && !evaluatedAtLastStep {
                let (r, res) = try evaluate(shouldStop: shouldStop)
                onEvent(.evaluation(r, res))
            }
        } catch TrainingError.interrupted {
            interrupted = true
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

/// Where a backward pass first overflowed (`Run.firstNonFiniteBackward`) and the advice for that case.
struct BackwardOverflow {
    /// The layer (a unit of the forward walk) whose gradients were the first not to be finite.
    var layer: String
    /// Its input gradient (the activation gradient it passes back) is not finite.
    var activationGradient: Bool
    /// Its parameters whose gradients are not finite: name, kind, largest and smallest |value|.
    var parameters: [(name: String, kind: Parameter.Kind, largest: Float, smallest: Float)]
    /// Largest |dL/dy| reaching the layer (finite) and largest |x| of its input in the forward pass.
    var incomingGradient: Float
    var inputActivation: Float

    func explanation(largestWeight: (name: String, value: Float)) -> String {
        func listed(_ names: [String]) -> String {
            names.prefix(3).map { "'\($0)'" }.joined(separator: ", ") + (names.count > 3 ? " and \(names.count - 3) more" : "")
        }
        let scales = parameters.filter { $0.kind == .scale }, weights = parameters.filter { $0.kind != .scale }
        var what: [String] = []
        if activationGradient { what.append("the activation gradient it passes back") }
        if !weights.isEmpty { what.append("the weight gradient of \(listed(weights.map(\.name)))") }
        if !scales.isEmpty { what.append("the scale-factor gradient of \(listed(scales.map(\.name)))") }
        var text = "the forward pass is finite; the backward pass first overflows in '\(layer)': "
            + what.joined(separator: " and ")
            + " (the gradient reaching it is at most \(incomingGradient), its input at most \(inputActivation))"
        if activationGradient {
            text += ". Gradients grow as they flow back through the layers after it"
                + (largestWeight.name.isEmpty ? "" : " (largest weight: |\(largestWeight.name)| = \(largestWeight.value))")
                + "; go back to an earlier saved model or session and continue with a lower lr= or weight decay (wd=), which keep the weights from growing, or with bn=train"
        } else if !weights.isEmpty {
            text += ". A weight gradient multiplies the gradient reaching the layer by its input activations, and that product overflows: the activations feeding '\(layer)' are too large; go back to an earlier saved model or session and continue with a lower lr=, weight decay (wd=) or bn=train"
        } else if let s = scales.first {
            text += ". A step size's gradient sums over every element its quantizer sees (step sizes of '\(s.name)' from \(s.smallest) to \(s.largest)); go back to an earlier saved model or session and continue with a lower scale_lr=, or re-initialise the step sizes (`quantize … init=mse`)"
        }
        return text
    }
}
