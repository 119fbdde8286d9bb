// Sweeps: a grid over a `.fqs` script's options becomes a task list written before anything runs
// (`<sweep>/sweep.tasks`, one JSON object per line), each task with its full arguments and a stable
// id (the MD5 of its arguments, as DomainBed's sweep.py). A task runs the script once in its own
// process with its records in DomainBed's layout: `<sweep>/<id>/results.jsonl`, `args.json`,
// `out.txt`/`err.txt`, and a `done` marker written last. See docs/sweeps.md.
import Datasets
import Foundation

/// One task of a sweep: one run of the script with these options.
public struct SweepTask: Codable, Equatable, Sendable {
    /// MD5 of the canonical JSON of the script name and options (stable across machines and folders).
    public var id: String
    /// Position in the task list (the Slurm array index).
    public var index: Int
    /// 0: a prepare task (a shared starting checkpoint); 1: a task that reuses one; plain sweeps use 0.
    public var stage: Int
    /// The script as given to `sweep create` (hashed) and its absolute path (run).
    public var script: String
    public var scriptPath: String
    /// Script options in order: `--name=value` text exactly as passed to the script.
    public var options: [SweepOption]
    /// The folder given as the script's `--out` (relative to the sweep folder): the task's own
    /// `<id>/out`, or its prepare task's, so the tasks that reuse a checkpoint find it.
    public var out: String
    /// Ids of the tasks whose results this one needs (its prepare task).
    public var after: [String]
    /// Args added to every record of the task (DomainBed's trial_seed, hparams_seed, dataset name, …).
    public var recordArgs: [String: RecordValue]

    public var commandLineOptions: [String] { options.map { "--\($0.name)=\($0.value)" } }
}

public struct SweepOption: Codable, Equatable, Sendable {
    public var name: String
    public var value: String
    public init(_ name: String, _ value: String) { self.name = name; self.value = value }
}

public struct SweepError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// What `sweep create` is asked for.
public struct SweepSpec: Equatable {
    public var script: String
    /// Script options given as `--name=value`, in order (axes included, with their full lists).
    public var options: [SweepOption] = []
    /// Axes whose value list is split so that each task gets a one-element list (`--seeds=[0]`):
    /// for options the script loops over (`for seed in seeds`).
    public var listAxes: [String] = []
    /// Axes whose value list is split into single values (`--lr=1e-3`): hyperparameter choices.
    /// Each combination of their values is one DomainBed `hparams_seed`.
    public var scalarAxes: [String] = []
    /// Options of the prepare stage (e.g. `bits=[]`, `ewgs=false`): a prepare task per combination
    /// of the axes these options do not replace; the other tasks depend on theirs.
    public var prepare: [SweepOption] = []
    /// Options added to the tasks that reuse a prepare task's output (e.g. `reuse_fp=true`).
    public var reuse: [SweepOption] = []
    /// The axis whose value index becomes DomainBed's `trial_seed` (default: `seeds` or `seed`).
    public var trialAxis: String?
    /// The dataset name written as args.dataset for DomainBed's tools (ours kept as `benchmark`).
    public var domainBedDataset: String?

    public init(script: String) { self.script = script }
}

public enum SweepPlan {
    /// `[0, 23]` → ["0", "23"]; a value without brackets is one element.
    public static func elements(_ text: String) -> [String] {
        let t = text.trimmingCharacters(in: .whitespaces)
        guard t.hasPrefix("["), t.hasSuffix("]") else { return [t] }
        let inner = t.dropFirst().dropLast()
        if inner.trimmingCharacters(in: .whitespaces).isEmpty { return [] }
        return inner.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    }

