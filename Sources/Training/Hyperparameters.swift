// Every number a training run depends on, with the defaults fqat-shell uses and where they come from.
// The paper's ResNet-50/224 px settings (lr 3e-5, 20 000 steps) are scaled down for CPU work on the
// built-in 28×28 benchmarks: see docs/fqat.md ("Training runs") for what was chosen and why.

public struct Hyperparameters: Codable, Equatable, Sendable {
    /// Adam learning rate of the model group (DomainBed/SAGM Adam; paper grid {1e-5, 3e-5, 5e-5} for
    /// a pretrained ResNet-50; 1e-3 for DomainBed's MNIST models trained from scratch).
    public var learningRate: Double = 1e-3
    /// L2 weight decay added to the gradient (PyTorch Adam semantics).
    public var weightDecay: Double = 0
    /// Adam learning rate of the scale-factor group (weight decay 0). The paper's value was stripped;
    /// EWGS uses 1e-5 for its quantizer parameters.
    public var scaleLearningRate: Double = 1e-4
    /// SAGM neighbourhood radius ρ (SAM/SAGM default 0.05).
    public var rho: Double = 0.05
    /// SAGM gradient-alignment coefficient α (SAGM's PACS setting 0.001).
    public var alpha: Double = 0.001
    /// Disorder threshold τ of the freeze test.
    public var tau: Float = 0.5
    /// Freeze window K in steps.
    public var window: Int = 100
    /// Images per training domain in each step (DomainBed default 32; 64 for RotatedMNIST).
    public var batchPerDomain: Int = 32
    /// Evaluate every domain every this many steps (DomainBed checkpoint_freq).
    public var evalEvery: Int = 100
    /// Evaluation batch size.
    public var evalBatch: Int = 256
    /// Evaluate the training domains' in splits too (DomainBed evaluates every split). Off, an
    /// evaluation covers only what train-domain validation, the OOD score and the oracle read: the
    /// training domains' out splits and the test domains' in and out splits. The accuracies it does
    /// compute are the same either way; with 5 training domains it is about 3× less evaluation work.
    public var evaluateTrainingInSplits: Bool = true
    /// BatchNorm frozen (running statistics fixed, affine trained) as DomainBed/SAGM's freeze_bn.
    /// `defaults(for:)` turns it on for the quantized methods (our choice, docs/fqat.md, "Quantizing a model, and BatchNorm during QAT") and off for
    /// the full-precision ones, which train from scratch here.
    public var frozenBatchNorm: Bool = false
    /// Dropout on the features before the classifier (DomainBed resnet_dropout; paper: 0).
    public var dropout: Double = 0
    /// Augment training batches (DomainBed transforms; only image-folder data augments).
    public var augment: Bool = true
    /// Re-estimate the EWGS δ of every quantizer from a Hessian-trace estimate every this many steps
    /// (docs/quantization.md §4 and §1); 0 keeps δ fixed (EWGS "fixed" setting).
    public var ewgsHessianEvery: Int = 0
    /// Hutchinson iterations at most per re-estimate (EWGS: 50; each costs two forward+backward passes).
    public var ewgsHessianIterations: Int = 50

    public init() {}

    /// The defaults for one method. Quantized methods fine-tune a trained full-precision model: BN is
    /// frozen (our choice after the SAGM fork's freeze_bn, docs/fqat.md, Quantizing a model, and BatchNorm during QAT) and the model lr
    /// is 10× smaller than from-scratch training. Full-precision methods train from scratch on the
    /// built-in benchmarks, so BN must learn its statistics (frozen BN would normalise with the
    /// initial mean 0 / variance 1 forever).
    public static func defaults(for method: TrainingMethod) -> Hyperparameters {
        var h = Hyperparameters()
        if method.isQuantized {
            h.frozenBatchNorm = true
            h.learningRate = 1e-4
        }
        return h
    }

    /// Checks ranges; the message names the setting and what is allowed.
    public func validate() throws {
        func bad(_ s: String) -> TrainingError { .invalidHyperparameter(s) }
        guard learningRate > 0, learningRate.isFinite else { throw bad("lr must be a positive number, got \(learningRate)") }
        guard weightDecay >= 0, weightDecay.isFinite else { throw bad("wd must be ≥ 0, got \(weightDecay)") }
        guard scaleLearningRate >= 0, scaleLearningRate.isFinite else { throw bad("scale_lr must be ≥ 0, got \(scaleLearningRate)") }
        guard rho > 0, rho.isFinite else { throw bad("rho must be > 0, got \(rho)") }
        guard alpha >= 0, alpha.isFinite else { throw bad("alpha must be ≥ 0, got \(alpha)") }
        guard tau >= 0 && tau <= 1 else { throw bad("tau must be in [0, 1] (a share of sign flips), got \(tau)") }
        guard window >= 2 else { throw bad("K must be at least 2 steps (the disorder compares consecutive gradients), got \(window)") }
        guard batchPerDomain >= 1 else { throw bad("batch must be at least 1, got \(batchPerDomain)") }
        guard evalEvery >= 1 else { throw bad("eval_every must be at least 1, got \(evalEvery)") }
        guard evalBatch >= 1 else { throw bad("eval_batch must be at least 1, got \(evalBatch)") }
        guard dropout >= 0 && dropout < 1 else { throw bad("dropout must be in [0, 1), got \(dropout)") }
        guard ewgsHessianEvery >= 0 else { throw bad("ewgs_every must be ≥ 0 steps (0 keeps δ fixed), got \(ewgsHessianEvery)") }
        guard ewgsHessianIterations >= 1 else { throw bad("ewgs_iterations must be at least 1, got \(ewgsHessianIterations)") }
    }

    /// The hparams object of a results record (DomainBed's shape).
    public var recordValues: [String: Double] {
        ["lr": learningRate, "weight_decay": weightDecay, "scale_lr": scaleLearningRate, "rho": rho,
         "alpha": alpha, "tau": Double(tau), "K": Double(window), "batch_size": Double(batchPerDomain),
         "checkpoint_freq": Double(evalEvery), "resnet_dropout": dropout, "freeze_bn": frozenBatchNorm ? 1 : 0,
         "ewgs_hessian_every": Double(ewgsHessianEvery)]
    }

    /// Decoding fills settings a checkpoint does not mention with their defaults, so checkpoints
    /// written before a setting existed still load.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = Hyperparameters()
        func value<T: Decodable>(_ key: CodingKeys, _ fallback: T) throws -> T {
            try c.decodeIfPresent(T.self, forKey: key) ?? fallback
        }
        learningRate = try value(.learningRate, d.learningRate)
        weightDecay = try value(.weightDecay, d.weightDecay)
        scaleLearningRate = try value(.scaleLearningRate, d.scaleLearningRate)
        rho = try value(.rho, d.rho)
        alpha = try value(.alpha, d.alpha)
        tau = try value(.tau, d.tau)
        window = try value(.window, d.window)
        batchPerDomain = try value(.batchPerDomain, d.batchPerDomain)
        evalEvery = try value(.evalEvery, d.evalEvery)
        evalBatch = try value(.evalBatch, d.evalBatch)
        evaluateTrainingInSplits = try value(.evaluateTrainingInSplits, d.evaluateTrainingInSplits)
        frozenBatchNorm = try value(.frozenBatchNorm, d.frozenBatchNorm)
        dropout = try value(.dropout, d.dropout)
        augment = try value(.augment, d.augment)
        ewgsHessianEvery = try value(.ewgsHessianEvery, d.ewgsHessianEvery)
        ewgsHessianIterations = try value(.ewgsHessianIterations, d.ewgsHessianIterations)
    }
}
