// `fqat-shell sweep create|list|run|task|collect …`: the command line of sweeps, in the style of
// DomainBed's sweep.py (docs/sweeps.md). One swift-argument-parser command group: each subcommand's
// declarations below are its parsing, its `--help` text and its usage errors (exit 64); a sweep that
// cannot be made or run exits 65 with the reason, anything else 70.
import ArgumentParser
import Foundation
import ShellLanguage
import TensorCore

public enum SweepCLI {
    /// Runs a sweep subcommand; `print` receives standard output, `printError` standard error.
    public static func main(_ argv: [String], print: @escaping (String) -> Void = { Swift.print($0) },
                            printError: @escaping (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }) -> Int32 {
        let names = SweepCommand.configuration.subcommands.compactMap { $0.configuration.commandName }
        if argv.count == 1, ["-h", "--help", "help"].contains(argv[0]) {
            // `sweep --help` prints every subcommand's help too: one screen shows the whole command line.
            print(wholeHelp)
            return 0
        }
        if let first = argv.first, !first.hasPrefix("-"), first != "help", !names.contains(first) {
            printError("fqat-shell sweep: unknown subcommand '\(first)'; use \(names.dropLast().joined(separator: ", ")) or \(names.last ?? "")\n\n"
                       + SweepCommand.helpMessage(columns: 100))
            return usageStatus
        }
        let sub: SweepSubcommand
        do {
            var command = try SweepCommand.parseAsRoot(argv.first == "create" ? SweepCreateCommand.scriptOptionsLast(argv) : argv)
            if command is SweepCommand {
                // `fqat-shell sweep` alone: the group itself has nothing to run.
                printError("fqat-shell sweep: give a subcommand: \(names.joined(separator: ", "))\n\n" + SweepCommand.helpMessage(columns: 100))
                return usageStatus
            }
            guard let chosen = command as? SweepSubcommand else {
                // argument-parser's own `help SUBCOMMAND`: running it throws its help request.
                try command.run()
                return 0
            }
            sub = chosen
        } catch {
            // `SUBCOMMAND --help` and `help SUBCOMMAND` print that subcommand's help; a usage error
            // prints what is wrong, the usage line and where to read more.
            if SweepCommand.exitCode(for: error) == .success {
                print(SweepCommand.fullMessage(for: error, columns: 100))
                return 0
            }
            printError(SweepCommand.fullMessage(for: error, columns: 100))
            return usageStatus
        }
        let name = type(of: sub).configuration.commandName ?? "sweep"
        do {
            return try sub.execute(SweepIO(print: print, printError: printError))
        } catch let e as SweepError {
            printError("fqat-shell sweep \(name): \(e.description)")
            return 65
        } catch {
            printError("fqat-shell sweep \(name): \(error)")
            return 70
        }
    }

    /// EX_USAGE: the command line is wrong (as for fqat-shell's own flags).
    static let usageStatus: Int32 = 64

    /// `fqat-shell sweep --help`: the group's help, then each subcommand's, so that one screen shows
    /// the whole command line (docs/sweeps.md).
    static var wholeHelp: String {
        ([SweepCommand.helpMessage(columns: 100)]
         + SweepCommand.configuration.subcommands.map { SweepCommand.helpMessage(for: $0, columns: 100) })
            .joined(separator: "\n")
    }

    /// A sweep flag's `NAME=VALUE`.
    static func keyValue(_ text: String, flag: String) throws -> SweepOption {
        guard let eq = text.firstIndex(of: "="), eq != text.startIndex else {
            throw ValidationError("\(flag) takes NAME=VALUE, not '\(text)'")
        }
        return SweepOption(String(text[..<eq]), String(text[text.index(after: eq)...]))
    }

    static func atLeastOne(_ value: Int?, flag: String) throws {
        if let value, value < 1 { throw ValidationError("\(flag) takes a whole number ≥ 1, not '\(value)'") }
    }
}

/// Where a subcommand writes (the executable: stdout and stderr; tests: closures).
struct SweepIO {
    var print: (String) -> Void
    var printError: (String) -> Void
}

/// `--threads N`: the threads a script runs with (`set threads=N`). One declaration for fqat-shell's
/// own flag and `sweep task`'s, which passes it on to the task's fqat-shell; `sweep run`'s (also
/// `--cpus-per-task`, default 1, passed on to every task) checks the same range.
public struct ThreadsOption: ParsableArguments {
    public static let range = Parallel.supportedThreads

    // `.unconditional`: a negative count reaches the range check ("needs … 1 to 256, got -3") instead of
    // being read as an unknown flag.
    @ArgumentParser.Option(parsing: .unconditional, help: ArgumentHelp("Start with `set threads=N` (1 to 256).", valueName: "N"))
    public var threads: Int?

    public init() {}

