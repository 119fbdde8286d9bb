// Run checkpoints: everything needed to continue a run exactly, in one safetensors file.
//
// Layout (format "fqat-run-v1", docs/fqat.md "Training runs"):
//   tensors (F32)  every model parameter and buffer under its state-dict name ("conv1.weight",
//                  "bn1.running_mean", "layer1.0.conv1.w.s", …), so the file also loads as a model
//                  state dict (non-strict: the optimizer tensors are then reported as unexpected);
//                  every optimizer buffer as "optimizer/<parameter>/<buffer>" (exp_avg, exp_avg_sq).
//   __metadata__   "format": "fqat-run-v1", "state": the JSON of `RunState` (everything that is not
//                  a big tensor: method, hyperparameters, seeds, step, environments, data and model
//                  descriptors, quantizer states, the stepper's controller/trace/optimizer step counts,
//                  sampler and dropout generators, records, args, provenance), plus "architecture",
//                  "method" and "step" for people and tools that read headers.
// Floats in the JSON use Swift's shortest round-trip form, so decoding gives back the same bits;
// moments are F32 tensors, bit-exact by construction.
import Datasets
import Foundation
import NN
import Optim
import Quant
import TensorCore

/// The non-tensor state of a run checkpoint (the JSON in `__metadata__["state"]`).
public struct RunState: Codable, Equatable, Sendable {
    public var method: TrainingMethod
    public var hyperparameters: Hyperparameters
    public var seed: UInt64
    public var trialSeed: Int
    /// Steps taken when the checkpoint was written.
    public var step: Int
    public var environments: EnvironmentAssignment
    public var data: DataDescriptor?
    public var dataFingerprint: DataFingerprint
    public var model: ModelDescriptor?
    public var architecture: String
    public var inChannels: Int
    public var classes: Int
    /// `Quant.quantizerStates(in:)`; empty for a full-precision model.
    public var quantizers: [QuantizerState]
    /// The stepper's checkpoint with every optimizer buffer emptied (the values are tensors).
    public var stepper: FQATCheckpoint
    public var sampler: TrainingSamplerState
    public var dropoutRNG: RNG
    public var records: [EvalRecord]
    public var recordArgs: [String: StoredValue]
    public var provenance: [String: StoredValue]
    public var lossSinceEvaluation: Double
    public var stepsSinceEvaluation: Int
    public var traceRecentSteps: Int?
}

/// A run checkpoint in memory: its state and its tensors.
public struct RunCheckpoint {
    public static let format = "fqat-run-v1"
    /// Prefix of the optimizer buffers' tensor names.
    public static let optimizerPrefix = "optimizer/"

    public var state: RunState
    /// Model state dict (parameters, buffers, scales) by name.
    public var modelTensors: [String: Tensor]
    /// Model tensor names in file order.
    public var modelTensorNames: [String]
    /// Optimizer buffers by "optimizer/<parameter>/<buffer>".
    public var optimizerTensors: [String: Tensor]

