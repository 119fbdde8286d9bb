// Running a sweep's tasks: one task in the foreground (`sweep task`, what every launcher runs),
// the local launcher (N worker processes × T threads), and the Slurm launcher (one `sbatch --array`
// per stage, the reuse stage after the prepare stage with --dependency=afterok).
import Datasets
import Foundation
import Synchronization

public enum SweepRunner {
    /// The fqat-shell executable that runs tasks (this process's own binary).
    public static var executable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// The child process of the task running in this process (SIGTERM is passed on to it), 0 when none.
    static let childPID = Atomic<pid_t>(0)
    /// The SIGTERM dispatch source, once installed (kept alive here).
    static let termSource = Mutex<DispatchSourceSignal?>(nil)
    /// Whether SIGTERM arrived.
    static let terminated = Atomic<Bool>(false)

    /// Passes SIGTERM (Slurm preemption, `scancel --signal=TERM`, a local stop) to the running script,
    /// which saves its session and exits 143; this process then marks the task failed and exits 143.
    static func forwardTermination() {
        termSource.withLock { source in
            guard source == nil else { return }
            signal(SIGTERM, SIG_IGN)
            let src = DispatchSource.makeSignalSource(signal: SIGTERM, queue: DispatchQueue(label: "fqat.sweep.sigterm"))
            src.setEventHandler {
                terminated.store(true, ordering: .sequentiallyConsistent)
                let pid = childPID.load(ordering: .sequentiallyConsistent)
                if pid > 0 { kill(pid, SIGTERM) }
            }
            src.resume()
            source = src
        }
    }

    /// The script's command line for a task (after the executable).
    public static func arguments(_ t: SweepTask, sweep: SweepFolder, threads: Int?, resume: Bool = false) -> [String] {
        var args: [String] = []
        if let threads { args += ["--threads", String(threads)] }
        args += ["--records", sweep.file(t, "results.jsonl"), "--autosave", sweep.file(t, "autosave.fqsession")]
        // A stopped attempt left its session: the run it was in continues from there.
        if resume { args += ["--resume-from", sweep.file(t, "autosave.fqsession")] }
        var recordArgs = t.recordArgs
        recordArgs["sweep_task"] = .string(t.id)
        for key in recordArgs.keys.sorted() {
            args += ["--record-arg", "\(key)=\(jsonText(recordArgs[key]!))"]
        }
        args.append(t.scriptPath)
        args += t.commandLineOptions
        args.append("--out=" + (sweep.path as NSString).appendingPathComponent(t.out))
        return args
    }

