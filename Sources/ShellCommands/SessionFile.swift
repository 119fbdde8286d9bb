// `save session` / `load session`: the whole shell state in ONE safetensors file, written by one atomic
// rename: the model's tensors, the settings, data choice, hyperparameters and results as JSON metadata,
// and, when a run is under way, the run's exact-resume checkpoint embedded under `run/` (tensors) and
// `fqat.run.*` (metadata). A kill at any moment leaves either the old session or the new one, never a
// mix (docs/reliability.md). The same session saves to the same bytes (keys sorted). Sessions of format
// v2 and v1 (a `<path>.run` file beside the session) still load; `SessionState` migrates their JSON.
import Datasets
import Foundation
import NN
import Quant
import ShellLanguage
import TensorCore
import Training

/// The session's JSON (metadata key `fqat.session`): every saved value once, in its own Codable type.
/// The model's width, provenance and quantization setup belong to the model part of the file (the
/// same metadata a model file has, `ModelFile`); the run, its label included (`recordArgs["label"]`),
/// is the embedded run checkpoint.
struct SessionState: Codable {
    var settings: Settings
    /// The convolution backend (`set backend`); nil in v1/v2 files, which keep the current one.
    var backend: String?
    var data: DataChoice?
    var hyperparameters: Hyperparameters
    /// `freeze`/`unfreeze` waiting for the next quantized run (none in v1/v2 files, which dropped them).
    var pendingFreezes: [PendingFreeze]
    var results: [ResultRow]
    var hasRun: Bool
    /// v1/v2 only: what they kept in the JSON and v3 reads from the model part. The quantization was
    /// method and bits alone (the other options take their defaults, `QuantizationSetup`'s decoder).
    var legacyQuantization: QuantizationSetup?

    init(settings: Settings, backend: String?, data: DataChoice?, hyperparameters: Hyperparameters,
         pendingFreezes: [PendingFreeze], results: [ResultRow], hasRun: Bool) {
        self.settings = settings; self.backend = backend; self.data = data; self.hyperparameters = hyperparameters
        self.pendingFreezes = pendingFreezes; self.results = results; self.hasRun = hasRun
    }

    enum CodingKeys: String, CodingKey {
        case settings, backend, data, hyperparameters, pendingFreezes, results, hasRun
        /// Never written (nil when saving): v1/v2's quantization summary.
        case legacyQuantization = "quantization"
    }

    /// Reads v3 and migrates v1/v2: the data choice had its own fields and the batch
    /// (`LegacyDataChoice`; the batch is now `hyperparameters.batchPerDomain`), the quantization
    /// summary is kept for `load`. (Their `modelWidth` and `provenance` keys repeat the model part's
    /// `fqat.width` and `fqat.provenance`, which `load` reads.)
    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        settings = try c.decode(Settings.self, forKey: .settings)
        backend = try c.decodeIfPresent(String.self, forKey: .backend)
        hyperparameters = try c.decode(Hyperparameters.self, forKey: .hyperparameters)
        pendingFreezes = try c.decodeIfPresent([PendingFreeze].self, forKey: .pendingFreezes) ?? []
        results = try c.decode([ResultRow].self, forKey: .results)
        hasRun = try c.decode(Bool.self, forKey: .hasRun)
        legacyQuantization = try c.decodeIfPresent(QuantizationSetup.self, forKey: .legacyQuantization)
        if let legacy = try? c.decodeIfPresent(LegacyDataChoice.self, forKey: .data) {
            guard legacy.dataSeed >= 0 else {
                throw DecodingError.dataCorruptedError(forKey: .data, in: c, debugDescription: "data.dataSeed is \(legacy.dataSeed), must be ≥ 0")
            }
            data = legacy.choice
            hyperparameters.batchPerDomain = legacy.batch
        } else {
            data = try c.decodeIfPresent(DataChoice.self, forKey: .data)
        }
    }
}

/// The data choice of v1/v2 session files: a source name ("folder" or a path for folders), its own
/// copies of the benchmark options, and the batch per domain.
struct LegacyDataChoice: Decodable {
    var source: String
    var root: String?
    var perDomain: Int?
    var imageSize: Int
    var channels: Int
    var testDomains: [String]
    var batch: Int
    var dataSeed: Int