    static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return e
    }

    static func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return d
    }

    /// The checkpoint as safetensors contents: tensors in file order and string metadata.
    /// A session file embeds these (under a prefix) so that a session is one file.
    public func contents(source path: String = "<memory>") throws -> (tensors: [(String, SafeTensorValue)], metadata: [String: String]) {
        let json: Data
        do { json = try RunCheckpoint.encoder().encode(state) } catch {
            throw TrainingError.badCheckpoint("\(path): cannot encode the run state: \(error)")
        }
        var tensors: [(String, SafeTensorValue)] = modelTensorNames.map { ($0, .float(modelTensors[$0]!)) }
        for name in optimizerTensors.keys.sorted() { tensors.append((name, .float(optimizerTensors[name]!))) }
        let metadata = ["format": RunCheckpoint.format, "state": String(decoding: json, as: UTF8.self),
                        "architecture": state.architecture, "method": state.method.rawValue, "step": String(state.step)]
        return (tensors, metadata)
    }

    /// Writes the file atomically (a reader never sees half a checkpoint).
    public func write(to path: String) throws {
        let (tensors, metadata) = try contents(source: path)
        do {
            try SafeTensors.write(tensors, metadata: metadata, to: URL(fileURLWithPath: path))
        } catch {
            throw TrainingError.badCheckpoint("cannot write \(path): \(error)")
        }
    }

    /// Reads and decodes a checkpoint file; anything unreadable or malformed is `badCheckpoint`.
    public static func read(from path: String) throws -> RunCheckpoint {
        let file: SafeTensorsFile
        do { file = try SafeTensors.read(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw TrainingError.badCheckpoint("\(error)")
        }
        return try decode(file, source: path)
    }

    /// Decodes checkpoint contents already read (a `.run` file, or the part a session file embeds);
    /// anything malformed is `badCheckpoint` naming `path`.
    public static func decode(_ file: SafeTensorsFile, source path: String) throws -> RunCheckpoint {
        guard let format = file.metadata["format"] else {
            throw TrainingError.badCheckpoint("\(path) is a safetensors file but not a run checkpoint (no \"format\" in its metadata); load model weights with `load` instead")
        }
        guard format == RunCheckpoint.format else {
            throw TrainingError.badCheckpoint("\(path) has format '\(format)', this version reads '\(RunCheckpoint.format)'")
        }
        guard let text = file.metadata["state"] else {
            throw TrainingError.badCheckpoint("\(path) has no run state in its metadata")
        }
        let state: RunState
        do { state = try decoder().decode(RunState.self, from: Data(text.utf8)) } catch {
            throw TrainingError.badCheckpoint("\(path): the run state is damaged (\(describe(error)))")
        }
        var model: [String: Tensor] = [:], names: [String] = [], optimizer: [String: Tensor] = [:]
        for name in file.names {
            guard case .float(let t)? = file.tensors[name] else {
                throw TrainingError.badCheckpoint("\(path): tensor '\(name)' is not floating point")
            }
            if name.hasPrefix(optimizerPrefix) { optimizer[name] = t } else { model[name] = t; names.append(name) }
        }
        return RunCheckpoint(state: state, modelTensors: model, modelTensorNames: names, optimizerTensors: optimizer)
    }

    /// A short reason for a decoding error (DecodingError's description is long).
    static func describe(_ error: Error) -> String {
        guard let e = error as? DecodingError else { return "\(error)" }
        func path(_ c: DecodingError.Context) -> String { c.codingPath.map(\.stringValue).joined(separator: ".") }
        switch e {
        case .keyNotFound(let k, let c): return "missing '\(k.stringValue)' at '\(path(c))'"
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c):
            return "\(c.debugDescription) at '\(path(c))'"
        @unknown default: return "\(error)"
        }
    }

    /// The stepper checkpoint with its optimizer buffers filled back in from the tensors.
    func stepperCheckpoint() throws -> FQATCheckpoint {
        var s = state.stepper
        for (name, var p) in s.optimizer.states {
            for key in p.buffers.keys {
                let tensorName = "\(RunCheckpoint.optimizerPrefix)\(name)/\(key)"
                guard let t = optimizerTensors[tensorName] else {
                    throw TrainingError.badCheckpoint("the optimizer's '\(key)' of '\(name)' is missing (tensor '\(tensorName)')")
                }
                p.buffers[key] = t.data
            }
            s.optimizer.states[name] = p
        }
        return s
    }
}

extension Run {
    /// The whole run state in memory (see `checkpoint(to:)`).
    public func makeCheckpoint(includingTrace: Bool = true) -> RunCheckpoint {
        var stepperState = stepper.checkpoint(includingTrace: includingTrace)
        var optimizerTensors: [String: Tensor] = [:]
        for (name, var p) in stepperState.optimizer.states {
            for (key, values) in p.buffers {
                optimizerTensors["\(RunCheckpoint.optimizerPrefix)\(name)/\(key)"] = Tensor(shape: [values.count], data: values)
                p.buffers[key] = []
            }
            stepperState.optimizer.states[name] = p
        }
        let state = RunState(method: method, hyperparameters: hyperparameters, seed: seed, trialSeed: trialSeed, step: step,
                             environments: environments, data: dataDescriptor, dataFingerprint: DataFingerprint(dataset),
                             model: modelDescriptor, architecture: network.architecture, inChannels: network.inChannels,
                             classes: network.classes, quantizers: quantizerStates(in: network), stepper: stepperState,
                             sampler: sampler.state, dropoutRNG: dropoutRNG.rng, records: records,
                             recordArgs: recordArgs.mapValues(StoredValue.init), provenance: provenance.mapValues(StoredValue.init),
                             lossSinceEvaluation: lossSinceEvaluation, stepsSinceEvaluation: stepsSinceEvaluation,
                             traceRecentSteps: traceRecentSteps)
        return RunCheckpoint(state: state, modelTensors: network.stateDict(), modelTensorNames: network.stateDictNames,
                             optimizerTensors: optimizerTensors)
    }

