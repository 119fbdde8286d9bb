// Runs a sweep task finished in an earlier attempt, kept so that a re-run task does not train them
// again (docs/sweeps.md, "Preemption"). A task's script runs from its start on every attempt; each
// `train` call that completes saves the session as it stands after the call, under a key made of
// everything that decides the call's result: the executable, the label, method, steps, start step,
// seeds, hyperparameters, data, environments, quantization, record args, threads, backend, and a
// hash of every weight and buffer the call starts from. A later attempt whose `train` call has the
// same key loads that session instead of training, writes the call's records again and returns
// what the call returned; same seed and thread count give the same result, so the records equal
// those of an attempt never stopped. Only sessions started with `--autosave PATH` (sweep tasks)
// keep such snapshots, in `PATH.runs/`; the sweep runner deletes the folder when the task is done.
import Foundation
import Datasets
import ShellLanguage
import NN
import TensorCore
import Training

enum FinishedRuns {
    /// What a finished call reported, to be reported again when it is reused.
    struct Outcome: Codable, Equatable {
        var stepsRun: Int
        var lastLoss: Float
        var meanLoss: Double
        var seconds: Double
        var imagesPerSecond: Double
        /// How many of the run's records existed before the call (a continued run keeps earlier ones).
        var recordsBefore: Int
    }

    /// The folder of snapshots, or nil when this session keeps none (no `--autosave`).
    static func folder(_ s: Session) -> String? { s.launch.autosavePath.map { $0 + ".runs" } }

    /// The key of a `train` call about to run `steps` steps of `run` under `label`.
    static func key(_ s: Session, run: Run, label: String, method: TrainingMethod, steps: Int) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        func json<T: Encodable>(_ v: T) -> String { (try? encoder.encode(v)).map { String(decoding: $0, as: UTF8.self) } ?? "?" }
        var parts = [
            "exe=\(executableIdentity())", "label=\(label)", "method=\(method.rawValue)", "steps=\(steps)",
            "start=\(run.step)", "records=\(run.records.count)", "seed=\(run.seed)", "trial=\(run.trialSeed)",
            "hp=\(json(run.hyperparameters))", "env=\(json(run.environments))", "data=\(json(s.dataChoice))",
            "args=\(json(run.recordArgs))", "overrides=\(json(s.launch.recordArgOverrides))",
            "threads=\(Parallel.threads)", "backend=\(Backend.current.rawValue)",
            "quant=\(s.quantization.map { json($0) } ?? "none")",
        ]
        if let net = s.network { parts.append("weights=\(String(weightsHash(net), radix: 16))") }
        return MD5.hexDigest(parts.joined(separator: "\n"))
    }

    static func snapshotPath(_ folder: String, _ key: String) -> String { (folder as NSString).appendingPathComponent(key + ".fqsession") }
    static func outcomePath(_ folder: String, _ key: String) -> String { (folder as NSString).appendingPathComponent(key + ".json") }

    /// The snapshot and outcome of an earlier identical call, if both are there and readable.
    static func lookup(_ s: Session, key: String) -> (path: String, outcome: Outcome)? {
        guard let folder = folder(s) else { return nil }
        let path = snapshotPath(folder, key)
        guard FileManager.default.fileExists(atPath: path), SessionFile.hasRun(at: path),
              let data = FileManager.default.contents(atPath: outcomePath(folder, key)),
              let outcome = try? JSONDecoder().decode(Outcome.self, from: data) else { return nil }
        return (path, outcome)
    }

    /// Keeps the session as it stands after a finished call. The outcome is written last: a
    /// snapshot without one (a kill between the two writes) is never used.
    static func store(_ s: Session, key: String, outcome: Outcome) throws {
        guard let folder = folder(s) else { return }
        do { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) } catch {
            throw CommandError("cannot create '\(folder)' for finished runs: \(error.localizedDescription)")
        }
        try SessionFile.save(s, to: snapshotPath(folder, key))
        let data = try JSONEncoder().encode(outcome)
        do { try data.write(to: URL(fileURLWithPath: outcomePath(folder, key)), options: .atomic) } catch {
            throw CommandError("cannot write '\(outcomePath(folder, key))': \(error.localizedDescription)")
        }
    }

    /// FNV-1a (64 bit) over every weight and buffer, names and shapes included, in state-dict order.
    static func weightsHash(_ network: Network) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ byte: UInt8) { h = (h ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        let state = network.stateDict()
        for name in network.stateDictNames {
            for b in name.utf8 { mix(b) }
            guard let t = state[name] else { continue }
            for d in t.shape { for k in 0..<8 { mix(UInt8(truncatingIfNeeded: d >> (8 * k))) } }
            for x in t.data { let bits = x.bitPattern; for k in 0..<4 { mix(UInt8(truncatingIfNeeded: bits >> (8 * UInt32(k)))) } }
        }
        return h
    }

    /// Size and modification time of this executable: a rebuilt binary (a fixed bug) never reuses
    /// the results of the old one.
    static func executableIdentity() -> String {
        var st = stat()
        guard stat("/proc/self/exe", &st) == 0 else { return CommandLine.arguments.first ?? "?" }
        return "\(st.st_size)-\(st.st_mtim.tv_sec)-\(st.st_mtim.tv_nsec)"
    }
}
