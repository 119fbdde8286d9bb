// `save session` / `load session`: the whole shell state in one safetensors file (the model's tensors,
// with the settings, data choice, hyperparameters and results as JSON metadata) plus, when a run is
// under way, the run's checkpoint beside it (`<path>.run`), so a session continues exactly.
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
    static func save(_ s: Session, to path: String) throws {
        let state = SessionState(settings: s.settings, data: s.dataDescriptor, hyperparameters: s.hyperparameters,
                                 results: s.results,
                                 quantization: s.quantization.map { QuantizationSummary(method: $0.method.rawValue, weightBits: $0.weightBits, activationBits: $0.activationBits) },
                                 modelWidth: s.modelWidth, provenance: s.modelProvenance.mapValues { $0.description },
                                 hasRun: s.run != nil)
        let json = String(decoding: try JSONEncoder().encode(state), as: UTF8.self)
        guard let net = s.network else {
            let dir = (path as NSString).deletingLastPathComponent
            if !dir.isEmpty { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
            try SafeTensors.write([], metadata: ["format": "fqat-shell.session.v1", "fqat.session": json], to: URL(fileURLWithPath: path))
            return
        }
        try ModelFile.save(s, network: net, to: path)
        // Re-write with the session metadata added (ModelFile owns the model metadata).
        var file = try SafeTensors.read(contentsOf: URL(fileURLWithPath: path))
        file.metadata["format"] = "fqat-shell.session.v1"
        file.metadata["fqat.session"] = json
        try SafeTensors.write(file.names.map { ($0, file.tensors[$0]!) }, metadata: file.metadata, to: URL(fileURLWithPath: path))
        let runPath = path + ".run"
        if let run = s.run {
            try run.checkpoint(to: runPath)
        } else if FileManager.default.fileExists(atPath: runPath) {
            try FileManager.default.removeItem(atPath: runPath)
        }
    }

    static func load(_ s: Session, from path: String) throws {
        let file = try SafeTensors.read(contentsOf: URL(fileURLWithPath: path))
        guard file.metadata["format"] == "fqat-shell.session.v1", let json = file.metadata["fqat.session"] else {
            throw CommandError("'\(path)' is not an fqat-shell session (no session metadata); models load with `load model`")
        }
        let state = try JSONDecoder().decode(SessionState.self, from: Data(json.utf8))
        // Build everything first, then swap it in: a failure leaves the current session untouched.
        var dataset: DomainDataset?
        var env: EnvironmentAssignment?
        if let d = state.data {
            let ds = try rebuildData(d)
            dataset = ds
            env = try EnvironmentAssignment(testDomainNames: d.testDomains, in: ds)
        }
        var network: Network?
        if file.metadata["fqat.architecture"] != nil {
            network = try ModelFile.load(path, seed: UInt64(state.settings.seed)).0
        }
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
        if state.hasRun, let net = network, let ds = dataset {
            let run = try Run.resume(from: path + ".run", network: net, dataset: ds)
            s.adoptRun(run)
        }
    }

    static func rebuildData(_ d: ShellDataChoice) throws -> DomainDataset {
        if d.source == "folder" || d.source.hasPrefix("/") || d.source.hasPrefix(".") {
            var options = ImageFolderOptions()
            options.imageSize = d.imageSize
            return try DomainBedFolders.load(folder: d.root ?? d.source, options: options)
        }
        var options = BenchmarkOptions(seed: UInt64(d.dataSeed))
        options.perDomain = d.perDomain
        options.imageSize = d.imageSize
        options.channels = d.channels
        options.sourceDirectory = d.root
        return try Benchmarks.make(d.source, options: options)
    }
}
