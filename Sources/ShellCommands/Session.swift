// The state every command shares: settings, the data, the model with its quantization, the
// hyperparameters, the results and the current training run, each one value with one owner and one
// Codable description (docs/architecture.md, "Session"). Nothing here prints.
import Datasets
import Foundation
import NN
import Optim
import Quant
import Plot
import ShellLanguage
import TensorCore
import Training

/// Settings changed with `set key=value` and shown with `show settings`.
public struct Settings: Codable, Equatable {
    public var seed: Int = 0
    public var threads: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)
    /// Folder for records, plots, checkpoints and exports.
    public var out: String = "runs"
    /// How long commands show progress (`set progress=`).
    public var progress: ProgressSetting = .auto
    /// Where `plot` and `landscape` draw (`set plot=`).
    public var plot: PlotSetting = .auto
    /// Trial seed of the DomainBed split.
    public var trialSeed: Int = 0
}

/// What the loaded data is: how to rebuild it (Training's `DataDescriptor`, also what a run
/// checkpoint stores) and which domains are held out. The batch per domain is a hyperparameter
/// (`Hyperparameters.batchPerDomain`), set by `data batch=`.
public struct DataChoice: Codable, Equatable {
    public var descriptor: DataDescriptor
    /// Held-out (test) domains by name.
    public var testDomains: [String]

    public init(descriptor: DataDescriptor, testDomains: [String]) {
        self.descriptor = descriptor
        self.testDomains = testDomains
    }
}

/// The data the session works on, with the choice that rebuilds it.
public struct SessionData {
    public let dataset: DomainDataset
    public let choice: DataChoice
    public let environments: EnvironmentAssignment
}

/// How `quantize` set the model up: where the quantizers go and how (Quant's `QuantizationConfig`)
/// and how their ranges were initialised. Coded as one flat object (the configuration's keys plus
/// `rangeInit` and `calibrationBatches`); keys a file does not have take their defaults.
public struct QuantizationSetup: Codable, Equatable {
    public var config: QuantizationConfig
    public var rangeInit: RangeInitMethod
    public var calibrationBatches: Int

    public init(config: QuantizationConfig, rangeInit: RangeInitMethod = .mse, calibrationBatches: Int = 2) {
        self.config = config
        self.rangeInit = rangeInit
        self.calibrationBatches = calibrationBatches
    }

    enum CodingKeys: String, CodingKey { case rangeInit, calibrationBatches }

    public init(from decoder: Decoder) throws {
        config = try QuantizationConfig(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        rangeInit = try c.decodeIfPresent(RangeInitMethod.self, forKey: .rangeInit) ?? .mse
        calibrationBatches = try c.decodeIfPresent(Int.self, forKey: .calibrationBatches) ?? 2
    }

    public func encode(to encoder: Encoder) throws {
        try config.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(rangeInit, forKey: .rangeInit)
        try c.encode(calibrationBatches, forKey: .calibrationBatches)
    }
}

/// The model and what describes it: channel multiplier, where its weights came from (written into
/// every record) and its quantization (nil: full precision, or quantizers whose setup is unknown,
/// e.g. a model file written by an older version).
public struct SessionModel {
    public let network: Network
    public var width: Double
    public var provenance: [String: RecordValue]
    public var quantization: QuantizationSetup?
}

/// A `freeze`/`unfreeze` given before a quantized run exists.
public struct PendingFreeze: Codable, Equatable {
    public var freeze: Bool
    public var pattern: String
    public var steps: Int?
}

/// How this process was started (`fqat-shell` flags): never saved with a session.
public struct LaunchOptions {
    /// When set (`fqat-shell --records FILE`, as a sweep task runs), every run's records append to
    /// this one file (DomainBed's `<run>/results.jsonl`) instead of `<out>/<label>.jsonl`.
    public var recordsFile: String?
    /// Extra or replaced record args (`fqat-shell --record-arg key=value`, e.g. a sweep's task id,
    /// hparams_seed, or the DomainBed dataset name; a replaced `dataset` is kept as `benchmark`).
    public var recordArgOverrides: [String: RecordValue] = [:]
    /// A session saved when an earlier attempt of this script was stopped (`fqat-shell --resume-from`,
    /// as a re-run sweep task passes its autosave): the `train` that starts the run it was in
    /// continues that run from the saved state instead of from zero (docs/sweeps.md).
    public var resumeFrom: String?
    /// Where SIGTERM saves the session (`fqat-shell --autosave PATH`; default `<out>/autosave.fqsession`).
    public var autosavePath: String?

