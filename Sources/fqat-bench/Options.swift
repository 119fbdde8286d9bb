// fqat-bench's command line through swift-argument-parser: one declaration is the parser, the checks
// and the --help text. A misspelt flag, a workload that does not exist, a thread count or batch below
// 1, or a value that is not a number is a usage error (exit 64) that says which and what is accepted,
// instead of being dropped or ignored.
import ArgumentParser
import Foundation
import NN
import TensorCore

/// `--backend`: one backend, or both one after the other.
enum BackendChoice: String, ExpressibleByArgument, CaseIterable {
    case openblas, onednn, both

    var backends: [ComputeBackend] {
        switch self {
        case .openblas: return [.openblas]
        case .onednn: return [.onednn]
        case .both: return [.openblas, .onednn]
        }
    }
}

extension Convolution.Strategy: ExpressibleByArgument {}

struct BenchOptions: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fqat-bench",
        abstract: "Kernel checks and throughput of the fqat-shell engine (docs/benchmarks.md).",
        discussion: """
        Workloads: \(Bench.workloads.joined(separator: ", ")); and, only when named in --only: resnet18, \
        resnet50 (3x224x224, batch 32: training step and eval), resnet18-quant, resnet50-quant (the same, \
        4-bit LSQ: lsq and fqat steps).
        """)

    @Flag(help: "One JSON object per measurement (workload, batch, threads, images_per_second, gflops, ...).")
    var json = false

    @Flag(help: "Fewer repeats and smaller batches (for smoke runs).")
    var quick = false

    @Option(help: ArgumentHelp("The workloads to run, comma-separated (default: every workload but the 224-px models).",
                               valueName: "workload[,workload...]"),
            transform: BenchOptions.workloads)
    var only: Set<String>?

    // `.unconditional`: a negative count reaches the check ("positive integers, got -1") instead of
    // being read as an unknown flag.
    @Option(parsing: .unconditional,
            help: ArgumentHelp("Thread counts to measure (default 1,2); each sets OpenBLAS, oneDNN and engine threads.",
                               valueName: "n[,n...]"),
            transform: { try BenchOptions.positiveIntegers($0, flag: "--threads", example: "--threads 1,2", upTo: Parallel.supportedThreads.upperBound) })
    var threads: [Int] = [1, 2]

    @Option(help: ArgumentHelp("Convolution backend of the model workloads, measured one after the other (default: both when oneDNN loads).",
                               valueName: "openblas|onednn|both"))
    var backend: BackendChoice?

    @Option(parsing: .unconditional,
            help: ArgumentHelp("Training and evaluation batches (default 32,64,128 and 64,256).", valueName: "n[,n...]"),
            transform: { try BenchOptions.positiveIntegers($0, flag: "--batch", example: "--batch 32,64") })
    var batch: [Int]?

    @Option(name: .customLong("conv-strategy"),
            help: ArgumentHelp("Experiment: convolution grouping.", valueName: "parallelChunks|batched"))
    var convStrategy: Convolution.Strategy?

    @Option(name: .customLong("conv-budget"), parsing: .unconditional,
            help: ArgumentHelp("Experiment: im2col floats per chunk (parallelChunks) or per call (batched).", valueName: "n"),
            transform: { try BenchOptions.positiveIntegers($0, flag: "--conv-budget", example: "--conv-budget 4194304", single: true)[0] })
    var convBudget: Int?

    @Option(help: ArgumentHelp("JSON lines from scripts/bench_pytorch.py: adds pytorch_images_per_second and ratio_to_pytorch to matching measurements (same workload, batch, threads).",
                               valueName: "file"))
    var compare: String?

    func validate() throws {
        if let largest = batch?.max() { try checkBatchMemory(largest) }
        if let compare, !FileManager.default.isReadableFile(atPath: compare) {
            throw ValidationError("cannot read the --compare file '\(compare)' (JSON lines from scripts/bench_pytorch.py)")
        }
        if backend.map({ $0.backends.contains(.onednn) }) == true && !Backend.oneDNNAvailable {
            throw ValidationError("oneDNN is not available (\(Backend.oneDNNUnavailableReason ?? "libdnnl did not load")); use --backend openblas")
        }
    }

    /// The backends the model workloads run on.
    var backends: [ComputeBackend] {
        backend?.backends ?? (Backend.oneDNNAvailable ? [.openblas, .onednn] : [.openblas])
    }

    /// "a,b,c" as workload names, each one fqat-bench knows.
    static func workloads(_ text: String) throws -> Set<String> {
        let known = Bench.workloads + Bench.largeModels
        let names = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        let unknown = names.filter { !known.contains($0) }
        guard unknown.isEmpty else {
            throw ValidationError("unknown workload \(unknown.map { "'\($0)'" }.joined(separator: ", ")); choose from \(known.joined(separator: ", "))")
        }
        return Set(names)
    }

    /// "1,2" as positive integers (at most `upTo`); anything else says what is wanted.
    static func positiveIntegers(_ text: String, flag: String, example: String, single: Bool = false,
                                 upTo limit: Int = Int.max) throws -> [Int] {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
        let values = parts.compactMap { Int($0) }
        guard values.count == parts.count, values.allSatisfy({ (1...limit).contains($0) }), !single || values.count == 1 else {
            let most = limit == Int.max ? "" : " (at most \(limit))"
            throw ValidationError("\(flag) wants \(single ? "a positive integer" : "positive integers, comma-separated"), e.g. \(example); got '\(text)'\(most)")
        }
        return values
    }

    /// Refuses a batch whose activations would not fit in half the memory this process may use
    /// (the shell's rule), for ResNet-20 and for each 224-px model named, before anything is allocated.
    func checkBatchMemory(_ batch: Int) throws {
        var models: [(name: String, imageShape: [Int])] = [("resnet20", [1, 28, 28])]
        for name in Set((only ?? []).map { $0.replacingOccurrences(of: "-quant", with: "") }).sorted()
        where Bench.largeModels.contains(name) {
            models.append((name, LargeModel.imageShape))
        }
        let budget = Double(TensorMemory.processBudget()) / 2
        for (name, shape) in models {
            guard let network = try? Network.make(architecture: name, inChannels: shape[0], classes: 10, width: 1, seed: 0) else { continue }
            let perImage = network.activationFloatsPerImage(imageShape: shape) * 4
            if perImage * Double(batch) > budget {
                throw ValidationError("--batch \(batch) needs about \(Int(perImage * Double(batch) / 1e9)) GB of activations through \(name) "
                    + "(\(shape.map(String.init).joined(separator: "×"))), more than half of the \(Int(budget * 2 / 1e9)) GB this process may use; "
                    + "use --batch \(max(1, Int(budget / perImage))) or less")
            }
        }
    }
}