    static func jsonText(_ v: RecordValue) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(v)).map { String(decoding: $0, as: UTF8.self) } ?? "null"
    }

    /// Runs one task here and now: clears what an earlier attempt left (records, markers), writes a
    /// `running` marker, runs the script with its output in out.txt/err.txt, and writes `done` last
    /// (or `failed` with the exit status and the last error line). Returns the script's exit status.
    public static func runTask(_ t: SweepTask, sweep: SweepFolder, threads: Int?, all: [SweepTask]) throws -> Int32 {
        let fm = FileManager.default
        for dep in t.after {
            guard let d = all.first(where: { $0.id == dep }) else { throw SweepError("task \(t.index) needs task \(dep), which is not in the task list") }
            guard sweep.state(d) == .done else {
                throw SweepError("task \(t.index) needs task \(d.index) (\(String(d.id.prefix(8)))), which is \(sweep.state(d).name); run it first")
            }
        }
        let folder = sweep.taskFolder(t)
        do { try fm.createDirectory(atPath: folder, withIntermediateDirectories: true) } catch {
            throw SweepError("cannot create the task folder '\(folder)': \(error.localizedDescription)")
        }
        for name in ["done", "failed", "results.jsonl", "out.txt", "err.txt"] { try? fm.removeItem(atPath: sweep.file(t, name)) }
        try SweepFolder.line(t).write(toFile: sweep.file(t, "args.json"), atomically: true, encoding: .utf8)
        let running = "\(getpid()) \(SweepFolder.hostName) \(Int(Date().timeIntervalSince1970))\n"
        try running.write(toFile: sweep.file(t, "running"), atomically: true, encoding: .utf8)
        defer { try? fm.removeItem(atPath: sweep.file(t, "running")) }

        forwardTermination()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        let autosave = sweep.file(t, "autosave.fqsession")
        process.arguments = arguments(t, sweep: sweep, threads: threads,
                                      resume: SessionFile.hasRun(at: autosave))
        guard fm.createFile(atPath: sweep.file(t, "out.txt"), contents: nil), fm.createFile(atPath: sweep.file(t, "err.txt"), contents: nil),
              let outFile = FileHandle(forWritingAtPath: sweep.file(t, "out.txt")),
              let errFile = FileHandle(forWritingAtPath: sweep.file(t, "err.txt")) else {
            throw SweepError("cannot write the task's logs in '\(folder)'")
        }
        process.standardOutput = outFile
        process.standardError = errFile
        process.standardInput = FileHandle.nullDevice
        let start = Date()
        do { try process.run() } catch {
            let message = "could not start \(executable): \(error.localizedDescription)"
            try? message.write(toFile: sweep.file(t, "failed"), atomically: true, encoding: .utf8)
            throw SweepError(message)
        }
        childPID.store(process.processIdentifier, ordering: .sequentiallyConsistent)
        if terminated.load(ordering: .sequentiallyConsistent) { kill(process.processIdentifier, SIGTERM) }
        process.waitUntilExit()
        childPID.store(0, ordering: .sequentiallyConsistent)
        let stopped = terminated.load(ordering: .sequentiallyConsistent)
        let status = process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
        if status == 0 && !stopped {
            let seconds = String(format: "%.1f", Date().timeIntervalSince(start))
            // A finished task needs no resume point: a later forced re-run starts from zero.
            for name in ["autosave.fqsession", "autosave.fqsession.run", "autosave.fqsession.runs"] { try? fm.removeItem(atPath: sweep.file(t, name)) }
            try "\(seconds) s on \(SweepFolder.hostName)\n".write(toFile: sweep.file(t, "done"), atomically: true, encoding: .utf8)
        } else {
            let why = status == 143 || stopped ? "terminated (SIGTERM)" : "exit \(status)"
            let last = sweep.lastErrorLine(t).map { ": " + $0 } ?? ""
            try? "\(why)\(last)\n".write(toFile: sweep.file(t, "failed"), atomically: true, encoding: .utf8)
        }
        return status
    }

    // MARK: Local launcher

    /// Runs every task that is not done, `workers` at a time, each a `sweep task` process with
    /// `threads` threads; a task starts once the tasks it needs are done (one whose dependency failed
    /// is left pending). `report` gets one line per start and end, in order, always on the calling
    /// thread: the workers hand their lines to a `ReportRelay` that the caller drains while it waits, so
    /// the caller's print function need not be thread-safe. Returns how many failed.
    public static func runLocal(sweep: SweepFolder, tasks: [SweepTask], workers: Int, threads: Int,
                                only: Set<Int>? = nil, report: (String) -> Void) -> Int {
        let queue = LocalQueue(sweep: sweep, tasks: tasks, pending: tasks.filter { (only?.contains($0.index) ?? true) && sweep.state($0) != .done })
        let workerCount = max(1, workers)
        let relay = ReportRelay(workers: workerCount)
        let post: @Sendable (String) -> Void = { relay.post($0) }
        for _ in 0..<workerCount {
            Thread.detachNewThread {
                while let t = queue.next(report: post) {
                    post("task \(t.index) (\(String(t.id.prefix(8)))) started: \(t.commandLineOptions.joined(separator: " "))")
                    let p = Process()
                    p.executableURL = URL(fileURLWithPath: executable)
                    p.arguments = ["sweep", "task", sweep.path, String(t.index), "--threads", String(threads)]
                    p.standardOutput = FileHandle.nullDevice
                    p.standardError = FileHandle.nullDevice
                    p.standardInput = FileHandle.nullDevice
                    var ok = false
                    do { try p.run(); p.waitUntilExit(); ok = p.terminationStatus == 0 && sweep.state(t) == .done } catch {}
                    queue.finished(t, ok: ok)
                    let state = sweep.state(t)
                    if case .failed(let why) = state { post("task \(t.index) (\(String(t.id.prefix(8)))) failed: \(why)") }
                    else { post("task \(t.index) (\(String(t.id.prefix(8)))) \(state.name)") }
                }
                relay.workerFinished()
            }
        }
        relay.drain(into: report)
        return queue.notDone
    }

    /// Carries the workers' report lines to the thread that runs `runLocal`: workers append under a lock
    /// and signal; the caller wakes, takes every line so far and reports them, until no worker is left.
    final class ReportRelay: Sendable {
        private struct State { var lines: [String] = []; var running: Int }
        private let state: Mutex<State>
        private let wake = DispatchSemaphore(value: 0)

        init(workers: Int) { state = Mutex(State(running: workers)) }

        func post(_ line: String) {
            state.withLock { $0.lines.append(line) }
            wake.signal()
        }

        func workerFinished() {
            state.withLock { $0.running -= 1 }
            wake.signal()
        }

        /// Returns once every worker has finished and every line it posted was reported.
        func drain(into report: (String) -> Void) {
            while true {
                wake.wait()
                let (lines, running) = state.withLock { s in
                    defer { s.lines.removeAll() }
                    return (s.lines, s.running)
                }
                for line in lines { report(line) }
                if running == 0 { return }
            }
        }
    }

    /// The local launcher's shared queue (one lock around everything).
    final class LocalQueue: Sendable {
        let sweep: SweepFolder
        let tasks: [SweepTask]
        private struct State {
            var pending: [SweepTask]
            var failedIDs = Set<String>()
            var runningIDs = Set<String>()
            var failures = 0
        }
        private let state: Mutex<State>

        init(sweep: SweepFolder, tasks: [SweepTask], pending: [SweepTask]) {
            self.sweep = sweep; self.tasks = tasks; self.state = Mutex(State(pending: pending))
        }

        func ready(_ t: SweepTask) -> Bool {
            t.after.allSatisfy { dep in tasks.first { $0.id == dep }.map { sweep.state($0) == .done } ?? false }
        }

        /// The next task whose dependencies are done; waits while a dependency still runs; nil when
        /// nothing more can start (tasks blocked by a failed dependency are dropped and counted).
        func next(report: (String) -> Void) -> SweepTask? {
            enum Step { case run(SweepTask), stop, wait }
            while true {
                var lines: [String] = []
                let step: Step = state.withLock { s in
                    while true {
                        if let i = s.pending.firstIndex(where: ready) {
                            let t = s.pending.remove(at: i)
                            s.runningIDs.insert(t.id)
                            return .run(t)
                        }
                        let blocked = s.pending.filter { t in t.after.contains { s.failedIDs.contains($0) } }
                        if !blocked.isEmpty {
                            for b in blocked {
                                lines.append("task \(b.index) (\(String(b.id.prefix(8)))) not run: a task it needs failed")
                                s.failedIDs.insert(b.id)
                            }
                            s.failures += blocked.count
                            s.pending.removeAll { t in blocked.contains { $0.id == t.id } }
                            continue
                        }
                        return s.pending.isEmpty || s.runningIDs.isEmpty ? .stop : .wait
                    }
                }
                lines.forEach(report)
                switch step {
                case .run(let t): return t
                case .stop: return nil
                case .wait: Thread.sleep(forTimeInterval: 0.2)
                }
            }
        }

        func finished(_ t: SweepTask, ok: Bool) {
            state.withLock { s in
                s.runningIDs.remove(t.id)
                if !ok { s.failures += 1; s.failedIDs.insert(t.id) }
            }
        }

        /// Failed, blocked, and never started (a dependency outside this run that is not done).
        var notDone: Int { state.withLock { $0.failures + $0.pending.count } }
    }

    // MARK: Slurm launcher

    public struct SlurmSettings: Equatable {
        public var cpusPerTask = 1
        public var time: String?
        public var memory: String?
        public var partition: String?
        public var extra: [String] = []
        /// Array tasks running at once (`%N`), nil for no limit.
        public var parallel: Int?
        public var jobName = "fqat-sweep"
        public init() {}
    }

    /// The `--array` value for task indices: runs of consecutive indices as `a-b`.
    public static func arraySpec(_ indices: [Int]) -> String {
        var parts: [String] = []
        var i = 0
        let s = indices.sorted()
        while i < s.count {
            var j = i
            while j + 1 < s.count && s[j + 1] == s[j] + 1 { j += 1 }
            parts.append(i == j ? "\(s[i])" : "\(s[i])-\(s[j])")
            i = j + 1
        }
        return parts.joined(separator: ",")
    }

    /// The sbatch script of one stage: one array index per task, each running `sweep task` on its
    /// line (SLURM_ARRAY_TASK_ID). `--requeue` lets a preempted task run again; it starts over and
    /// re-runs its script (docs/sweeps.md).
    public static func sbatchScript(sweep: SweepFolder, indices: [Int], settings: SlurmSettings, stage: Int) -> String {
        let sweepPath = absolute(sweep.path)
        var lines = ["#!/bin/bash",
                     "#SBATCH --job-name=\(settings.jobName)-s\(stage)",
                     "#SBATCH --array=\(arraySpec(indices))\(settings.parallel.map { "%\($0)" } ?? "")",
                     "#SBATCH --cpus-per-task=\(settings.cpusPerTask)",
                     "#SBATCH --ntasks=1",
                     "#SBATCH --requeue",
                     "#SBATCH --output=\(sweepPath)/slurm/%A_%a.out"]
        if let t = settings.time { lines.append("#SBATCH --time=\(t)") }
        if let m = settings.memory { lines.append("#SBATCH --mem=\(m)") }
        if let p = settings.partition { lines.append("#SBATCH --partition=\(p)") }
        for e in settings.extra { lines.append("#SBATCH \(e)") }
        lines.append("# Each array index runs the task on that line of \(SweepFolder.taskListName); a SIGTERM (preemption)")
        lines.append("# reaches the script, which saves its session and stops; the task is then failed until re-run.")
        lines.append("exec \(shellQuote(executable)) sweep task \(shellQuote(sweepPath)) \"$SLURM_ARRAY_TASK_ID\" --threads \(settings.cpusPerTask)")
        return lines.joined(separator: "\n") + "\n"
    }

    static func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(path)
    }

    static func shellQuote(_ s: String) -> String {
        s.allSatisfy({ $0.isLetter || $0.isNumber || "/._-+=:,".contains($0) }) ? s : "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
