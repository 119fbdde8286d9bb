// `model` (new, load, show) and `quantize` (attach LSQ/EWGS quantizers and initialise their ranges).
import Datasets
import Foundation
import NN
import Quant
import ShellLanguage
import TensorCore
import Training

extension ShellCommands {
    struct NewModelArguments: CommandArguments {
        @Positional(.choice(Network.knownArchitectures), help: "the architecture") var architecture: String
        @Option(.number(0.0625...8), help: "channel multiplier (1 = the published model)") var width = 1.0
        @Option(help: "CIFAR ResNets: A = identity with zero padding (He et al.), B = 1×1 conv + BN") var shortcut = ResidualShortcut.zeroPadding
        @Option(.int(min: 1), help: "output classes (default: the loaded data's)") var classes: Int?
        @Option(.int(1...4), help: "input channels (default: the loaded data's)") var in_channels: Int?
    }

    struct LoadModelArguments: CommandArguments {
        @Positional(.path, help: "a .safetensors file") var path: String
        @Option(.choice(Network.knownArchitectures), help: "build this architecture first") var architecture: String?
        @Option(.number(0.0625...8), help: "channel multiplier of the new model") var width = 1.0
        @Option(.int(min: 1), help: "classes of the new model (default: the data's)") var classes: Int?
        @Option(help: "fail on any missing, unexpected or mis-shaped name") var strict = true
        @Option(help: "where the weights come from (recorded as provenance, e.g. moco-v2)") var pretraining: String?
    }

    struct ShowModelArguments: CommandArguments {
        @Option(.pattern, help: "only layers whose name matches this glob", completion: .dynamic("layers")) var filter: String?
        @Option(help: "list every parameter with its shape instead") var parameters = false
    }

