// `fqat-shell sweep create|list|run|task …` (and `collect`, which the executable answers with
// `summary`): the command line of sweeps, in the style of DomainBed's sweep.py. docs/sweeps.md.
import Foundation

public enum SweepCLI {
    public static let usage = """
    usage: fqat-shell sweep create DIR SCRIPT [--grid A,B] [--each C] [--prepare K=V]… [--reuse K=V]…
                                   [--trial AXIS] [--domainbed-dataset NAME] [--name=value …]
           fqat-shell sweep list DIR
           fqat-shell sweep run DIR [--launcher local|slurm] [--workers N] [--threads T] [--dry-run]
                                    [--partition P] [--time T] [--mem M] [--parallel N] [--sbatch-flag F]…
           fqat-shell sweep task DIR [INDEX] [--threads T]   (INDEX defaults to $SLURM_ARRAY_TASK_ID)
           fqat-shell sweep collect DIR [summary keywords, e.g. csv=table.csv versus=lsq-4bit]
    create  writes DIR/sweep.tasks: one task per combination of the axes (--grid: options the script
            loops over, each task gets a one-element list such as --seeds=[0]; --each: single values
            such as --lr=1e-3, one DomainBed hparams_seed per combination). --prepare K=V makes a first
            stage (one task per combination of the axes K=V does not replace) whose output the other
            tasks reuse, with --reuse K=V added to them. Script options are passed as given.
    list    each task's state: pending, running, done, failed (with the last error line).
    run     runs every task that is not done: local (N worker processes × T threads; default
            N = cores / T, T = 1) or slurm (one sbatch --array per stage; --dry-run prints the scripts).
    task    runs one task in the foreground (what both launchers run).
    """

    /// Runs a sweep subcommand; `print` receives standard output, `printError` standard error.
    public static func main(_ argv: [String], print: @escaping (String) -> Void = { Swift.print($0) },
                            printError: @escaping (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }) -> Int32 {
        guard let sub = argv.first else { printError(usage); return 64 }
        let rest = Array(argv.dropFirst())
        do {
            switch sub {
            case "create": return try create(rest, print: print)
            case "list": return try list(rest, print: print)
            case "run": return try run(rest, print: print)
            case "task": return try task(rest)
            case "-h", "--help", "help": print(usage); return 0
            default:
                printError("fqat-shell sweep: unknown subcommand '\(sub)'; use create, list, run, task or collect\n\(usage)")
                return 64
            }
        } catch let e as SweepError {
            printError("fqat-shell sweep \(sub): \(e.description)")
            return 65
        } catch {
            printError("fqat-shell sweep \(sub): \(error)")
            return 70
        }
    }

    /// Splits `--flag value` pairs (for `flags`) from the rest.
    static func takeFlags(_ argv: [String], flags: Set<String>, switches: Set<String> = []) throws -> (values: [(String, String)], switches: Set<String>, rest: [String]) {
        var values: [(String, String)] = [], on = Set<String>(), rest: [String] = []
        var i = 0
        while i < argv.count {
            let a = argv[i]
            if flags.contains(a) {
                guard i + 1 < argv.count else { throw SweepError("\(a) needs a value") }
                values.append((a, argv[i + 1]))
                i += 2
            } else if switches.contains(a) {
                on.insert(a); i += 1
            } else {
                rest.append(a); i += 1
            }
        }
        return (values, on, rest)
    }

    static func keyValue(_ text: String, flag: String) throws -> SweepOption {
        guard let eq = text.firstIndex(of: "="), eq != text.startIndex else { throw SweepError("\(flag) takes NAME=VALUE, not '\(text)'") }
        return SweepOption(String(text[..<eq]), String(text[text.index(after: eq)...]))
    }

    static func int(_ text: String, flag: String, min: Int = 1) throws -> Int {
        guard let n = Int(text), n >= min else { throw SweepError("\(flag) takes a whole number ≥ \(min), not '\(text)'") }
        return n
    }