    public func validate() throws { try ThreadsOption.check(threads) }

    /// A thread count outside 1…256 is a usage error.
    static func check(_ threads: Int?) throws {
        if let threads, !range.contains(threads) {
            throw ValidationError("--threads needs a thread count from \(range.lowerBound) to \(range.upperBound), got \(threads)")
        }
    }
}

/// The sweep folder: the first argument of `list`, `run`, `task` and `collect`.
struct SweepFolderArgument: ParsableArguments {
    @ArgumentParser.Argument(help: ArgumentHelp("The sweep folder.", valueName: "DIR"))
    var dir: String

    /// The sweep at `dir` and its task list (an error says why it cannot be read).
    func open() throws -> (sweep: SweepFolder, tasks: [SweepTask]) {
        let sweep = SweepFolder(dir)
        return (sweep, try sweep.read())
    }
}

/// A runnable sweep subcommand: `execute` returns the exit status.
protocol SweepSubcommand: ParsableCommand {
    func execute(_ io: SweepIO) throws -> Int32
}

/// `fqat-shell sweep`: the group.
struct SweepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fqat-shell sweep",
        abstract: "Sweeps: a grid over a script's options as a task list, run locally or as a Slurm job array.",
        discussion: """
        `create` writes the task list before anything runs; `run` runs every task that is not done with a \
        launcher; `list` shows each task's state; `collect` prints the table. Output is in DomainBed's \
        layout (docs/sweeps.md). Exit codes: 0 ok, 64 usage error, 65 the sweep cannot be made or run \
        (with the reason), 70 a task failed or another error.
        """,
        subcommands: [SweepCreateCommand.self, SweepListCommand.self, SweepRunCommand.self, SweepTaskCommand.self, SweepCollectCommand.self],
        helpNames: [.short, .long])
}

struct SweepCreateCommand: SweepSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Write DIR/sweep.tasks: one task per combination of the axes.",
        discussion: """
        Script options (--name=value) are passed to every task as given; an axis' option holds all its \
        values (--seeds=[0,23]). --grid axes are options the script loops over: each task gets a \
        one-element list such as --seeds=[0]. --each axes are single values such as --lr=1e-3, one \
        DomainBed hparams_seed per combination. --prepare K=V makes a first stage (one task per \
        combination of the axes K=V does not replace) whose output the other tasks reuse, with \
        --reuse K=V added to them.
        """)

    @ArgumentParser.Argument(help: ArgumentHelp("The sweep folder (created if needed).", valueName: "DIR"))
    var dir: String
    @ArgumentParser.Argument(help: ArgumentHelp("The script every task runs.", valueName: "SCRIPT"))
    var script: String
    @ArgumentParser.Option(help: ArgumentHelp("Axes the script loops over, comma-separated (repeatable).", valueName: "A,B"))
    var grid: [String] = []
    @ArgumentParser.Option(help: ArgumentHelp("Axes of single values, comma-separated (repeatable).", valueName: "C"))
    var each: [String] = []
    @ArgumentParser.Option(help: ArgumentHelp("An option of the prepare stage (repeatable).", valueName: "K=V"))
    var prepare: [String] = []
    @ArgumentParser.Option(help: ArgumentHelp("An option added to the tasks that reuse a prepare task (repeatable).", valueName: "K=V"))
    var reuse: [String] = []
    @ArgumentParser.Option(help: ArgumentHelp("The axis whose value index becomes DomainBed's trial_seed (default: seeds or seed).", valueName: "AXIS"))
    var trial: String?
    @ArgumentParser.Option(name: .customLong("domainbed-dataset"),
                           help: ArgumentHelp("The name written as args.dataset for DomainBed's tools.", valueName: "NAME"))
    var domainBedDataset: String?
    @ArgumentParser.Argument(parsing: .allUnrecognized,
                             help: ArgumentHelp("The script's options, passed to every task.", valueName: "--name=value"))
    var scriptOptions: [String] = []

    /// The flags of `create` itself (every other `--name=value` is the script's).
    static let flags = ["grid", "each", "prepare", "reuse", "trial", "domainbed-dataset"]

    /// Script options may stand anywhere, before DIR and SCRIPT too; argument-parser's
    /// `.allUnrecognized` takes unknown options only after the positional arguments, so they are
    /// moved behind them (in the order given) before parsing.
    static func scriptOptionsLast(_ argv: [String]) -> [String] {
        func isScriptOption(_ a: String) -> Bool {
            guard a.hasPrefix("--"), let eq = a.firstIndex(of: "=") else { return false }
            return !flags.contains(String(a[a.index(a.startIndex, offsetBy: 2)..<eq]))
        }
        return argv.filter { !isScriptOption($0) } + argv.filter(isScriptOption)
    }

    /// The script options as (name, value); anything else is a usage error.
    func options() throws -> [SweepOption] {
        try scriptOptions.map { a in
            guard a.hasPrefix("--"), let eq = a.firstIndex(of: "="), a.distance(from: a.startIndex, to: eq) > 2 else {
                throw ValidationError("'\(a)' is neither a sweep flag (\(Self.flags.map { "--" + $0 }.joined(separator: ", "))) "
                                      + "nor a script option --name=value")
            }
            return SweepOption(String(a[a.index(a.startIndex, offsetBy: 2)..<eq]), String(a[a.index(after: eq)...]))
        }
    }

    func validate() throws {
        _ = try options()
        for p in prepare { _ = try SweepCLI.keyValue(p, flag: "--prepare") }
        for r in reuse { _ = try SweepCLI.keyValue(r, flag: "--reuse") }
    }

    func execute(_ io: SweepIO) throws -> Int32 {
        guard FileManager.default.isReadableFile(atPath: script) else { throw SweepError("cannot read the script '\(script)'") }
        var spec = SweepSpec(script: script)
        spec.options = try options()
        spec.listAxes = grid.flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        spec.scalarAxes = each.flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        spec.prepare = try prepare.map { try SweepCLI.keyValue($0, flag: "--prepare") }
        spec.reuse = try reuse.map { try SweepCLI.keyValue($0, flag: "--reuse") }
        spec.trialAxis = trial
        spec.domainBedDataset = domainBedDataset
        let tasks = try SweepPlan.tasks(spec, scriptPath: SweepRunner.absolute(script))
        let sweep = SweepFolder(dir)
        try sweep.write(tasks)
        let stages = Set(tasks.map(\.stage)).count
        io.print("sweep \(dir): \(tasks.count) tasks\(stages > 1 ? " (\(tasks.filter { $0.stage == 0 }.count) prepare tasks first)" : "") in \(sweep.taskListPath)")
        return 0
    }
}