    static func modelCommand(_ s: Session) -> CommandSpec {
        let new = CommandSpec(
            name: "new", summary: "build a model by architecture, with fresh weights from the session seed",
            arguments: NewModelArguments.self,
            run: { args, inv in
                let classes = args.classes ?? s.dataset?.classCount ?? 10
                let inC = args.in_channels ?? s.dataset?.imageShape.first ?? 1
                let arch = args.architecture
                try checkModelMemory(architecture: arch, width: args.width, classes: classes, inChannels: inC, context: "model new")
                let net = try Network.make(architecture: arch, inChannels: inC, classes: classes, width: args.width,
                                           shortcut: args.shortcut, seed: UInt64(s.settings.seed))
                s.setModel(net, width: args.width,
                           provenance: ["weights": .string("random init (seed \(s.settings.seed))"), "architecture": .string(arch)])
                inv.print("\(arch): \(net.parameterCount) parameters, \(net.convolutions.count) convolutions, \(inC) input channel\(inC == 1 ? "" : "s"), \(classes) classes")
                return modelValue(s)
            })
        let load = CommandSpec(
            name: "load", summary: "load weights from a safetensors file (torchvision names) into the current or a new model",
            discussion: """
            Loads a state dict by name. With `architecture=` a new model is built first; otherwise the current
            model receives the weights, or, when there is none, a file written by `save model` rebuilds its own
            architecture and quantizers (as `load model` does). Missing, unexpected and wrongly shaped names are reported; with
            strict=true any of them is an error and nothing changes. Quantizer scales (`*.w.s`, `*.a.s`) load into
            a quantized model. The file and its SHA-free provenance (path, size) are recorded in every result.
            """,
            arguments: LoadModelArguments.self,
            run: { args, inv in
                let path = args.path
                let url = URL(fileURLWithPath: path)
                // Build into a new model first: a failed load leaves the session's model untouched.
                let net: Network
                if let architecture = args.architecture {
                    // Without data, the file's stem and classifier tell the input channels and classes.
                    let shapes = s.dataset == nil ? ((try? SafeTensors.read(contentsOf: url))?.stateDict.mapValues(\.shape) ?? [:]) : [:]
                    let stem = ["conv1.weight", "network.0.weight", "featurizer.conv1.weight"].lazy.compactMap { shapes[$0] }.first
                    let head = ["fc.weight", "classifier.weight", "linear.weight"].lazy.compactMap { shapes[$0] }.first
                    let classes = args.classes ?? s.dataset?.classCount ?? head?.first ?? 10
                    let inChannels = s.dataset?.imageShape.first ?? stem.flatMap { $0.count == 4 ? $0[1] : nil } ?? 3
                    net = try Network.make(architecture: architecture, inChannels: inChannels,
                                           classes: classes, width: args.width, seed: UInt64(s.settings.seed))
                } else if let current = s.network {
                    net = current
                } else {
                    // No model to load into: a file written by `save model` names its architecture.
                    guard FileManager.default.fileExists(atPath: path) else {
                        throw inv.error("no such file '\(path)'", argument: args.$path)
                    }
                    let file = try SafeTensors.read(contentsOf: url)
                    guard file.metadata["fqat.architecture"] != nil else {
                        throw inv.error("'\(path)' holds weights without an architecture and there is no model to load them into; "
                                        + "add architecture=… (\(Network.knownArchitectures.joined(separator: ", "))) or run `model new …` first",
                                        argument: args.$path)
                    }
                    return try adoptSavedModel(s, path: path, inv, pretraining: args.pretraining)
                }
                let report: LoadReport
                var fileMetadata: [String: String] = [:]
                do {
                    let file = try SafeTensors.read(contentsOf: url)
                    fileMetadata = file.metadata
                    report = try net.load(stateDict: file.stateDict, strict: args.strict)
                } catch NNError.stateDictMismatch(let mismatch) {
                    throw inv.error("'\(path)' does not match the model (nothing was loaded): \(mismatch.summary)",
                                    argument: args.$path, notes: ["`strict=false` loads the matching tensors only and reports the rest"])
                }
                let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
                var provenance: [String: RecordValue] = ["weights": .string(path), "bytes": .int(size),
                                                         "architecture": .string(net.architecture)]
                if let pretraining = args.pretraining { provenance["pretraining"] = .string(pretraining) }
                // A file from scripts/convert_checkpoint.py names the checkpoint it came from (docs/export.md).
                if fileMetadata["format"] == "fqat-shell.converted.v1" {
                    for key in ["source", "source_sha256", "layout"] {
                        if let v = fileMetadata[key] { provenance["converted_" + key] = .string(v) }
                    }
                }
                if args.architecture != nil {
                    s.setModel(net, width: args.width, provenance: provenance)
                } else {
                    s.modelWeightsLoaded(provenance: provenance)
                }
                inv.print("loaded \(report.loaded) tensors from \(path)")
                if !report.isClean { inv.print(report.summary) }
                return modelValue(s)
            })
        let show = CommandSpec(
            name: "show", summary: "print the layers with output shapes and parameter counts",
            arguments: ShowModelArguments.self,
            run: { args, inv in
                let net = try s.requireNetwork()
                if args.parameters {
                    let rows = net.parameters.map { [$0.name, $0.kind.rawValue, "[" + $0.shape.map(String.init).joined(separator: ", ") + "]", String($0.count)] }
                    inv.print(Render.table(["parameter", "kind", "shape", "count"], rows))
                } else {
                    var rows = net.describeLayers(inputShape: s.dataset?.imageShape ?? [net.inChannels, 28, 28])
                    if let filter = args.filter {
                        let p = try LayerPattern(filter)
                        rows = rows.filter { p.matches($0.name) }
                    }
                    inv.print(formatLayerTable(rows))
                }
                inv.print("\(net.architecture): \(net.parameterCount) parameters" + (s.isQuantized ? ", quantized \(s.quantization.map(quantLabel) ?? "")" : ", full precision"))
                return modelValue(s)
            })
        return CommandSpec(name: "model", summary: "create, load or show the model", group: "model",
                           examples: ["model new resnet20", "model new mnist_cnn", "model load erm.safetensors", "model show filter=layer3.*"],
                           subcommands: [new, load, show])
    }

    static func quantLabel(_ q: QuantizationConfig) -> String {
        "\(q.method.rawValue.uppercased()) W\(q.weightBits)/A\(q.activationBits)"
    }

    static func modelValue(_ s: Session) -> Value {
        guard let n = s.network else { return .none }
        return .record(Record([
            ("architecture", .string(n.architecture)),
            ("parameters", .int(n.parameterCount)),
            ("quantized", .bool(s.isQuantized)),
            ("scales", .int(Quant.scaleParameters(in: n).count)),
        ]))
    }

    struct QuantizeArguments: CommandArguments {
        /// `granularity=`: the words of the shell for the engine's `ScaleGranularity`.
        enum Granularity: String, ChoiceArgument {
            case channel, tensor
            var scaleGranularity: ScaleGranularity { self == .tensor ? .perTensor : .perChannel }
        }
        @Positional(help: "quantizer: LSQ (STE) or EWGS (element-wise gradient scaling)") var method: QuantizationMethod
        @Option(.int(2...8), help: "bit width of weights and activations") var bits = 4
        @Option(.int(2...8), help: "weight bit width (overrides bits)") var wbits: Int?
        @Option(.int(2...8), help: "activation bit width (overrides bits)") var abits: Int?
        @Option(help: "range initialisation") var `init` = RangeInitMethod.mse
        @Option(.int(1...64), help: "calibration batches for activation ranges") var calib = 2
        @Option(help: "weight scales per output channel or per tensor") var granularity = Granularity.channel
        @Option(help: "narrow symmetric weight range [−2^(b−1)+1, 2^(b−1)−1]") var narrow = false
        @Option(.list(.pattern), help: "layer patterns kept in full precision", completion: .dynamic("convs")) var keep: [String]?
        @Option(help: "per-layer bits as \"pattern:bits\" or \"pattern:wbits/abits\"") var override: [String]?
        @Option(.number(0...1), help: "EWGS δ (fixed setting)") var delta = 1e-3
    }