    static func create(_ argv: [String], print: (String) -> Void) throws -> Int32 {
        let (values, _, rest) = try takeFlags(argv, flags: ["--grid", "--each", "--prepare", "--reuse", "--trial", "--domainbed-dataset"])
        let positional = rest.filter { !$0.hasPrefix("--") }
        guard positional.count == 2 else { throw SweepError("create takes a sweep folder and a script: sweep create DIR SCRIPT [--name=value …]") }
        let dir = positional[0], script = positional[1]
        guard FileManager.default.isReadableFile(atPath: script) else { throw SweepError("cannot read the script '\(script)'") }
        var spec = SweepSpec(script: script)
        for a in rest where a.hasPrefix("--") {
            guard let eq = a.firstIndex(of: "="), a.distance(from: a.startIndex, to: eq) > 2 else {
                throw SweepError("'\(a)' is neither a sweep flag (--grid, --each, --prepare, --reuse, --trial, --domainbed-dataset) nor a script option --name=value")
            }
            spec.options.append(SweepOption(String(a[a.index(a.startIndex, offsetBy: 2)..<eq]), String(a[a.index(after: eq)...])))
        }
        for (flag, v) in values {
            switch flag {
            case "--grid": spec.listAxes += v.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            case "--each": spec.scalarAxes += v.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            case "--prepare": spec.prepare.append(try keyValue(v, flag: flag))
            case "--reuse": spec.reuse.append(try keyValue(v, flag: flag))
            case "--trial": spec.trialAxis = v
            default: spec.domainBedDataset = v
            }
        }
        let scriptPath = SweepRunner.absolute(script)
        let tasks = try SweepPlan.tasks(spec, scriptPath: scriptPath)
        let sweep = SweepFolder(dir)
        try sweep.write(tasks)
        let stages = Set(tasks.map(\.stage)).count
        print("sweep \(dir): \(tasks.count) tasks\(stages > 1 ? " (\(tasks.filter { $0.stage == 0 }.count) prepare tasks first)" : "") in \(sweep.taskListPath)")
        return 0
    }