struct SweepListCommand: SweepSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "Each task's state: pending, running, done, failed (with the last error line).")

    @OptionGroup var folder: SweepFolderArgument

    func execute(_ io: SweepIO) throws -> Int32 {
        let (sweep, tasks) = try folder.open()
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
        io.print(Render.table(["#", "id", "state", "options", "detail"], rows))
        io.print(["done", "running", "failed", "pending"].map { "\(counts[$0] ?? 0) \($0)" }.joined(separator: ", "))
        return 0
    }
}

struct SweepRunCommand: SweepSubcommand {
    enum Launcher: String, CaseIterable, ExpressibleByArgument { case local, slurm }

    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run every task that is not done.",
        discussion: """
        local: N worker processes × T threads (default N = cores / T, T = 1). slurm: one sbatch --array \
        per stage, later stages with --dependency=afterok on the one before; --dry-run prints the scripts.
        """)

    @OptionGroup var folder: SweepFolderArgument
    @ArgumentParser.Option(help: "Where the tasks run.")
    var launcher = Launcher.local
    @ArgumentParser.Option(parsing: .unconditional, help: ArgumentHelp("Local worker processes (default: cores / threads).", valueName: "N"))
    var workers: Int?
    @ArgumentParser.Option(name: [.customLong("threads"), .customLong("cpus-per-task")], parsing: .unconditional,
                           help: ArgumentHelp("Threads of each task (Slurm: --cpus-per-task).", valueName: "T"))
    var threads = 1
    @Flag(name: .customLong("dry-run"), help: "Print what would run (local: each task's command; slurm: the sbatch scripts).")
    var dryRun = false
    @ArgumentParser.Option(help: ArgumentHelp("Slurm partition.", valueName: "P"))
    var partition: String?
    @ArgumentParser.Option(help: ArgumentHelp("Slurm time limit of a task.", valueName: "T"))
    var time: String?
    @ArgumentParser.Option(help: ArgumentHelp("Slurm memory of a task.", valueName: "M"))
    var mem: String?
    @ArgumentParser.Option(parsing: .unconditional, help: ArgumentHelp("Slurm array tasks running at once.", valueName: "N"))
    var parallel: Int?
    @ArgumentParser.Option(name: .customLong("sbatch-flag"), help: ArgumentHelp("An extra #SBATCH line (repeatable).", valueName: "F"))
    var sbatchFlags: [String] = []

    func validate() throws {
        try SweepCLI.atLeastOne(workers, flag: "--workers")
        try ThreadsOption.check(threads)
        try SweepCLI.atLeastOne(parallel, flag: "--parallel")
    }

    func execute(_ io: SweepIO) throws -> Int32 {
        let (sweep, tasks) = try folder.open()
        let pending = tasks.filter { sweep.state($0) != .done }
        switch launcher {
        case .local:
            let n = workers ?? max(1, ProcessInfo.processInfo.activeProcessorCount / threads)
            if dryRun {
                io.print("local: \(pending.count) of \(tasks.count) tasks to run, \(n) workers × \(threads) threads; each runs:")
                for t in pending { io.print("  " + ([SweepRunner.executable] + SweepRunner.arguments(t, sweep: sweep, threads: threads)).joined(separator: " ")) }
                return 0
            }
            io.print("local: \(pending.count) of \(tasks.count) tasks to run, \(n) workers × \(threads) threads")
            let start = Date()
            let failures = SweepRunner.runLocal(sweep: sweep, tasks: tasks, workers: n, threads: threads, report: io.print)
            io.print("local: finished in \(String(format: "%.1f", Date().timeIntervalSince(start))) s; \(failures) not done (`fqat-shell sweep list \(sweep.path)`)")
            return failures == 0 ? 0 : 70
        case .slurm:
            var slurm = SweepRunner.SlurmSettings()
            slurm.cpusPerTask = threads
            slurm.partition = partition
            slurm.time = time
            slurm.memory = mem
            slurm.parallel = parallel
            slurm.extra = sbatchFlags
            return try submitSlurm(sweep: sweep, pending: pending, settings: slurm, print: io.print)
        }
    }

    func submitSlurm(sweep: SweepFolder, pending: [SweepTask], settings: SweepRunner.SlurmSettings, print: (String) -> Void) throws -> Int32 {
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
}