    static func quantizeCommand(_ s: Session) -> CommandSpec {
        CommandSpec(
            name: "quantize", summary: "attach LSQ or EWGS quantizers and initialise their ranges",
            discussion: """
            The paper's layout: every convolution quantizes its weight (per output channel) and its input (per
            tensor); the first convolution quantizes only its input (signed: it is the normalised image); the
            classifier stays full precision. Activation ranges are signed or unsigned as the calibration data
            says (inputs after GroupNorm can be negative). init=mse runs the MSE grid search of Nagel et al. on
            the weights and on `calib` batches drawn from the training domains' in-splits, earlier layers
            already quantized. Scale factors are named `<layer>.w.s` and `<layer>.a.s`.
            """,
            group: "model",
            arguments: QuantizeArguments.self,
            examples: ["quantize lsq bits=4", "quantize ewgs bits=3 init=mse calib=4",
                       "quantize lsq bits=4 keep=[layer1.0.conv1] override=[\"layer3.*:8\"]"],
            run: { args, inv in
                let net = try s.requireNetwork()
                if s.isQuantized {
                    throw inv.error("the model is already quantized (\(s.quantization.map(quantLabel) ?? "")); reload or rebuild the full-precision model first (`model load` / `load model`)")
                }
                var config = QuantizationConfig(method: args.method,
                                                weightBits: args.wbits ?? args.bits,
                                                activationBits: args.abits ?? args.bits,
                                                weightGranularity: args.granularity.scaleGranularity,
                                                weightRange: args.narrow ? .narrowSigned : .signed,
                                                keepFullPrecision: args.keep ?? [],
                                                ewgsDelta: Float(args.delta))
                if let overrides = args.override {
                    for o in overrides {
                        let parts = o.split(separator: ":", maxSplits: 1).map(String.init)
                        let b = parts.count == 2 ? parts[1].split(separator: "/").map { Int($0) } : []
                        guard parts.count == 2, !b.isEmpty, b.allSatisfy({ $0 != nil }) else {
                            throw inv.error("override '\(o)' is not \"pattern:bits\" or \"pattern:wbits/abits\"", argument: args.$override)
                        }
                        config.bitOverrides.append(LayerBitOverride(pattern: parts[0], weightBits: b[0]!, activationBits: b.count > 1 ? b[1]! : b[0]!))
                    }
                }
                let initMethod = args.`init`
                let plan = try QuantizationPlan(model: net, config: config)
                let (dataset, env) = try s.requireData()
                let calib = calibrationBatches(s, dataset: dataset, environments: env, count: args.calib)
                let quantizers = try attachQuantizers(to: net, plan: plan)
                do {
                    let summary = try calibrateQuantizers(in: net, batches: calib,
                                                          options: CalibrationOptions(weightMethod: initMethod, activationMethod: initMethod))
                    s.modelQuantized(QuantizationSetup(config: config, rangeInit: initMethod, calibrationBatches: args.calib))
                    inv.print("\(quantLabel(config)): \(quantizers.count) quantizers (\(summary.weightQuantizers) weight, \(summary.activationQuantizers) activation), \(initMethod.rawValue) init on \(summary.batches) calibration batch\(summary.batches == 1 ? "" : "es")")
                    if !summary.signedActivations.isEmpty {
                        inv.print("signed activation ranges: \(summary.signedActivations.joined(separator: ", "))")
                    }
                    if !summary.unreached.isEmpty { inv.warn("warning: calibration never reached \(summary.unreached.joined(separator: ", "))") }
                } catch {
                    _ = removeQuantizers(from: net)
                    throw error
                }
                return modelValue(s)
            })
    }

    /// Calibration batches: the first `count` batches of a sampler over the training domains'
    /// in-splits, without augmentation, seeded from the session seed — the same for every method.
    static func calibrationBatches(_ s: Session, dataset: DomainDataset, environments: EnvironmentAssignment, count: Int) -> [Tensor] {
        let splits = dataset.domainBedSplits(trialSeed: s.settings.trialSeed)
        var sampler = TrainingSampler(splits: splits, trainingDomains: environments.trainingDomains,
                                      batchPerDomain: s.hyperparameters.batchPerDomain,
                                      seed: RNG.seed(combining: UInt64(s.settings.seed), 0xCA11B), augment: false)
        return (0..<count).compactMap { _ in try? sampler.next(from: dataset).images }
    }
}