    var choice: DataChoice {
        let descriptor: DataDescriptor
        if source == "folder" || source.hasPrefix("/") || source.hasPrefix(".") || source.hasPrefix("~") {
            let folder = HomePath.expand(root ?? source)
            var options = ImageFolderOptions()
            options.imageSize = imageSize
            descriptor = .folder(folder, name: (folder as NSString).lastPathComponent, options: options)
        } else {
            var options = BenchmarkOptions(seed: UInt64(dataSeed))
            options.perDomain = perDomain
            options.imageSize = imageSize
            options.channels = channels
            options.sourceDirectory = root
            descriptor = .builtin(source, options: options)
        }
        return DataChoice(descriptor: descriptor, testDomains: testDomains)
    }
}

enum SessionFile {
    /// v3: the JSON of `SessionState` as it is now. v2 (one file, the JSON of `LegacyDataChoice`, a
    /// quantization of method and bits, provenance quoted twice) and v1 (v2's JSON, the run in a
    /// `<path>.run` file beside it) still load.
    static let format = "fqat-shell.session.v3"
    static let formatV2 = "fqat-shell.session.v2"
    static let legacyFormat = "fqat-shell.session.v1"
    /// The formats whose run is embedded in the file (`run/`, `fqat.run.`).
    static let embeddedRunFormats: Set<String> = [format, formatV2]

