// `save`, `load`, `export`: models (with their quantizers) and integer exports.
import Datasets
import Foundation
import NN
import Quant
import ShellLanguage
import TensorCore
import Training

extension ShellCommands {
    /// Makes the model saved at `path` (by `save model`) the session's model: `load model` and
    /// `model load` without a current model.
    static func adoptSavedModel(_ s: Session, path: String, _ inv: Invocation, pretraining: String? = nil) throws -> Value {
        let loaded = try ModelFile.load(path, seed: UInt64(s.settings.seed))
        let net = loaded.network
        var provenance: [String: RecordValue] = ["weights": .string(path), "architecture": .string(net.architecture)]
        if let pretraining { provenance["pretraining"] = .string(pretraining) }
        s.setModel(net, width: loaded.width, provenance: provenance, quantization: loaded.quantization)
        inv.print("loaded \(net.architecture) from \(path)" + (loaded.label.map { " (\($0))" } ?? " (full precision)"))
        return modelValue(s)
    }
}

/// A model file: the state dict (scales included) plus metadata that rebuilds the architecture and
/// the quantizers (bits, signed/unsigned ranges, granularity, method) exactly. The model part of a
/// session file is the same, and owns the model's width, provenance and quantization setup there.
enum ModelFile {
    /// v2: `fqat.provenance` is a JSON object of values and `fqat.quantization.setup` the
    /// `QuantizationSetup`. v1 wrote each provenance value as text holding its JSON (strings quoted twice).
    static let format = "fqat-shell.model.v2"

    /// What `load` rebuilds from a model file.
    struct Loaded {
        var network: Network
        var width: Double
        /// The human-readable quantization (`fqat.quantization`, e.g. "LSQ W4/A4"); nil: full precision.
        var label: String?
        /// How `quantize` set the model up (nil: full precision or a v1 file, which did not say).
        var quantization: QuantizationSetup?
        var provenance: [String: RecordValue]
        var report: LoadReport
    }

    static func encodeJSON<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func save(_ s: Session, network: Network, to path: String) throws {
        let (tensors, meta) = try contents(s, network: network)
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        try SafeTensors.write(tensors, metadata: meta, to: URL(fileURLWithPath: path))
    }

    /// The model file's tensors (state dict, `stateDictNames` order) and metadata; a session file holds
    /// the same plus its own.
    static func contents(_ s: Session, network: Network) throws -> (tensors: [(String, SafeTensorValue)], metadata: [String: String]) {
        var meta: [String: String] = ["format": format, "fqat.architecture": network.architecture,
                                      "fqat.in_channels": String(network.inChannels), "fqat.classes": String(network.classes),
                                      "fqat.width": String(s.modelWidth)]
        if network.namedModules().contains(where: { $0.0.hasSuffix("downsample") }) { meta["fqat.shortcut"] = "B" }
        let states = quantizerStates(in: network)
        if !states.isEmpty {
            meta["fqat.quantizers"] = try encodeJSON(states)
        }
        if let q = s.model?.quantization {
            meta["fqat.quantization"] = ShellCommands.quantLabel(q.config)
            meta["fqat.quantization.setup"] = try encodeJSON(q)
        }
        meta["fqat.provenance"] = try encodeJSON(s.modelProvenance)
        let sd = network.stateDict()
        return (network.stateDictNames.map { ($0, .float(sd[$0]!)) }, meta)
    }

    /// Limits a model file's metadata must meet before anything is built (the same as `model new`'s).
    static let widthRange = 0.0625...8.0
    static let classesRange = 1...100_000
    static let inChannelsRange = 1...64

    /// Loads a model saved by `save`; returns the network and its quantization label.
    static func load(_ path: String, seed: UInt64) throws -> Loaded {
        try load(SafeTensors.read(contentsOf: URL(fileURLWithPath: path)), path: path, seed: seed)
    }