struct SweepTaskCommand: SweepSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "task",
        abstract: "Run one task in the foreground (what both launchers run).")

    @OptionGroup var folder: SweepFolderArgument
    @ArgumentParser.Argument(help: ArgumentHelp("The task's index (default: $SLURM_ARRAY_TASK_ID).", valueName: "INDEX"))
    var index: Int?
    /// The task's script's threads: passed to its fqat-shell as `--threads`.
    @OptionGroup var threads: ThreadsOption

    func execute(_ io: SweepIO) throws -> Int32 {
        let (sweep, tasks) = try folder.open()
        let indexText = index.map(String.init) ?? ProcessInfo.processInfo.environment["SLURM_ARRAY_TASK_ID"]
        guard let text = indexText else { throw SweepError("no task index: give one (sweep task DIR INDEX) or run under a Slurm array (SLURM_ARRAY_TASK_ID)") }
        guard let i = Int(text), i >= 0, i < tasks.count else {
            throw SweepError("task index '\(text)' is not in 0…\(tasks.count - 1) (\(tasks.count) tasks in \(sweep.taskListPath))")
        }
        return try SweepRunner.runTask(tasks[i], sweep: sweep, threads: threads.threads, all: tasks)
    }
}

struct SweepCollectCommand: SweepSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "collect",
        abstract: "Print the sweep's table: `summary DIR` with summary's keywords (csv=, versus=, oracle=).")

    @OptionGroup var folder: SweepFolderArgument
    @ArgumentParser.Argument(help: ArgumentHelp("summary keywords, e.g. csv=table.csv versus=lsq-4bit oracle=true.", valueName: "NAME=VALUE"))
    var keywords: [String] = []

    func validate() throws {
        guard SweepFolder.isSweep(folder.dir) else {
            throw ValidationError("'\(folder.dir)' is not a sweep (no \(SweepFolder.taskListName)); `summary` reads any folder of records")
        }
        for arg in keywords where !arg.contains("=") {
            throw ValidationError("'\(arg)' is not a summary keyword NAME=VALUE (csv=, versus=, oracle=)")
        }
    }

    func execute(_ io: SweepIO) throws -> Int32 {
        let interpreter = Interpreter(registry: ShellCommands.makeRegistry(session: Session()), output: ForwardingOutput(io))
        interpreter.echoCommandResults = false
        let text = (["summary", Value.quote(folder.dir)] + keywords.map(Self.keyword)).joined(separator: " ")
        return interpreter.runScript(Source(name: "<sweep collect>", text: text), arguments: .parse(scriptName: "sweep", [])).status
    }

    /// `name=value` as a summary keyword: booleans and numbers as they are, anything else quoted.
    static func keyword(_ arg: String) -> String {
        guard let eq = arg.firstIndex(of: "=") else { return arg }
        let value = String(arg[arg.index(after: eq)...])
        let literal = value == "true" || value == "false" || Double(value) != nil
        return String(arg[...eq]) + (literal ? value : Value.quote(value))
    }

}

/// The interpreter's output for `collect`, line by line to the subcommand's print functions.
final class ForwardingOutput: Output {
    let io: SweepIO
    init(_ io: SweepIO) { self.io = io }
    func write(_ text: String, to channel: OutputChannel) {
        let line = text.hasSuffix("\n") ? String(text.dropLast()) : text
        channel == .standard ? io.print(line) : io.printError(line)
    }
}