    /// The session JSON: keys sorted, so the same session is the same bytes.
    static func encodeState(_ state: SessionState) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do { return String(decoding: try encoder.encode(state), as: UTF8.self) } catch {
            throw CommandError("cannot save the session: \(error)")
        }
    }
    /// Prefix of the embedded run checkpoint's tensors and metadata keys.
    static let runTensorPrefix = "run/"
    static let runMetadataPrefix = "fqat.run."

    static func save(_ s: Session, to path: String) throws {
        let state = SessionState(settings: s.settings, backend: Backend.current.rawValue, data: s.dataChoice,
                                 hyperparameters: s.hyperparameters, pendingFreezes: s.pendingFreezes, results: s.results,
                                 hasRun: s.run != nil)
        let json = try encodeState(state)
        var tensors: [(String, SafeTensorValue)] = []
        var metadata: [String: String] = [:]
        if let net = s.network {
            (tensors, metadata) = try ModelFile.contents(s, network: net)
        }
        if let run = s.run {
            let (runTensors, runMetadata) = try run.makeCheckpoint().contents(source: path)
            tensors += runTensors.map { (runTensorPrefix + $0.0, $0.1) }
            for (key, value) in runMetadata { metadata[runMetadataPrefix + key] = value }
        }
        metadata["format"] = format
        metadata["fqat.session"] = json
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty {
            do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
                throw CommandError("cannot create the folder '\(dir)' for the session: \(error.localizedDescription)")
            }
        }
        // One file, one atomic rename (SafeTensors.write): the old session stays whole until the new one is.
        try SafeTensors.write(tensors, metadata: metadata, to: URL(fileURLWithPath: path))
        // A v1 run file beside it would be stale now; v2 never reads it, so removing it may fail harmlessly.
        let legacyRun = path + ".run"
        if FileManager.default.fileExists(atPath: legacyRun) { try? FileManager.default.removeItem(atPath: legacyRun) }
    }

    /// Whether the session file at `path` holds a run to continue (v2: the embedded run; v1: a `.run`
    /// file beside it). Reads only the file's header.
    static func hasRun(at path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        guard let lengthBytes = try? handle.read(upToCount: 8), lengthBytes.count == 8 else { return false }
        let length = lengthBytes.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard length > 0, length <= 100_000_000, let header = try? handle.read(upToCount: Int(length)),
              let object = try? JSONSerialization.jsonObject(with: header) as? [String: Any],
              let metadata = object["__metadata__"] as? [String: String] else { return false }
        if let f = metadata["format"], embeddedRunFormats.contains(f) { return metadata[runMetadataPrefix + "state"] != nil }
        return metadata["format"] == legacyFormat && FileManager.default.fileExists(atPath: path + ".run")
    }

    /// Loads a session into `s`. Everything (data, model, run) is built and checked first; `s` changes only
    /// when all of it succeeded, so a damaged file leaves the current session as it was.
    /// Returns notes for the user (a saved backend that is not available here, for a session without a run).
    @discardableResult
    static func load(_ s: Session, from path: String) throws -> [String] {
        let file = try SafeTensors.read(contentsOf: URL(fileURLWithPath: path))
        let format = file.metadata["format"]
        guard let format, embeddedRunFormats.contains(format) || format == legacyFormat, let json = file.metadata["fqat.session"] else {
            throw CommandError("'\(path)' is not an fqat-shell session (no session metadata); models load with `load model`")
        }
        let state: SessionState
        do { state = try JSONDecoder().decode(SessionState.self, from: Data(json.utf8)) } catch {
            throw CommandError("'\(path)': the session metadata is damaged (\(error)); nothing was loaded")
        }
        try validate(state, path: path)
        var data: SessionData?
        if let choice = state.data {
            let dataset = try rebuildData(choice.descriptor)
            data = SessionData(dataset: dataset, choice: choice,
                               environments: try EnvironmentAssignment(testDomainNames: choice.testDomains, in: dataset))
        }
        let backend = try state.backend.map { name in
            guard let b = ComputeBackend(rawValue: name) else {
                throw CommandError("'\(path)': backend '\(name)' is not one of \(ComputeBackend.allCases.map(\.rawValue).joined(separator: ", ")) (the file is damaged or was edited); nothing was loaded")
            }
            return b
        }
        var model: SessionModel?
        if file.metadata["fqat.architecture"] != nil {
            // ModelFile.load takes the model's own tensors (everything outside the embedded run).
            let loaded = try ModelFile.load(file, path: path, seed: UInt64(state.settings.seed))
            model = SessionModel(network: loaded.network, width: loaded.width, provenance: loaded.provenance,
                                 quantization: format == SessionFile.format ? loaded.quantization : state.legacyQuantization)
        }
        var run: Run?
        if state.hasRun, let net = model?.network, let ds = data?.dataset {
            let checkpoint: RunCheckpoint
            if embeddedRunFormats.contains(format) {
                var runFile = SafeTensorsFile(tensors: [:], names: [])
                for name in file.names where name.hasPrefix(runTensorPrefix) {
                    let inner = String(name.dropFirst(runTensorPrefix.count))
                    runFile.names.append(inner)
                    runFile.tensors[inner] = file.tensors[name]
                }
                for (key, value) in file.metadata where key.hasPrefix(runMetadataPrefix) {
                    runFile.metadata[String(key.dropFirst(runMetadataPrefix.count))] = value
                }
                checkpoint = try RunCheckpoint.decode(runFile, source: path + " (its run)")
            } else {
                checkpoint = try RunCheckpoint.read(from: path + ".run")
            }
            run = try Run.resume(checkpoint, network: net, dataset: ds)
        }
        // Everything is built: swap it in. What the file does not hold (no data, no model) is gone.
        // A run continues only on the backend its records state; without a run the backend is a preference.
        var notes: [String] = []
        if let backend, backend != Backend.current {
            do { try Backend.select(backend) } catch {
                let reason = "'\(path)' was saved with backend=\(backend.rawValue), which is not available here (\(error))"
                guard run == nil else {
                    throw CommandError("\(reason); its run cannot continue on another backend, so nothing was loaded. Install libdnnl-dev (scripts/setup.sh does) and restart")
                }
                notes.append("note: \(reason); keeping backend=\(Backend.current.rawValue)")
            }
        }
        s.restore(settings: state.settings, data: data, model: model, hyperparameters: state.hyperparameters,
                  pendingFreezes: state.pendingFreezes, results: state.results, run: run)
        return notes
    }

    /// A loaded session passes the same checks as the commands that would have set it (`set`, `data`,
    /// `train`, `quantize`, `model new`), with the same ranges; the message names the file and the key.
    static func validate(_ state: SessionState, path: String) throws {
        func check(_ key: String, _ value: Value, _ kind: ArgKind, command: String) throws {
            do { _ = try kind.coerce(value) } catch let p as ArgumentProblem {
                throw CommandError("'\(path)': \(key) \(p.message) (the file is damaged or was edited; `\(command)` accepts \(kind.helpDescription)); nothing was loaded")
            }
        }
        func number(_ d: Double) -> Value { .number(d) }
        let st = state.settings
        try check("settings.seed", .int(st.seed), .int(min: 0), command: "set seed")
        try check("settings.threads", .int(st.threads), .int(Parallel.supportedThreads), command: "set threads")
        try check("settings.trialSeed", .int(st.trialSeed), .int(min: 0), command: "set trial_seed")
        if st.out.isEmpty || st.out.contains("\0") {
            throw CommandError("'\(path)': settings.out is empty or not a path; nothing was loaded")
        }
        if let d = state.data?.descriptor {
            let options = d.benchmarkOptions
            if let p = options.perDomain { try check("data.perDomain", .int(p), .int(min: 1), command: "data per_domain") }
            if let p = d.limitPerDomain { try check("data.limitPerDomain", .int(p), .int(min: 1), command: "data per_domain") }
            try check("data.imageSize", .int(options.imageSize), .int(4...1024), command: "data size")
            try check("data.channels", .int(options.channels), .int(1...3), command: "data channels")
            if d.name.isEmpty || d.name.contains("\0") || (d.path ?? "").contains("\0") {
                throw CommandError("'\(path)': data.name or data.path is empty or not a path; nothing was loaded")
            }
        }
        let h = state.hyperparameters
        for (key, value, range) in [("lr", h.learningRate, 0.0...1), ("wd", h.weightDecay, 0...1), ("scale_lr", h.scaleLearningRate, 0...1),
                                    ("rho", h.rho, 0...10), ("alpha", h.alpha, 0...1), ("tau", Double(h.tau), 0...1),
                                    ("dropout", h.dropout, 0...0.99)] {
            try check("hyperparameters.\(key)", number(value), .number(range), command: "train \(key)")
        }
        try check("hyperparameters.K", .int(h.window), .int(2...1_000_000), command: "train K")
        try check("hyperparameters.eval_every", .int(h.evalEvery), .int(min: 1), command: "train eval_every")
        try check("hyperparameters.evalBatch", .int(h.evalBatch), .int(1...4096), command: "eval batch")
        try check("hyperparameters.batchPerDomain", .int(h.batchPerDomain), .int(1...4096), command: "data batch")
        try check("hyperparameters.ewgsHessianEvery", .int(h.ewgsHessianEvery), .int(min: 0), command: "train")
        try check("hyperparameters.ewgsHessianIterations", .int(h.ewgsHessianIterations), .int(1...100_000), command: "train")
        if let setup = state.legacyQuantization { try validate(setup, path: path) }
    }

    /// A saved quantization setup passes `quantize`'s checks.
    static func validate(_ setup: QuantizationSetup, path: String, nothingLoaded: String = "nothing was loaded") throws {
        func check(_ key: String, _ value: Value, _ kind: ArgKind, command: String) throws {
            do { _ = try kind.coerce(value) } catch let p as ArgumentProblem {
                throw CommandError("'\(path)': \(key) \(p.message) (the file is damaged or was edited; `\(command)` accepts \(kind.helpDescription)); \(nothingLoaded)")
            }
        }
        let q = setup.config
        try check("quantization.weightBits", .int(q.weightBits), .int(2...8), command: "quantize wbits")
        try check("quantization.activationBits", .int(q.activationBits), .int(2...8), command: "quantize abits")
        try check("quantization.ewgsDelta", .number(Double(q.ewgsDelta)), .number(0...1), command: "quantize delta")
        try check("quantization.calibrationBatches", .int(setup.calibrationBatches), .int(1...64), command: "quantize calib")
        for (i, o) in q.bitOverrides.enumerated() {
            for bits in [o.weightBits, o.activationBits].compactMap({ $0 }) {
                try check("quantization.bitOverrides[\(i)]", .int(bits), .int(2...8), command: "quantize override")
            }
        }
    }

    /// Rebuilds saved data; built-in benchmarks pass the same memory check as `data`.
    static func rebuildData(_ d: DataDescriptor) throws -> DomainDataset {
        if d.kind == .builtin {
            let options = d.benchmarkOptions
            try ShellCommands.checkBuiltinDataMemory(source: d.name, perDomain: options.perDomain, size: options.imageSize,
                                                     channels: options.channels)
        }
        return try d.make()
    }
}