    /// DomainBed's id: md5 of the JSON of the arguments, keys sorted.
    public static func taskID(script: String, options: [SweepOption]) -> String {
        var object: [String: RecordValue] = ["script": .string(script)]
        var opts: [String: RecordValue] = [:]
        for o in options { opts[o.name] = .string(o.value) }
        object["options"] = .object(opts)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(object)) ?? Data()
        return MD5.hexDigest(String(decoding: data, as: UTF8.self))
    }

    /// The task list of a spec: prepare tasks first (stage 0), then the grid (stage 1 when there is
    /// a prepare stage). Throws on an axis without a value list, an empty one, or an option given twice.
    public static func tasks(_ spec: SweepSpec, scriptPath: String) throws -> [SweepTask] {
        var seen = Set<String>()
        for o in spec.options {
            guard seen.insert(o.name).inserted else { throw SweepError("the option --\(o.name) is given twice; give it once (a list such as [a,b] for an axis)") }
        }
        let axes = spec.listAxes + spec.scalarAxes
        guard Set(axes).count == axes.count else { throw SweepError("an axis is named twice in --grid/--each: \(axes.joined(separator: ", "))") }
        var axisValues: [String: [String]] = [:]
        for a in axes {
            guard let o = spec.options.first(where: { $0.name == a }) else {
                throw SweepError("the axis '\(a)' has no values; give them as --\(a)=[v1,v2,…]")
            }
            let values = elements(o.value)
            guard !values.isEmpty else { throw SweepError("the axis '\(a)' has an empty list (--\(a)=\(o.value)); give at least one value") }
            guard Set(values).count == values.count else { throw SweepError("the axis '\(a)' repeats a value (--\(a)=\(o.value))") }
            axisValues[a] = values
        }
        let trialAxis = spec.trialAxis ?? axes.first { $0 == "seeds" || $0 == "seed" }
        if let t = trialAxis, axisValues[t] == nil { throw SweepError("--trial \(t) is not an axis; name one of --grid/--each (\(axes.joined(separator: ", ")))") }
        for p in spec.prepare + spec.reuse where p.name == "out" {
            throw SweepError("--out is set by the sweep for every task; leave it out of --prepare/--reuse")
        }
        if spec.prepare.isEmpty && !spec.reuse.isEmpty { throw SweepError("--reuse needs a --prepare stage to reuse") }

        // Every combination, the first axis slowest (as nested loops).
        var combos: [[String: Int]] = [[:]]
        for a in axes {
            combos = combos.flatMap { c in axisValues[a]!.indices.map { i in c.merging([a: i]) { $1 } } }
        }
        func optionValue(_ axis: String, _ i: Int) -> String {
            let v = axisValues[axis]![i]
            return spec.listAxes.contains(axis) ? "[\(v)]" : v
        }
        func options(for combo: [String: Int], extra: [SweepOption]) -> [SweepOption] {
            var out: [SweepOption] = []
            for o in spec.options where o.name != "out" {
                if extra.contains(where: { $0.name == o.name }) { continue }
                if let i = combo[o.name] { out.append(SweepOption(o.name, optionValue(o.name, i))) } else { out.append(o) }
            }
            return out + extra
        }
        func recordArgs(_ combo: [String: Int]) -> [String: RecordValue] {
            var r: [String: RecordValue] = [:]
            if let t = trialAxis, let i = combo[t] { r["trial_seed"] = .int(i) }
            // One hparams_seed per combination of the scalar (hyperparameter) axes.
            var h = 0
            for a in spec.scalarAxes { h = h * axisValues[a]!.count + (combo[a] ?? 0) }
            r["hparams_seed"] = .int(h)
            if let d = spec.domainBedDataset { r["dataset"] = .string(d) }
            return r
        }

        var tasks: [SweepTask] = []
        var prepareByKey: [String: SweepTask] = [:]
        let prepared = Set(spec.prepare.map(\.name))
        if !spec.prepare.isEmpty {
            let shared = axes.filter { !prepared.contains($0) }
            var prepCombos: [[String: Int]] = [[:]]
            for a in shared { prepCombos = prepCombos.flatMap { c in axisValues[a]!.indices.map { c.merging([a: $0]) { $1 } } } }
            for c in prepCombos {
                let opts = options(for: c, extra: spec.prepare)
                let id = taskID(script: spec.script, options: opts)
                var args = recordArgs(c)
                args["sweep_stage"] = .string("prepare")
                let t = SweepTask(id: id, index: tasks.count, stage: 0, script: spec.script, scriptPath: scriptPath,
                                  options: opts, out: id + "/out", after: [], recordArgs: args)
                tasks.append(t)
                prepareByKey[shared.map { "\($0)=\(c[$0]!)" }.joined(separator: ";")] = t
            }
            for c in combos {
                let opts = options(for: c, extra: spec.reuse)
                let id = taskID(script: spec.script, options: opts)
                let key = shared.map { "\($0)=\(c[$0]!)" }.joined(separator: ";")
                let prep = prepareByKey[key]!
                tasks.append(SweepTask(id: id, index: tasks.count, stage: 1, script: spec.script, scriptPath: scriptPath,
                                       options: opts, out: prep.out, after: [prep.id], recordArgs: recordArgs(c)))
            }
        } else {
            for c in combos {
                let opts = options(for: c, extra: [])
                let id = taskID(script: spec.script, options: opts)
                tasks.append(SweepTask(id: id, index: tasks.count, stage: 0, script: spec.script, scriptPath: scriptPath,
                                       options: opts, out: id + "/out", after: [], recordArgs: recordArgs(c)))
            }
        }
        guard Set(tasks.map(\.id)).count == tasks.count else {
            throw SweepError("two tasks have the same arguments (an axis that the script options do not change?)")
        }
        return tasks
    }
}