    /// Loads a model from file contents already read. The metadata is checked against limits first (a
    /// hostile `fqat.classes` must not allocate terabytes), then the quantizers' and the tensors' step
    /// sizes must be finite and positive, one quantizer per layer and role.
    static func load(_ file: SafeTensorsFile, path: String, seed: UInt64) throws -> Loaded {
        var file = file
        if let f = file.metadata["format"], SessionFile.embeddedRunFormats.contains(f) {
            // A session file is a model file plus an embedded run: `load model` takes the model part.
            file.names = file.names.filter { !$0.hasPrefix(SessionFile.runTensorPrefix) }
            file.tensors = file.tensors.filter { !$0.key.hasPrefix(SessionFile.runTensorPrefix) }
        }
        let meta = file.metadata
        guard let arch = meta["fqat.architecture"], let inC = meta["fqat.in_channels"].flatMap(Int.init),
              let classes = meta["fqat.classes"].flatMap(Int.init) else {
            throw CommandError("'\(path)' has no fqat-shell model metadata; load plain checkpoints with `model load \(path) architecture=…`")
        }
        let widthText = meta["fqat.width"] ?? "1"
        guard let width = Double(widthText), widthRange.contains(width) else {
            throw CommandError("'\(path)': fqat.width is \(widthText), a model file's width must be between 0.0625 and 8 (as `model new width=`); the file is damaged or was edited")
        }
        guard classesRange.contains(classes) else {
            throw CommandError("'\(path)': fqat.classes is \(classes), must be between 1 and \(classesRange.upperBound); the file is damaged or was edited")
        }
        guard inChannelsRange.contains(inC) else {
            throw CommandError("'\(path)': fqat.in_channels is \(inC), must be between 1 and \(inChannelsRange.upperBound); the file is damaged or was edited")
        }
        guard Network.knownArchitectures.contains(arch.lowercased()) else {
            throw CommandError("'\(path)': unknown architecture '\(arch)' (known: \(Network.knownArchitectures.joined(separator: ", ")))")
        }
        try ShellCommands.checkModelMemory(architecture: arch, width: width, classes: classes, inChannels: inC, context: "'\(path)'")
        let net = try Network.make(architecture: arch, inChannels: inC, classes: classes, width: width,
                                   shortcut: meta["fqat.shortcut"] == "B" ? .projection : .zeroPadding, seed: seed)
        if let q = meta["fqat.quantizers"] {
            let states: [QuantizerState]
            do { states = try JSONDecoder().decode([QuantizerState].self, from: Data(q.utf8)) } catch {
                throw CommandError("'\(path)': the quantizer metadata is damaged (\(error)); the file cannot be loaded")
            }
            var seen = Set<String>()
            for st in states {
                let key = "\(st.layer).\(st.role.rawValue)"
                guard seen.insert(key).inserted else {
                    throw CommandError("'\(path)': quantizer '\(key)' appears twice in the metadata; the file is damaged or was edited")
                }
                if let bad = st.scale.first(where: { !($0.isFinite && $0 > 0) }) {
                    throw CommandError("'\(path)': quantizer '\(key)' has step size \(bad); step sizes must be finite and positive (the file is damaged or was edited)")
                }
            }
            try restoreQuantizers(states, in: net)
        }
        let report = try net.load(stateDict: file.stateDict, strict: true)
        for p in net.parameters where p.kind == .scale {
            if let bad = p.value.data.first(where: { !($0.isFinite && $0 > 0) }) {
                throw CommandError("'\(path)': step size '\(p.name)' holds \(bad); step sizes must be finite and positive (the file is damaged or was edited)")
            }
        }
        var quantization: QuantizationSetup?
        if let text = meta["fqat.quantization.setup"] {
            let setup: QuantizationSetup
            do { setup = try JSONDecoder().decode(QuantizationSetup.self, from: Data(text.utf8)) } catch {
                throw CommandError("'\(path)': fqat.quantization.setup is damaged (\(error)); the file is damaged or was edited")
            }
            try SessionFile.validate(setup, path: path, nothingLoaded: "the file cannot be loaded")
            quantization = setup
        }
        return Loaded(network: net, width: width, label: meta["fqat.quantization"], quantization: quantization,
                      provenance: provenance(meta), report: report)
    }