    static func list(_ argv: [String], print: (String) -> Void) throws -> Int32 {
        guard argv.count == 1 else { throw SweepError("list takes the sweep folder: sweep list DIR") }
        let sweep = SweepFolder(argv[0])
        let tasks = try sweep.read()
        var rows: [[String]] = []
        var counts: [String: Int] = [:]
        for t in tasks {
            let state = sweep.state(t)
            counts[state.name, default: 0] += 1
            var detail = ""
            switch state {
            case .running(let w): detail = w
            case .failed(let why): detail = why
            case .done: detail = (try? String(contentsOfFile: sweep.file(t, "done"), encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            case .pending: detail = t.after.isEmpty ? "" : "after " + t.after.map { String($0.prefix(8)) }.joined(separator: ", ")
            }
            rows.append([String(t.index), String(t.id.prefix(8)), state.name, t.commandLineOptions.joined(separator: " "), detail])
        }
        print(Render.table(["#", "id", "state", "options", "detail"], rows))
        print(["done", "running", "failed", "pending"].map { "\(counts[$0] ?? 0) \($0)" }.joined(separator: ", "))
        return 0
    }

    static func run(_ argv: [String], print: @escaping (String) -> Void) throws -> Int32 {
        let (values, switches, rest) = try takeFlags(argv, flags: ["--launcher", "--workers", "--threads", "--partition", "--time", "--mem",
                                                                     "--parallel", "--sbatch-flag", "--cpus-per-task"],
                                                     switches: ["--dry-run"])
        guard rest.count == 1 else { throw SweepError("run takes the sweep folder: sweep run DIR [--launcher local|slurm] …; unexpected: \(rest.dropFirst().joined(separator: " "))") }
        let sweep = SweepFolder(rest[0])
        let tasks = try sweep.read()
        var launcher = "local"
        var threads = 1
        var workers: Int?
        var slurm = SweepRunner.SlurmSettings()
        for (flag, v) in values {
            switch flag {
            case "--launcher":
                guard ["local", "slurm"].contains(v) else { throw SweepError("--launcher is local or slurm, not '\(v)'") }
                launcher = v
            case "--workers": workers = try int(v, flag: flag)
            case "--threads", "--cpus-per-task": threads = try int(v, flag: flag); slurm.cpusPerTask = threads
            case "--partition": slurm.partition = v
            case "--time": slurm.time = v
            case "--mem": slurm.memory = v
            case "--parallel": slurm.parallel = try int(v, flag: flag)
            default: slurm.extra.append(v)
            }
        }
        let pending = tasks.filter { sweep.state($0) != .done }
        if launcher == "local" {
            let n = workers ?? max(1, ProcessInfo.processInfo.activeProcessorCount / threads)
            if switches.contains("--dry-run") {
                print("local: \(pending.count) of \(tasks.count) tasks to run, \(n) workers × \(threads) threads; each runs:")
                for t in pending { print("  " + ([SweepRunner.executable] + SweepRunner.arguments(t, sweep: sweep, threads: threads)).joined(separator: " ")) }
                return 0
            }
            print("local: \(pending.count) of \(tasks.count) tasks to run, \(n) workers × \(threads) threads")
            let start = Date()
            let failures = SweepRunner.runLocal(sweep: sweep, tasks: tasks, workers: n, threads: threads, report: print)
            print("local: finished in \(String(format: "%.1f", Date().timeIntervalSince(start))) s; \(failures) not done (`fqat-shell sweep list \(sweep.path)`)")
            return failures == 0 ? 0 : 70
        }
        return try submitSlurm(sweep: sweep, pending: pending, settings: slurm, dryRun: switches.contains("--dry-run"), print: print)
    }

    static func submitSlurm(sweep: SweepFolder, pending: [SweepTask], settings: SweepRunner.SlurmSettings, dryRun: Bool,
                            print: (String) -> Void) throws -> Int32 {
        guard !pending.isEmpty else { print("slurm: every task is done"); return 0 }
        let slurmDir = (sweep.path as NSString).appendingPathComponent("slurm")
        try? FileManager.default.createDirectory(atPath: slurmDir, withIntermediateDirectories: true)
        var previousJob: String?
        for stage in Set(pending.map(\.stage)).sorted() {
            let indices = pending.filter { $0.stage == stage }.map(\.index)
            var s = settings
            if let job = previousJob { s.extra.append("--dependency=afterok:\(job)") }
            let script = SweepRunner.sbatchScript(sweep: sweep, indices: indices, settings: s, stage: stage)
            let path = (slurmDir as NSString).appendingPathComponent("stage\(stage).sbatch")
            try script.write(toFile: path, atomically: true, encoding: .utf8)
            if dryRun {
                print("# \(path)\n" + script)
                previousJob = "<job id of stage \(stage)>"
                continue
            }
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["sbatch", "--parsable", path]
            let pipe = Pipe(), errPipe = Pipe()
            p.standardOutput = pipe
            p.standardError = errPipe
            do { try p.run() } catch { throw SweepError("could not run sbatch: \(error.localizedDescription); is Slurm's client installed (sbatch on PATH)?") }
            let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            let err = String(decoding: errPipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            guard p.terminationStatus == 0 else {
                throw SweepError("sbatch \(path) failed (exit \(p.terminationStatus)): \(err.trimmingCharacters(in: .whitespacesAndNewlines))")
            }
            let job = out.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ";").first.map(String.init) ?? ""
            print("slurm: stage \(stage): job \(job), array \(SweepRunner.arraySpec(indices)) (\(indices.count) tasks)")
            previousJob = job
        }
        return 0
    }

    static func task(_ argv: [String]) throws -> Int32 {
        let (values, _, rest) = try takeFlags(argv, flags: ["--threads"])
        guard rest.count == 1 || rest.count == 2 else { throw SweepError("task takes the sweep folder and a task index: sweep task DIR [INDEX]") }
        let sweep = SweepFolder(rest[0])
        let tasks = try sweep.read()
        let indexText = rest.count == 2 ? rest[1] : ProcessInfo.processInfo.environment["SLURM_ARRAY_TASK_ID"]
        guard let text = indexText else { throw SweepError("no task index: give one (sweep task DIR INDEX) or run under a Slurm array (SLURM_ARRAY_TASK_ID)") }
        guard let index = Int(text), index >= 0, index < tasks.count else {
            throw SweepError("task index '\(text)' is not in 0…\(tasks.count - 1) (\(tasks.count) tasks in \(sweep.taskListPath))")
        }
        let threads = try values.last.map { try int($0.1, flag: "--threads") }
        return try SweepRunner.runTask(tasks[index], sweep: sweep, threads: threads, all: tasks)
    }
}