/// The state of a task, read from its folder's markers.
public enum SweepTaskState: Equatable, Sendable {
    case pending
    case running(String)
    case done
    case failed(String)

    public var name: String {
        switch self {
        case .pending: return "pending"
        case .running: return "running"
        case .done: return "done"
        case .failed: return "failed"
        }
    }
}

/// A sweep folder: the task list and the task folders.
public struct SweepFolder: Sendable {
    public static let taskListName = "sweep.tasks"
    public let path: String

    public init(_ path: String) { self.path = path }

    public var taskListPath: String { (path as NSString).appendingPathComponent(Self.taskListName) }
    public func taskFolder(_ t: SweepTask) -> String { (path as NSString).appendingPathComponent(t.id) }
    public func file(_ t: SweepTask, _ name: String) -> String { (taskFolder(t) as NSString).appendingPathComponent(name) }

    public static func isSweep(_ folder: String) -> Bool {
        FileManager.default.fileExists(atPath: (folder as NSString).appendingPathComponent(taskListName))
    }

    /// Writes the task list (and each task's args.json) before anything runs. An existing list must
    /// be the same: a sweep's tasks never change under it.
    public func write(_ tasks: [SweepTask]) throws {
        let fm = FileManager.default
        do { try fm.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw SweepError("cannot create the sweep folder '\(path)': \(error.localizedDescription)")
        }
        let text = try tasks.map(Self.line).joined(separator: "\n") + "\n"
        if fm.fileExists(atPath: taskListPath) {
            let existing = try read()
            guard existing.map(\.id) == tasks.map(\.id) else {
                throw SweepError("'\(taskListPath)' already holds a different task list (\(existing.count) tasks); choose another folder, or delete it to start over")
            }
            return
        }
        do { try text.write(toFile: taskListPath, atomically: true, encoding: .utf8) } catch {
            throw SweepError("cannot write '\(taskListPath)': \(error.localizedDescription)")
        }
        for t in tasks {
            try? fm.createDirectory(atPath: taskFolder(t), withIntermediateDirectories: true)
            try? Self.line(t).write(toFile: file(t, "args.json"), atomically: true, encoding: .utf8)
        }
    }

    static func line(_ t: SweepTask) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(t), as: UTF8.self)
    }

    public func read() throws -> [SweepTask] {
        guard let text = try? String(contentsOfFile: taskListPath, encoding: .utf8) else {
            throw SweepError("'\(path)' is not a sweep (no \(Self.taskListName)); make one with `fqat-shell sweep create \(path) script.fqs …`")
        }
        var tasks: [SweepTask] = []
        for (i, line) in text.split(separator: "\n").enumerated() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            do { tasks.append(try JSONDecoder().decode(SweepTask.self, from: Data(line.utf8))) } catch {
                throw SweepError("\(taskListPath):\(i + 1): not a task line (\(error.localizedDescription)); the file was edited or cut short — re-create the sweep")
            }
        }
        return tasks
    }

    func readText(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }

    /// done (marker), running (a live marker), failed (marker, stale running marker, or records
    /// without a done marker: half-written), else pending.
    public func state(_ t: SweepTask) -> SweepTaskState {
        let fm = FileManager.default
        if fm.fileExists(atPath: file(t, "done")) { return .done }
        if let running = readText(file(t, "running")) {
            let parts = running.split(separator: " ").map(String.init)
            if parts.count >= 2, let pid = Int32(parts[0]), parts[1] == Self.hostName {
                if kill(pid, 0) == 0 { return .running("pid \(pid) on \(parts[1])") }
                return .failed("the process \(pid) stopped without a result (killed?)")
            }
            return .running(parts.count >= 2 ? "pid \(parts[0]) on \(parts[1])" : "")
        }
        if let failed = readText(file(t, "failed")) {
            return .failed(failed.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        if fm.fileExists(atPath: file(t, "results.jsonl")) { return .failed("half-written: records but no done marker") }
        return .pending
    }

    public static var hostName: String { ProcessInfo.processInfo.hostName }

    /// The task's last error message: the last line of err.txt with "error" in it (a script's
    /// `file:line:col: error: …`, not the source line and caret under it), else its last line.
    public func lastErrorLine(_ t: SweepTask) -> String? {
        guard let text = readText(file(t, "err.txt")) else { return nil }
        let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        return lines.last { $0.localizedCaseInsensitiveContains("error") } ?? lines.last
    }
}