    public init() {}

    /// `--record-arg key=value`: the value read as JSON (a number, list, quoted text…), else as text.
    public mutating func setRecordArg(_ key: String, text: String) {
        recordArgOverrides[key] = (try? JSONDecoder().decode(RecordValue.self, from: Data(text.utf8))) ?? .string(text)
    }
}

/// The state every command shares. What a session file saves is six values (settings, data, model,
/// hyperparameters, results, run); each changes only through the methods below, which end the
/// current run whenever the change would make its records state something untrue.
public final class Session {
    /// `set` changes these; the thread count and the trial seed change through `setThreads` and
    /// `setTrialSeed`, which end the run.
    public var settings = Settings()
    public private(set) var data: SessionData?
    public private(set) var model: SessionModel?
    /// Hyperparameters used by the next `train` (each `train` key updates them).
    public var hyperparameters = Hyperparameters()
    /// The run `train` and `step` continue; it owns its label (`recordArgs["label"]`).
    public private(set) var run: Run?
    /// Manual freeze commands given before a quantized run exists, replayed when it starts (saved;
    /// once a run exists its stepper holds the overrides, saved with the run).
    var pendingFreezes: [PendingFreeze] = []
    /// Every finished `train` call: method label and selected accuracies (for `results`).
    public var results: [ResultRow] = []
    /// Command-line options of this process (not saved).
    public var launch = LaunchOptions()

    /// Draws plots (gnuplot through a pipe; tests substitute a recording stand-in).
    public var plotter: Plotter = GnuplotProcess()
    /// The most recent figure file, for notebook transcripts.
    public var lastFigure: String?

    public init() {}

    // Read-only views of the values above.
    public var dataset: DomainDataset? { data?.dataset }
    public var environments: EnvironmentAssignment? { data?.environments }
    public var dataChoice: DataChoice? { data?.choice }
    public var network: Network? { model?.network }
    public var modelWidth: Double { model?.width ?? 1 }
    public var modelProvenance: [String: RecordValue] { model?.provenance ?? [:] }
    public var quantization: QuantizationConfig? { model?.quantization?.config }
    /// The label of the current run (its records file and plot names).
    public var runLabel: String? {
        if case .string(let label)? = run?.recordArgs["label"] { return label }
        return nil
    }
    public var landscapeCache: String { (settings.out as NSString).appendingPathComponent("cache/landscape") }

    // MARK: Settings

    /// Sets the thread count (BLAS and the engine's loops). A run is bit-identical only at one thread
    /// count and its records state the count, so a change ends the current run.
    public func setThreads(_ n: Int) {
        if n != settings.threads { endRun() }
        settings.threads = n
        applyThreads()
    }

    func applyThreads() {
        BLAS.setThreads(settings.threads)
        Parallel.threads = settings.threads
    }

    /// Selects the convolution backend; records state it, so a change ends the current run.
    public func setBackend(_ backend: ComputeBackend) throws {
        let previous = Backend.current
        try Backend.select(backend)
        if backend != previous { endRun() }
    }

    /// The DomainBed trial seed decides the in/out splits: a change ends the run.
    public func setTrialSeed(_ seed: Int) {
        settings.trialSeed = seed
        endRun()
    }

    // MARK: Data

    public func setData(_ dataset: DomainDataset, choice: DataChoice, environments: EnvironmentAssignment) {
        data = SessionData(dataset: dataset, choice: choice, environments: environments)
        endRun()
    }

    public func requireData() throws -> (DomainDataset, EnvironmentAssignment) {
        guard let d = data else {
            throw CommandError("no data loaded; start with `data style-fmnist test=fog` (see `help data`)")
        }
        return (d.dataset, d.environments)
    }

    // MARK: Model

    /// Replaces the model (a new one, or one read from a file); the run ends.
    public func setModel(_ network: Network, width: Double, provenance: [String: RecordValue],
                         quantization: QuantizationSetup? = nil) {
        model = SessionModel(network: network, width: width, provenance: provenance, quantization: quantization)
        endRun()
    }

    /// The current model's weights were replaced in place (`model load` into it); the run ends.
    public func modelWeightsLoaded(provenance: [String: RecordValue]) {
        model?.provenance = provenance
        endRun()
    }

