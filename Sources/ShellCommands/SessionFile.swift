// `save session` / `load session`: the whole shell state in ONE safetensors file, written by one atomic
// rename: the model's tensors, the settings, data choice, hyperparameters and results as JSON metadata,
// and, when a run is under way, the run's exact-resume checkpoint embedded under `run/` (tensors) and
// `fqat.run.*` (metadata). A kill at any moment leaves either the old session or the new one, never a
// mix (docs/reliability.md). Sessions of format v1 (a `<path>.run` file beside the session) still load.
import Datasets
import Foundation
import NN
import Quant
import ShellLanguage
import Training

struct SessionState: Codable {
    var settings: Settings
    var data: ShellDataChoice?
    var hyperparameters: Hyperparameters
    var results: [ResultRow]
    var quantization: QuantizationSummary?
    var modelWidth: Double
    var provenance: [String: String]
    var hasRun: Bool
}

struct QuantizationSummary: Codable {
    var method: String
    var weightBits: Int
    var activationBits: Int
}

enum SessionFile {
    static let format = "fqat-shell.session.v2"
    static let legacyFormat = "fqat-shell.session.v1"
    /// Prefix of the embedded run checkpoint's tensors and metadata keys.
    static let runTensorPrefix = "run/"
    static let runMetadataPrefix = "fqat.run."

    static func save(_ s: Session, to path: String) throws {
        let state = SessionState(settings: s.settings, data: s.dataDescriptor, hyperparameters: s.hyperparameters,
                                 results: s.results,
                                 quantization: s.quantization.map { QuantizationSummary(method: $0.method.rawValue, weightBits: $0.weightBits, activationBits: $0.activationBits) },
                                 modelWidth: s.modelWidth, provenance: s.modelProvenance.mapValues { $0.description },
                                 hasRun: s.run != nil)
        let json = String(decoding: try JSONEncoder().encode(state), as: UTF8.self)
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
        if metadata["format"] == format { return metadata[runMetadataPrefix + "state"] != nil }
        return metadata["format"] == legacyFormat && FileManager.default.fileExists(atPath: path + ".run")
    }

    /// Loads a session into `s`. Everything (data, model, run) is built and checked first; `s` changes only
    /// when all of it succeeded, so a damaged file leaves the current session as it was.
    static func load(_ s: Session, from path: String) throws {
        let file = try SafeTensors.read(contentsOf: URL(fileURLWithPath: path))
        let format = file.metadata["format"]
        guard format == SessionFile.format || format == legacyFormat, let json = file.metadata["fqat.session"] else {
            throw CommandError("'\(path)' is not an fqat-shell session (no session metadata); models load with `load model`")
        }
        let state: SessionState
        do { state = try JSONDecoder().decode(SessionState.self, from: Data(json.utf8)) } catch {
            throw CommandError("'\(path)': the session metadata is damaged (\(error)); nothing was loaded")
        }
        try validate(state, path: path)
        var dataset: DomainDataset?
        var env: EnvironmentAssignment?
        if let d = state.data {
            let ds = try rebuildData(d)
            dataset = ds
            env = try EnvironmentAssignment(testDomainNames: d.testDomains, in: ds)
        }
        var network: Network?
        if file.metadata["fqat.architecture"] != nil {
            // ModelFile.load takes the model's own tensors (everything outside the embedded run).
            network = try ModelFile.load(file, path: path, seed: UInt64(state.settings.seed)).0
        }
        var run: Run?
        if state.hasRun, let net = network, let ds = dataset {
            let checkpoint: RunCheckpoint
            if format == SessionFile.format {
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
        // Everything is built: swap it in.
        s.settings = state.settings
        ShellCommands.applyThreads(s)
        if let d = state.data, let ds = dataset, let e = env { s.setData(ds, descriptor: d, environments: e) }
        s.network = network
        s.modelWidth = state.modelWidth
        s.hyperparameters = state.hyperparameters
        s.results = state.results
        s.quantization = state.quantization.map {
            QuantizationConfig(method: $0.method == "ewgs" ? .ewgs : .lsq, weightBits: $0.weightBits, activationBits: $0.activationBits)
        }
        s.modelProvenance = state.provenance.mapValues { .string($0) }
        s.endRun()
        if let run { s.adoptRun(run) }
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
        try check("settings.threads", .int(st.threads), .int(1...256), command: "set threads")
        try check("settings.trialSeed", .int(st.trialSeed), .int(min: 0), command: "set trial_seed")
        try check("settings.progress", .string(st.progress), .choice(["auto", "bar", "lines", "off"]), command: "set progress")
        try check("settings.plot", .string(st.plot), .choice(["auto", "png", "svg", "text", "sixel", "none"]), command: "set plot")
        if st.out.isEmpty || st.out.contains("\0") {
            throw CommandError("'\(path)': settings.out is empty or not a path; nothing was loaded")
        }
        if let d = state.data {
            try check("data.batch", .int(d.batch), .int(1...4096), command: "data batch")
            if let p = d.perDomain { try check("data.perDomain", .int(p), .int(min: 1), command: "data per_domain") }
            try check("data.imageSize", .int(d.imageSize), .int(4...1024), command: "data size")
            try check("data.channels", .int(d.channels), .int(1...3), command: "data channels")
            try check("data.dataSeed", .int(d.dataSeed), .int(min: 0), command: "data seed")
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
        if let q = state.quantization {
            try check("quantization.method", .string(q.method), .choice(["lsq", "ewgs"]), command: "quantize")
            try check("quantization.weightBits", .int(q.weightBits), .int(2...8), command: "quantize wbits")
            try check("quantization.activationBits", .int(q.activationBits), .int(2...8), command: "quantize abits")
        }
        try check("modelWidth", number(state.modelWidth), .number(0.0625...8), command: "model new width")
    }

    static func rebuildData(_ d: ShellDataChoice) throws -> DomainDataset {
        if d.source == "folder" || d.source.hasPrefix("/") || d.source.hasPrefix(".") {
            var options = ImageFolderOptions()
            options.imageSize = d.imageSize
            return try DomainBedFolders.load(folder: d.root ?? d.source, options: options)
        }
        try ShellCommands.checkBuiltinDataMemory(source: d.source, perDomain: d.perDomain, size: d.imageSize, channels: d.channels)
        var options = BenchmarkOptions(seed: UInt64(d.dataSeed))
        options.perDomain = d.perDomain
        options.imageSize = d.imageSize
        options.channels = d.channels
        options.sourceDirectory = d.root
        return try Benchmarks.make(d.source, options: options)
    }
}