    /// `fqat.provenance`: a JSON object in the current formats; in older files (model v1, session
    /// v1/v2) an object of texts, each a value's JSON form, which `legacyProvenanceValue` reads back.
    static func provenance(_ meta: [String: String]) -> [String: RecordValue] {
        guard let text = meta["fqat.provenance"] else { return [:] }
        let current = [format, SessionFile.format].contains(meta["format"] ?? "")
        if current, let p = try? JSONDecoder().decode([String: RecordValue].self, from: Data(text.utf8)) { return p }
        let legacy = (try? JSONDecoder().decode([String: String].self, from: Data(text.utf8))) ?? [:]
        return legacy.mapValues(legacyProvenanceValue)
    }

    /// A provenance value of an older file: `RecordValue.description`, so text is wrapped in quotes
    /// (without escaping) and numbers, booleans, lists and objects are their JSON.
    static func legacyProvenanceValue(_ text: String) -> RecordValue {
        if text.count >= 2, text.hasPrefix("\""), text.hasSuffix("\"") { return .string(String(text.dropFirst().dropLast())) }
        return (try? JSONDecoder().decode(RecordValue.self, from: Data(text.utf8))) ?? .string(text)
    }
}

extension ShellCommands {
    /// What `save` and `load` read or write.
    enum FileContent: String, ChoiceArgument { case model, session }

    struct SaveArguments: CommandArguments {
        @Positional(help: "model or session") var what: FileContent
        @Positional(.path, help: "file to write") var path: String
    }

    struct LoadArguments: CommandArguments {
        @Positional(help: "model or session") var what: FileContent
        @Positional(.path, help: "file to read") var path: String
    }

    struct ExportIntegerArguments: CommandArguments {
        @Positional(.path, help: "file to write") var path: String
        @Option(.int(0...100_000), help: "images to compare (0 skips the check)") var check = 512
        @Option(help: "print the per-layer SQNR report") var report = true
    }

    struct SetArguments: CommandArguments {
        @Option(.int(min: 0), help: "seed of model init, batches and directions (same seed, same run)") var seed: Int?
        @Option(.int(Parallel.supportedThreads), help: "threads for BLAS and the engine's own loops (default: the cores available); a run is bit-identical for the same seed and thread count, and records store the count, so a change ends the current run (the next `train` starts a new one)") var threads: Int?
        @Option(help: "convolution backend: onednn (oneDNN's JIT kernels, the default when libdnnl loads) or openblas (im2col + sgemm, the reference); both give the same results within float32 rounding, each bit-identical run to run; records store it, so a change ends the current run") var backend: ComputeBackend?
        @Option(.path, help: "folder for records, plots, checkpoints") var out: String?
        @Option(help: "progress display") var progress: ProgressSetting?
        @Option(help: "where plots go") var plot: PlotSetting?
        @Option(.int(min: 0), help: "DomainBed trial seed of the in/out split") var trial_seed: Int?
    }

    struct ShowArguments: CommandArguments {
        enum Topic: String, ChoiceArgument { case all, settings, data, model, quant, hparams, run, system }
        @Positional(help: "what to show (system: the BLAS library and kernel core, CPU instruction sets, threads)") var what = Topic.all
    }

    static func saveCommand(_ s: Session) -> CommandSpec {
        CommandSpec(
            name: "save", summary: "save the model (with its quantizers) or the whole session to a file",
            discussion: """
            `save model runs/fp.safetensors` writes the weights, BatchNorm statistics and scale factors as
            safetensors, with metadata that rebuilds the architecture and quantizers on `load model`.
            `save session runs/s.fqsession` writes everything needed to continue exactly: settings, data
            choice, model, quantizers, and the current run (optimizer moments, disorder windows, freeze timers,
            sampler and dropout RNG state, records), all in that one file, replaced by one atomic rename: a
            kill at any moment leaves the old session or the new one, never a mix.
            """,
            group: "files",
            arguments: SaveArguments.self,
            examples: ["save model runs/erm.safetensors", "save session runs/study.fqsession"],
            run: { args, inv in
                let path = args.path
                switch args.what {
                case .model:
                    let net = try s.requireNetwork()
                    try ModelFile.save(s, network: net, to: path)
                    inv.print("saved \(net.architecture)\(s.isQuantized ? " (quantized)" : "") to \(path)")
                case .session:
                    try SessionFile.save(s, to: path)
                    inv.print("saved session to \(path)" + (s.run.map { " (run \($0.method.rawValue) at step \($0.step))" } ?? ""))
                }
                return .string(path)
            })
    }