    /// Quantizers were attached to the current model (`quantize`); the run ends.
    public func modelQuantized(_ setup: QuantizationSetup) {
        model?.quantization = setup
        endRun()
    }

    public func requireNetwork() throws -> Network {
        guard let n = network else {
            throw CommandError("no model; create one with `model new resnet20` or `model load file.safetensors`")
        }
        return n
    }

    public var isQuantized: Bool { network.map { !Quant.quantizers(in: $0).isEmpty } ?? false }

    // MARK: Runs

    /// The run `train`/`step` continues, or a new one when the method, the model or the
    /// hyperparameters changed. Returns whether a new run was started.
    public func runFor(method: TrainingMethod, forceNew: Bool = false) throws -> (Run, Bool) {
        let network = try requireNetwork()
        let (dataset, environments) = try requireData()
        // Before a step allocates its activations (issue 17, C7).
        try ShellCommands.checkTrainingMemory(network, imageShape: dataset.imageShape,
                                              batchPerDomain: hyperparameters.batchPerDomain,
                                              trainingDomains: environments.trainingDomains.count)
        if let r = run, !forceNew, r.method == method, r.network === network,
           r.hyperparameters.continuesWith(hyperparameters), r.environments == environments {
            if r.hyperparameters.tau != hyperparameters.tau || r.hyperparameters.window != hyperparameters.window {
                try r.setFreezeSettings(FreezeSettings(policy: method.freezePolicy, windowLength: hyperparameters.window,
                                                       threshold: hyperparameters.tau))
            }
            return (r, false)
        }
        let r = try Run(network: network, dataset: dataset, environments: environments, method: method,
                        hyperparameters: hyperparameters, seed: UInt64(settings.seed), trialSeed: settings.trialSeed,
                        provenance: modelProvenance)
        if let q = quantization {
            r.recordArgs["bits_w"] = .int(q.weightBits)
            r.recordArgs["bits_a"] = .int(q.activationBits)
            r.recordArgs["quantizer"] = .string(q.method.rawValue)
        }
        for f in pendingFreezes {
            if f.freeze { _ = try r.stepper.freeze(f.pattern, steps: f.steps) } else { _ = try r.stepper.unfreeze(f.pattern, steps: f.steps) }
        }
        pendingFreezes = []
        run = r
        return (r, true)
    }

    public func endRun() { run = nil }

    /// Makes a restored run the current one (after `load session`, or a resumed sweep task).
    public func adoptRun(_ run: Run) { self.run = run }

    /// Replaces everything a session file holds at once (`load session`): what was not saved is gone.
    func restore(settings: Settings, data: SessionData?, model: SessionModel?, hyperparameters: Hyperparameters,
                 pendingFreezes: [PendingFreeze], results: [ResultRow], run: Run?) {
        self.settings = settings
        applyThreads()
        self.data = data
        self.model = model
        self.hyperparameters = hyperparameters
        self.results = results
        self.pendingFreezes = pendingFreezes
        self.run = run
    }

    // MARK: Names for completion

    public func names(for source: String) -> [String] {
        switch source {
        case "layers": return network?.namedModules().map(\.0).filter { !$0.isEmpty } ?? []
        case "convs": return network?.convolutions.map(\.name) ?? []
        case "scales": return network.map { Quant.scaleParameters(in: $0).map(\.name) } ?? []
        case "domains": return dataset?.domainNames ?? []
        case "parameters": return network?.parameters.map(\.name) ?? []
        case "benchmarks": return Benchmarks.names
        case "methods": return TrainingMethod.allCases.map(\.rawValue)
        default: return []
        }
    }
}

/// One line of the `results` table.
public struct ResultRow: Codable, Equatable {
    public var label: String
    public var method: String
    public var bits: String
    public var steps: Int
    public var selectedStep: Int
    public var validation: Double
    public var test: Double
    public var testByDomain: [String: Double]
    public var lastValidation: Double
    public var lastTest: Double
}

extension Hyperparameters {
    /// Whether a run started with `self` may continue under `next` (only τ and K may change mid-run).
    func continuesWith(_ next: Hyperparameters) -> Bool {
        var a = self, b = next
        a.tau = 0; b.tau = 0; a.window = 2; b.window = 2
        b.batchPerDomain = a.batchPerDomain
        return a == b
    }
}
