// The state every command shares: settings, the data, the model, its quantizers and the current
// training run. Commands mutate it; the shell renders it. Nothing here prints.
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
    /// auto | bar | lines | off
    public var progress: String = "auto"
    /// Where `plot` and `landscape` draw: auto (terminal view in a TTY plus PNG) | png | svg | text | sixel | none
    public var plot: String = "auto"
    /// Trial seed of the DomainBed split.
    public var trialSeed: Int = 0
}

/// What the loaded data is and how to rebuild it (saved with sessions).
public struct ShellDataChoice: Codable, Equatable {
    public var source: String           // benchmark name, or "folder"
    public var root: String?
    public var perDomain: Int?
    public var imageSize: Int
    public var channels: Int
    public var testDomains: [String]
    public var batch: Int
    public var dataSeed: Int
}

public final class Session {
    public var settings = Settings()
    public private(set) var dataset: DomainDataset?
    public private(set) var dataDescriptor: ShellDataChoice?
    public private(set) var environments: EnvironmentAssignment?
    public var network: Network? { didSet { networkVersion += 1 } }
    /// Incremented whenever the model is replaced or re-quantized, so a run never continues on a
    /// different model.
    public private(set) var networkVersion = 0
    public var modelProvenance: [String: RecordValue] = [:]
    public var modelWidth: Double = 1
    public var quantization: QuantizationConfig?
    /// Hyperparameters used by the next `train` (each `train` key updates them).
    public var hyperparameters = Hyperparameters()
    public internal(set) var run: Run?
    private var runNetworkVersion = -1
    /// Manual freeze commands given before a quantized run exists, replayed when it starts.
    var pendingFreezes: [(freeze: Bool, pattern: String, steps: Int?)] = []
    /// Every finished `train` call: method label and selected accuracies (for `results`).
    public var results: [ResultRow] = []
    public var landscapeCache: String { (settings.out as NSString).appendingPathComponent("cache/landscape") }

    /// Draws plots (gnuplot through a pipe; tests substitute a recording stand-in).
    public var plotter: Plotter = GnuplotProcess()
    /// The most recent figure file, for notebook transcripts.
    public var lastFigure: String?
    /// The label of the current run (for plot file names).
    public var runLabel: String?
    /// When set (`fqat-shell --records FILE`, as a sweep task runs), every run's records append to
    /// this one file (DomainBed's `<run>/results.jsonl`) instead of `<out>/<label>.jsonl`.
    public var recordsFile: String?
    /// Extra or replaced record args (`fqat-shell --record-arg key=value`, e.g. a sweep's task id,
    /// hparams_seed, or the DomainBed dataset name; a replaced `dataset` is kept as `benchmark`).
    public var recordArgOverrides: [String: RecordValue] = [:]
    /// `--record-arg key=value`: the value read as JSON (a number, list, quoted text…), else as text.
    public func setRecordArg(_ key: String, text: String) {
        recordArgOverrides[key] = (try? JSONDecoder().decode(RecordValue.self, from: Data(text.utf8))) ?? .string(text)
    }
    /// A session saved when an earlier attempt of this script was stopped (`fqat-shell --resume-from`,
    /// as a re-run sweep task passes its autosave): the `train` that starts the run it was in
    /// continues that run from the saved state instead of from zero (docs/sweeps.md).
    public var resumeFrom: String?
    /// Where SIGTERM saves the session (`fqat-shell --autosave PATH`; default `<out>/autosave.fqsession`).
    public var autosavePath: String?

    public init() {}

    // MARK: Data

    public func setData(_ dataset: DomainDataset, descriptor: ShellDataChoice, environments: EnvironmentAssignment) {
        self.dataset = dataset
        self.dataDescriptor = descriptor
        self.environments = environments
        run = nil
    }

    public func requireData() throws -> (DomainDataset, EnvironmentAssignment) {
        guard let d = dataset, let e = environments else {
            throw CommandError("no data loaded; start with `data style-fmnist test=fog` (see `help data`)")
        }
        return (d, e)
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
        if let r = run, !forceNew, r.method == method, runNetworkVersion == networkVersion,
           r.hyperparameters.continuesWith(hyperparameters), r.environments == environments {
            if r.hyperparameters.tau != hyperparameters.tau || r.hyperparameters.window != hyperparameters.window {
                try r.setFreezeSettings(FreezeSettings(policy: method.freezePolicy, windowLength: hyperparameters.window,
                                                       threshold: hyperparameters.tau))
            }
            return (r, false)
        }
        var hp = hyperparameters
        hp.batchPerDomain = dataDescriptor?.batch ?? hp.batchPerDomain
        let r = try Run(network: network, dataset: dataset, environments: environments, method: method,
                        hyperparameters: hp, seed: UInt64(settings.seed), trialSeed: settings.trialSeed,
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
        runNetworkVersion = networkVersion
        return (r, true)
    }

    public func endRun() { run = nil }

    func markRunCurrent() { runNetworkVersion = networkVersion }

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

extension Session {
    /// Makes a restored run the current one (after `load session`).
    public func adoptRun(_ run: Run) {
        self.run = run
        markRunCurrent()
    }
}