    static func loadCommand(_ s: Session) -> CommandSpec {
        CommandSpec(
            name: "load", summary: "load a model saved with `save model`, or a whole session",
            group: "files",
            arguments: LoadArguments.self,
            examples: ["load model runs/erm.safetensors", "load session runs/study.fqsession"],
            run: { args, inv in
                let path = args.path
                switch args.what {
                case .model:
                    return try adoptSavedModel(s, path: path, inv)
                case .session:
                    for note in try SessionFile.load(s, from: path) { inv.warn(note) }
                    inv.print("loaded session from \(path)" + (s.run.map { ": run \($0.method.rawValue) at step \($0.step)" } ?? ""))
                    return .string(path)
                }
            })
    }

    static func exportCommand(_ s: Session) -> CommandSpec {
        let integer = CommandSpec(
            name: "integer", summary: "export the quantized model as integer weight codes plus scales, and check it",
            discussion: """
            Writes safetensors with INT8 weight codes, F32 scales and metadata naming bits, ranges and layout
            (docs/quantization.md). Then reloads the export alone, runs the integer path (integer weights ×
            integer activation codes accumulated in Int32, rescaled by the scales) on `check` evaluation images
            and compares it with the fake-quantized model: argmax agreement and the largest logit difference.
            """,
            arguments: ExportIntegerArguments.self,
            run: { args, inv in
                let net = try s.requireNetwork()
                let path = args.path
                let summary = try exportIntegerModel(net, to: path, width: s.modelWidth)
                inv.print("exported \(summary.integerWeightLayers.count) integer-weight layers (\(summary.tensors) tensors, \(summary.bytes) bytes) to \(path)")
                var fields: [(String, Value)] = [("path", .string(path)), ("bytes", .int(summary.bytes))]
                if let (dataset, env) = try? s.requireData() {
                    let batch = calibrationBatches(s, dataset: dataset, environments: env, count: 1).first
                    if args.report {
                        inv.print(formatQuantizationReport(quantizationReport(for: net, batch: batch)))
                    }
                    fields += try integerPathCheck(s, net, exportPath: path, images: args.check, inv)
                }
                return .record(Record(fields))
            })
        return CommandSpec(
            name: "export", summary: "export the model: integer codes + scales (safetensors) or an ONNX graph",
            discussion: """
            `export integer FILE` writes our own integer format and checks the integer inference path;
            `export onnx FILE` writes a standard ONNX graph (QuantizeLinear/DequantizeLinear for the quantized
            layers) that ONNX Runtime and other runtimes read (docs/export.md).
            """,
            group: "files",
            examples: ["export integer runs/w4a4.safetensors", "export onnx runs/w4a4.onnx reference=runs/w4a4.reference.safetensors"],
            subcommands: [integer, exportONNXCommand(s)])
    }

    /// Compares the integer path (the integer export at `exportPath` reloaded alone) with the
    /// fake-quantized model on up to `images` evaluation images; prints and returns the result.
    static func integerPathCheck(_ s: Session, _ net: Network, exportPath path: String, images n: Int,
                                 _ inv: Invocation) throws -> [(String, Value)] {
        guard n > 0, let (dataset, _) = try? s.requireData() else { return [] }
        let integer = try loadIntegerModel(from: path)
        let splits = dataset.domainBedSplits(trialSeed: s.settings.trialSeed)
        var agree = 0, total = 0
        var maxDiff: Float = 0, maxLogit: Float = 0
        outer: for d in 0..<dataset.domains.count {
            var it = EvaluationSet(domain: d, part: .out, indices: splits[d].outIndices).batches(of: dataset, batchSize: 128)
            while let b = try it.next() {
                let a = net.forward(b.images, .eval), c = integer.forward(b.images, .eval)
                let k = a.shape[1]
                for i in 0..<b.labels.count {
                    var ia = 0, ic = 0
                    for j in 0..<k {
                        if a.data[i * k + j] > a.data[i * k + ia] { ia = j }
                        if c.data[i * k + j] > c.data[i * k + ic] { ic = j }
                        maxDiff = max(maxDiff, abs(a.data[i * k + j] - c.data[i * k + j]))
                        maxLogit = max(maxLogit, abs(a.data[i * k + j]))
                    }
                    if ia == ic { agree += 1 }
                    total += 1
                    if total >= n { break outer }
                }
            }
        }
        inv.print("integer path vs fake-quantized model on \(total) images: argmax agrees on \(agree) (\(Render.percent(Double(agree) / Double(max(total, 1)), decimals: 2))%), max |Δlogit| \(Render.number(Double(maxDiff), "%.3g")) (max |logit| \(Render.number(Double(maxLogit), "%.3g")))")
        return [("agreement", .number(Double(agree) / Double(max(total, 1)))), ("max_logit_diff", .number(Double(maxDiff)))]
    }