    /// Writes everything needed to continue exactly to one safetensors file (atomically).
    /// `includingTrace: false` leaves out the gradient trace (a resumed run starts an empty one).
    public func checkpoint(to path: String, includingTrace: Bool = true) throws {
        try makeCheckpoint(includingTrace: includingTrace).write(to: path)
    }

    /// Continues a run from `checkpoint(to:)`'s file. The model is `network` (a fresh build of the
    /// same architecture, quantized or not) or, when nil, rebuilt from the checkpoint's model
    /// descriptor; the data is `dataset` or rebuilt from the data descriptor, and must match the
    /// checkpoint's fingerprint. Everything that does not fit throws `TrainingError.badCheckpoint`
    /// (a passed-in network may then hold some of the checkpoint's quantizers or weights).
    public static func resume(from path: String, network: Network? = nil, dataset: DomainDataset? = nil) throws -> Run {
        try resume(RunCheckpoint.read(from: path), network: network, dataset: dataset)
    }

    /// Continues a run from a checkpoint in memory (see `resume(from:network:dataset:)`).
    public static func resume(_ checkpoint: RunCheckpoint, network: Network? = nil, dataset: DomainDataset? = nil) throws -> Run {
        let s = checkpoint.state
        func bad(_ reason: String) -> TrainingError { .badCheckpoint(reason) }

        // Data first: nothing is touched until it is known to be the right data.
        let data: DomainDataset
        if let dataset { data = dataset } else {
            guard let descriptor = s.data else {
                throw bad("it does not say how to rebuild its data set '\(s.dataFingerprint.name)'; load the data and pass it")
            }
            do { data = try descriptor.make() } catch { throw bad("cannot rebuild its data set '\(descriptor.name)': \(error)") }
        }
        if let difference = s.dataFingerprint.difference(from: DataFingerprint(data)) {
            throw bad("the data set differs from the one it was trained on: \(difference)")
        }
        let domainCount = data.domains.count
        guard (s.environments.trainingDomains + s.environments.testDomains).allSatisfy({ $0 >= 0 && $0 < domainCount }) else {
            throw bad("its environments \(s.environments) do not fit \(domainCount) domains")
        }

        // The model: architecture, quantizers, then every tensor (strict).
        let net: Network
        if let network { net = network } else {
            guard let descriptor = s.model else {
                throw bad("it does not say how to rebuild its \(s.architecture) model; build the model and pass it")
            }
            do { net = try descriptor.make() } catch { throw bad("cannot rebuild its model: \(error)") }
        }
        guard net.architecture == s.architecture, net.inChannels == s.inChannels, net.classes == s.classes else {
            throw bad("it holds a \(s.architecture) (\(s.inChannels) channels, \(s.classes) classes), the model is a \(net.architecture) (\(net.inChannels) channels, \(net.classes) classes)")
        }
        if s.quantizers.isEmpty {
            guard quantizers(in: net).isEmpty else { throw bad("it holds a full-precision model but the model given is quantized") }
        } else {
            do { try restoreQuantizers(s.quantizers, in: net) } catch { throw bad("\(error)") }
        }
        do { try net.load(stateDict: checkpoint.modelTensors, strict: true) } catch { throw bad("\(error)") }

        let run: Run
        do {
            run = try Run(network: net, dataset: data, environments: s.environments, method: s.method,
                          hyperparameters: s.hyperparameters, seed: s.seed, trialSeed: s.trialSeed,
                          provenance: s.provenance.mapValues(\.recordValue), traceRecentSteps: s.traceRecentSteps,
                          data: s.data, model: s.model)
        } catch let e as TrainingError {
            throw bad("\(e)")
        }
        do { run.sampler = try TrainingSampler(resuming: s.sampler, splits: run.splits) } catch { throw bad("\(error)") }
        do { try run.stepper.restore(try checkpoint.stepperCheckpoint()) } catch let e as TrainingError { throw e } catch {
            throw bad("\(error)")
        }
        guard run.step == s.step else { throw bad("its step count \(s.step) disagrees with its controller's \(run.step)") }
        run.dropoutRNG.rng = s.dropoutRNG
        run.records = s.records
        run.recordArgs = s.recordArgs.mapValues(\.recordValue)
        // As saved: a record written after the next steps states the compute path they ran on.
        run.provenance = s.provenance.mapValues(\.recordValue)
        run.lossSinceEvaluation = s.lossSinceEvaluation
        run.stepsSinceEvaluation = s.stepsSinceEvaluation
        return run
    }
}