    static func setCommand(_ s: Session) -> CommandSpec {
        CommandSpec(
            name: "set", summary: "change settings: seed, threads, compute backend, out folder, progress style, plot target, trial seed",
            group: "shell",
            arguments: SetArguments.self,
            examples: ["set seed=23", "set threads=1 out=runs/seed23", "set backend=openblas"],
            run: { args, inv in
                if let backend = args.backend {
                    do { try s.setBackend(backend) } catch let e as BackendUnavailable {
                        throw inv.error("\(e.description)", argument: args.$backend,
                                           notes: ["install libdnnl-dev (scripts/setup.sh does) and restart, or keep backend=openblas"])
                    }
                }
                if let seed = args.seed { s.settings.seed = seed }
                if let threads = args.threads { s.setThreads(threads) }
                if let out = args.out { s.settings.out = out }
                if let progress = args.progress { s.settings.progress = progress }
                if let plot = args.plot { s.settings.plot = plot }
                if let trialSeed = args.trial_seed { s.setTrialSeed(trialSeed) }
                return .none
            })
    }

    static func showCommand(_ s: Session) -> CommandSpec {
        CommandSpec(
            name: "show", summary: "show settings, data, model, quantization, hyperparameters, the current run or the compute path (system)",
            group: "shell",
            arguments: ShowArguments.self,
            run: { args, inv in
                let what = args.what
                if what == .all || what == .system {
                    let compute = ComputeInfo.current()
                    inv.print(compute.line)
                    if compute.genericCoreOnWideCPU { inv.print("  (generic BLAS kernels on a CPU with wide vector units: see docs/benchmarks.md, \"Which kernels run\")") }
                }
                if what == .all || what == .settings {
                    let st = s.settings
                    inv.print("settings: seed \(st.seed), threads \(st.threads), backend \(Backend.current.rawValue), out \(st.out), progress \(st.progress.rawValue), plot \(st.plot.rawValue), trial_seed \(st.trialSeed)")
                }
                if what == .all || what == .data { inv.print(describeData(s)) }
                if what == .all || what == .model || what == .quant {
                    if let n = s.network {
                        inv.print("model: \(n.architecture), \(n.parameterCount) parameters, " + (s.quantization.map(quantLabel) ?? (s.isQuantized ? "quantized" : "full precision")))
                    } else { inv.print("model: none") }
                }
                if what == .quant, let n = s.network, s.isQuantized {
                    inv.print(formatQuantizationReport(quantizationReport(for: n, batch: nil)))
                }
                if what == .all || what == .hparams {
                    let h = s.hyperparameters
                    inv.print("hyperparameters: lr \(Value.format(h.learningRate)), wd \(Value.format(h.weightDecay)), scale_lr \(Value.format(h.scaleLearningRate)), rho \(Value.format(h.rho)), alpha \(Value.format(h.alpha)), tau \(Value.format(Double(h.tau))), K \(h.window), eval_every \(h.evalEvery), eval \(h.evaluateTrainingInSplits ? "all" : "selection"), bn \(h.frozenBatchNorm ? "frozen" : "train"), dropout \(Value.format(h.dropout))")
                }
                if what == .all || what == .run {
                    if let r = s.run {
                        inv.print("run: \(r.method.rawValue) at step \(r.step), \(r.records.count) evaluations — \(runDescription(r))")
                    } else { inv.print("run: none") }
                }
                return .none
            })
    }
}
