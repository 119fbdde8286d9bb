// Sweeps (docs/sweeps.md): the task list of a grid, task states from markers, the Slurm script,
// and a smoke sweep of examples/paper/table1.fqs run by the local launcher, its DomainBed layout
// and its collected table.
import Datasets
import Foundation
import Plot
@testable import ShellCommands
import XCTest

final class SweepTests: XCTestCase {
    func spec(_ options: [(String, String)], grid: [String] = [], each: [String] = []) -> SweepSpec {
        var s = SweepSpec(script: "examples/paper/table1.fqs")
        s.options = options.map { SweepOption($0.0, $0.1) }
        s.listAxes = grid
        s.scalarAxes = each
        return s
    }

    func testAGridBecomesOneTaskPerCombinationWithStableIDs() throws {
        let s = spec([("seeds", "[0,23]"), ("domains", "[fog, clean]"), ("lr", "[1e-3,1e-4]"), ("per_domain", "60")],
                     grid: ["seeds", "domains"], each: ["lr"])
        let tasks = try SweepPlan.tasks(s, scriptPath: "/x/table1.fqs")
        XCTAssertEqual(tasks.count, 8)
        XCTAssertEqual(tasks.map(\.index), Array(0..<8))
        XCTAssertEqual(tasks[0].commandLineOptions, ["--seeds=[0]", "--domains=[fog]", "--lr=1e-3", "--per_domain=60"])
        XCTAssertEqual(tasks[7].commandLineOptions, ["--seeds=[23]", "--domains=[clean]", "--lr=1e-4", "--per_domain=60"])
        XCTAssertEqual(Set(tasks.map(\.id)).count, 8)
        XCTAssertTrue(tasks.allSatisfy { $0.id.count == 32 && $0.out == $0.id + "/out" && $0.after.isEmpty })
        // DomainBed: repetitions are trials, hyperparameter choices are hparams_seeds.
        XCTAssertEqual(tasks.map { $0.recordArgs["trial_seed"] }, [0, 0, 0, 0, 1, 1, 1, 1].map { .int($0) })
        XCTAssertEqual(tasks.map { $0.recordArgs["hparams_seed"] }, [0, 1, 0, 1, 0, 1, 0, 1].map { .int($0) })
        // The id depends on the script as given and the options only: the same grid elsewhere gives the same ids.
        XCTAssertEqual(try SweepPlan.tasks(s, scriptPath: "/elsewhere/table1.fqs").map(\.id), tasks.map(\.id))
        XCTAssertEqual(tasks[0].id, SweepPlan.taskID(script: s.script, options: tasks[0].options))
        XCTAssertNotEqual(SweepPlan.taskID(script: s.script, options: [SweepOption("seeds", "[0]")]),
                          SweepPlan.taskID(script: s.script, options: [SweepOption("seeds", "[1]")]))
    }

    func testAPrepareStageIsComputedOnceAndReusedWithExplicitDependencies() throws {
        var s = spec([("seeds", "[0,23]"), ("bits", "[3,4,5]"), ("ewgs", "false")], grid: ["seeds", "bits"])
        s.prepare = [SweepOption("bits", "[]")]
        s.reuse = [SweepOption("reuse_fp", "true")]
        let tasks = try SweepPlan.tasks(s, scriptPath: "/x/table1.fqs")
        XCTAssertEqual(tasks.count, 2 + 6)
        let prepare = tasks.filter { $0.stage == 0 }, reuse = tasks.filter { $0.stage == 1 }
        XCTAssertEqual(prepare.map(\.commandLineOptions), [["--seeds=[0]", "--ewgs=false", "--bits=[]"], ["--seeds=[23]", "--ewgs=false", "--bits=[]"]])
        for t in reuse {
            XCTAssertTrue(t.commandLineOptions.contains("--reuse_fp=true"))
            let seed = t.commandLineOptions[0]
            let p = try XCTUnwrap(prepare.first { $0.commandLineOptions[0] == seed })
            XCTAssertEqual(t.after, [p.id], "a task depends on the prepare task of its seed")
            XCTAssertEqual(t.out, p.out, "and reads the checkpoint from its folder")
        }
        XCTAssertEqual(prepare.map { $0.recordArgs["sweep_stage"] }, [.string("prepare"), .string("prepare")])
    }

    func testBadGridsAreExplained() {
        func message(_ s: SweepSpec) -> String {
            do { _ = try SweepPlan.tasks(s, scriptPath: "/x"); return "" } catch { return "\(error)" }
        }
        XCTAssertTrue(message(spec([("seeds", "[0]")], grid: ["domains"])).contains("the axis 'domains' has no values; give them as --domains=[v1,v2,…]"))
        XCTAssertTrue(message(spec([("seeds", "[]")], grid: ["seeds"])).contains("empty list"))
        XCTAssertTrue(message(spec([("seeds", "[0,0]")], grid: ["seeds"])).contains("repeats a value"))
        XCTAssertTrue(message(spec([("seeds", "[0]"), ("seeds", "[1]")])).contains("given twice"))
        var r = spec([("seeds", "[0]")], grid: ["seeds"])
        r.reuse = [SweepOption("reuse_fp", "true")]
        XCTAssertTrue(message(r).contains("--reuse needs a --prepare stage"))
        var t = spec([("seeds", "[0]")], grid: ["seeds"])
        t.trialAxis = "domains"
        XCTAssertTrue(message(t).contains("--trial domains is not an axis"))
    }

    func testTaskStatesComeFromTheMarkers() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fqat-sweep-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let tasks = try SweepPlan.tasks(spec([("seeds", "[0,1,2,3,4]")], grid: ["seeds"]), scriptPath: "/x/t.fqs")
        let sweep = SweepFolder(dir)
        try sweep.write(tasks)
        XCTAssertTrue(SweepFolder.isSweep(dir))
        XCTAssertEqual(try sweep.read(), tasks)
        XCTAssertTrue(FileManager.default.fileExists(atPath: sweep.file(tasks[0], "args.json")), "args.json written with the list")
        try "1.0 s\n".write(toFile: sweep.file(tasks[1], "done"), atomically: true, encoding: .utf8)
        try "exit 70: t.fqs:3:1: error: no data\n".write(toFile: sweep.file(tasks[2], "failed"), atomically: true, encoding: .utf8)
        try "{}\n".write(toFile: sweep.file(tasks[3], "results.jsonl"), atomically: true, encoding: .utf8)
        try "\(getpid()) \(SweepFolder.hostName) 0\n".write(toFile: sweep.file(tasks[4], "running"), atomically: true, encoding: .utf8)
        XCTAssertEqual(tasks.map { sweep.state($0) }, [.pending, .done, .failed("exit 70: t.fqs:3:1: error: no data"),
                                                      .failed("half-written: records but no done marker"),
                                                      .running("pid \(getpid()) on \(SweepFolder.hostName)")])
        // A running marker of a process that is gone is a failure, not a task running forever.
        try "999999999 \(SweepFolder.hostName) 0\n".write(toFile: sweep.file(tasks[4], "running"), atomically: true, encoding: .utf8)
        guard case .failed = sweep.state(tasks[4]) else { return XCTFail("stale running marker: \(sweep.state(tasks[4]))") }
        // The list never changes under a sweep.
        let other = try SweepPlan.tasks(spec([("seeds", "[7]")], grid: ["seeds"]), scriptPath: "/x/t.fqs")
        XCTAssertThrowsError(try sweep.write(other)) { XCTAssertTrue("\($0)".contains("already holds a different task list"), "\($0)") }
        XCTAssertNoThrow(try sweep.write(tasks))
    }

    func testTheSbatchScriptIsOneArrayWithTheSettings() {
        XCTAssertEqual(SweepRunner.arraySpec([0, 1, 2, 5, 7, 8]), "0-2,5,7-8")
        var settings = SweepRunner.SlurmSettings()
        settings.cpusPerTask = 2
        settings.time = "02:00:00"
        settings.memory = "4G"
        settings.partition = "cpu"
        settings.parallel = 10
        settings.extra = ["--account=proj", "--dependency=afterok:123"]
        let script = SweepRunner.sbatchScript(sweep: SweepFolder("/s/w"), indices: [2, 3, 4], settings: settings, stage: 1)
        for line in ["#!/bin/bash", "#SBATCH --array=2-4%10", "#SBATCH --cpus-per-task=2", "#SBATCH --time=02:00:00",
                     "#SBATCH --mem=4G", "#SBATCH --partition=cpu", "#SBATCH --account=proj", "#SBATCH --dependency=afterok:123",
                     "#SBATCH --requeue", "#SBATCH --output=/s/w/slurm/%A_%a.out"] {
            XCTAssertTrue(script.contains(line + "\n"), "\(line) in\n\(script)")
        }
        XCTAssertTrue(script.contains("sweep task /s/w \"$SLURM_ARRAY_TASK_ID\" --threads 2\n"), script)
    }

    func testTheCommandLineRejectsBadInputWithAReason() {
        var errors: [String] = []
        func run(_ argv: [String]) -> Int32 { SweepCLI.main(argv, print: { _ in }, printError: { errors.append($0) }) }
        XCTAssertEqual(run(["launch"]), 64)
        XCTAssertTrue(errors.last?.contains("unknown subcommand 'launch'") == true)
        XCTAssertEqual(run(["list", "/nonexistent/sweep"]), 65)
        XCTAssertTrue(errors.last?.contains("is not a sweep (no sweep.tasks)") == true, errors.last ?? "")
        XCTAssertEqual(run(["create", "/tmp/x", "/nonexistent.fqs"]), 65)
        XCTAssertTrue(errors.last?.contains("cannot read the script") == true)
        // Usage errors come from the argument-parser declarations: exit 64, what is wrong and the usage.
        XCTAssertEqual(run(["run", "/tmp/x", "--workers", "zero"]), 64)
        XCTAssertTrue(errors.last?.contains("The value 'zero' is invalid for '--workers <N>'") == true, errors.last ?? "")
        XCTAssertTrue(errors.last?.contains("Usage: fqat-shell sweep run <DIR>") == true, errors.last ?? "")
        XCTAssertEqual(run(["run", "/tmp/x", "--workers", "0"]), 64)
        XCTAssertTrue(errors.last?.contains("--workers takes a whole number ≥ 1, not '0'") == true, errors.last ?? "")
        // A negative count reaches the range check, not "missing value" or "unknown option".
        XCTAssertEqual(run(["run", "/tmp/x", "--workers", "-3"]), 64)
        XCTAssertTrue(errors.last?.contains("--workers takes a whole number ≥ 1, not '-3'") == true, errors.last ?? "")
        XCTAssertEqual(run(["run", "/tmp/x", "--threads", "-1"]), 64)
        XCTAssertTrue(errors.last?.contains("--threads needs a thread count from 1 to 256, got -1") == true, errors.last ?? "")
        XCTAssertEqual(run(["run", "/tmp/x", "--wrokers", "2"]), 64)
        XCTAssertTrue(errors.last?.contains("Unknown option '--wrokers'. Did you mean '--workers'?") == true, errors.last ?? "")
        XCTAssertEqual(run(["run", "/tmp/x", "--threads"]), 64)
        XCTAssertTrue(errors.last?.contains("Missing value for '--threads <T>'") == true, errors.last ?? "")
        XCTAssertEqual(run(["run", "/tmp/x", "--launcher", "pbs"]), 64)
        XCTAssertTrue(errors.last?.contains("'pbs' is invalid for '--launcher <launcher>'") == true, errors.last ?? "")
        // --threads: the range of fqat-shell's own --threads (one declaration), checked before a task starts.
        XCTAssertEqual(run(["task", "/tmp/x", "0", "--threads", "300"]), 64)
        XCTAssertTrue(errors.last?.contains("--threads needs a thread count from 1 to 256, got 300") == true, errors.last ?? "")
        XCTAssertEqual(run(["run", "/tmp/x", "--threads", "0"]), 64)
        XCTAssertTrue(errors.last?.contains("--threads needs a thread count from 1 to 256, got 0") == true, errors.last ?? "")
        XCTAssertEqual(run(["task", "/tmp/x", "first"]), 64)
        XCTAssertTrue(errors.last?.contains("The value 'first' is invalid for '<INDEX>'") == true, errors.last ?? "")
        XCTAssertEqual(run(["create", "/tmp/x", "examples/paper/table1.fqs", "--seeds"]), 64)
        XCTAssertTrue(errors.last?.contains("'--seeds' is neither a sweep flag (--grid, --each, --prepare, --reuse, --trial, --domainbed-dataset) nor a script option --name=value") == true, errors.last ?? "")
        XCTAssertEqual(run(["create", "/tmp/x", "examples/paper/table1.fqs", "--prepare", "bits"]), 64)
        XCTAssertTrue(errors.last?.contains("--prepare takes NAME=VALUE, not 'bits'") == true, errors.last ?? "")
        XCTAssertEqual(run(["create", "/tmp/x"]), 64)
        XCTAssertTrue(errors.last?.contains("Missing expected argument '<SCRIPT>'") == true, errors.last ?? "")
        XCTAssertEqual(run(["collect", "/nonexistent/sweep"]), 64)
        XCTAssertTrue(errors.last?.contains("'/nonexistent/sweep' is not a sweep (no sweep.tasks)") == true, errors.last ?? "")
        XCTAssertEqual(run([]), 64)
        XCTAssertTrue(errors.last?.contains("give a subcommand: create, list, run, task, collect") == true, errors.last ?? "")
    }

    /// `sweep --help` prints the whole command line, generated from the declarations: every
    /// subcommand with its arguments and flags. `SUBCOMMAND --help` prints that one.
    func testHelpShowsTheWholeCommandLine() {
        var out: [String] = [], errors: [String] = []
        XCTAssertEqual(SweepCLI.main(["--help"], print: { out.append($0) }, printError: { errors.append($0) }), 0)
        let help = out.joined(separator: "\n")
        for text in ["USAGE: fqat-shell sweep create <DIR> <SCRIPT> [--grid <A,B> ...] [--each <C> ...] [--prepare <K=V> ...]",
                     "USAGE: fqat-shell sweep list <DIR>",
                     "USAGE: fqat-shell sweep run <DIR> [--launcher <launcher>] [--workers <N>] [--threads <T>] [--dry-run]",
                     "--sbatch-flag <F>", "--threads, --cpus-per-task <T>", "(values: local, slurm; default: local)",
                     "USAGE: fqat-shell sweep task <DIR> [<INDEX>] [--threads <N>]", "$SLURM_ARRAY_TASK_ID",
                     "USAGE: fqat-shell sweep collect <DIR> [<NAME=VALUE> ...]"] {
            XCTAssertTrue(help.contains(text), "\(text) in\n\(help)")
        }
        XCTAssertEqual(errors, [])
        out = []
        XCTAssertEqual(SweepCLI.main(["run", "--help"], print: { out.append($0) }, printError: { errors.append($0) }), 0)
        XCTAssertTrue(out.joined().contains("USAGE: fqat-shell sweep run <DIR>"), out.joined())
        XCTAssertFalse(out.joined().contains("sweep create"), out.joined())
    }

    /// Script options (`--name=value`) may stand anywhere among the sweep flags and reach the tasks in
    /// the order given; repeated `--grid` adds axes.
    func testScriptOptionsPassThroughInOrder() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fqat-sweep-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var out: [String] = [], errors: [String] = []
        let status = SweepCLI.main(["create", "--seeds=[0,1]", dir, "--grid", "seeds", "examples/paper/table1.fqs", "--lr=-1e-3",
                                    "--grid", "domains", "--domains=[fog]", "--trial", "seeds"],
                                   print: { out.append($0) }, printError: { errors.append($0) })
        XCTAssertEqual(status, 0, "\(errors)")
        let tasks = try SweepFolder(dir).read()
        XCTAssertEqual(tasks.map(\.commandLineOptions), [["--seeds=[0]", "--lr=-1e-3", "--domains=[fog]"],
                                                         ["--seeds=[1]", "--lr=-1e-3", "--domains=[fog]"]])
        XCTAssertEqual(out, ["sweep \(dir): 2 tasks in \(SweepFolder(dir).taskListPath)"])
    }

    /// The smoke sweep: table1.fqs at smoke size over 2 held-out domains, with the FP checkpoint as a
    /// prepare stage, run by the local launcher with 2 workers; then a re-run, a failed task and collect.
    func testASmokeSweepRunsLocallyInDomainBedLayout() throws {
        let binary = repositoryRoot.appendingPathComponent(".build/debug/fqat-shell").path
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: binary), "fqat-shell is not built")
        try XCTSkipUnless(fashionMNISTPresent, "Fashion-MNIST is not installed")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fqat-sweep-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func shell(_ args: [String]) throws -> (Int32, String) { try runShell(binary, args) }
        let (created, createText) = try shell(["sweep", "create", dir, "examples/paper/table1.fqs", "--grid", "domains",
                                               "--domains=[fog,clean]", "--seeds=[0]", "--per_domain=60", "--erm_steps=3",
                                               "--qat_steps=2", "--eval_every=2", "--bits=[4]", "--ewgs=false",
                                               "--prepare", "bits=[]", "--reuse", "reuse_fp=true", "--domainbed-dataset", "PACS"])
        XCTAssertEqual(created, 0, createText)
        XCTAssertTrue(createText.contains("4 tasks (2 prepare tasks first)"), createText)
        let sweep = SweepFolder(dir)
        let tasks = try sweep.read()
        XCTAssertEqual(tasks.map { sweep.state($0) }, Array(repeating: .pending, count: 4))

        let (ran, runText) = try shell(["sweep", "run", dir, "--workers", "2", "--threads", "1"])
        XCTAssertEqual(ran, 0, runText)
        XCTAssertEqual(tasks.map { sweep.state($0) }, Array(repeating: .done, count: 4), runText)
        // DomainBed's layout and keys.
        var labels: [String] = []
        for t in tasks {
            let text = try String(contentsOfFile: sweep.file(t, "results.jsonl"), encoding: .utf8)
            let lines = text.split(separator: "\n")
            XCTAssertFalse(lines.isEmpty)
            for line in lines {
                let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                let args = try XCTUnwrap(object["args"] as? [String: Any])
                for key in ["dataset", "algorithm", "test_envs", "hparams_seed", "trial_seed", "seed", "holdout_fraction", "steps"] {
                    XCTAssertNotNil(args[key], "args.\(key) in \(line)")
                }
                XCTAssertEqual(args["dataset"] as? String, "PACS")
                XCTAssertEqual(args["benchmark"] as? String, "style-fmnist")
                XCTAssertEqual(args["sweep_task"] as? String, t.id)
                XCTAssertEqual(args["algorithm"] as? String, args["label"] as? String)
                let step = try XCTUnwrap(object["step"] as? Int), done = try XCTUnwrap(object["steps_done"] as? Int)
                XCTAssertEqual(step, done - 1, "DomainBed's step is the index of the step just taken")
                labels.append(args["label"] as! String)
            }
            XCTAssertTrue(FileManager.default.fileExists(atPath: sweep.file(t, "done")))
            XCTAssertTrue(FileManager.default.fileExists(atPath: sweep.file(t, "args.json")))
        }
        XCTAssertEqual(Set(labels), ["fp-erm", "fp-control", "lsq-4bit", "lsq+sagm-4bit", "fqat-lsq-4bit"])

        // The table: our summary of the sweep folder reads each task's results.jsonl once.
        let (collected, table) = try shell(["sweep", "collect", dir])
        XCTAssertEqual(collected, 0, table)
        for label in ["fp-erm", "fp-control", "lsq-4bit", "lsq+sagm-4bit", "fqat-lsq-4bit"] {
            XCTAssertEqual(table.components(separatedBy: "\n").filter { $0.contains("│ \(label) ") || $0.hasPrefix(label + " ") || $0.contains(" \(label) ") }.count, 1, "\(label) once in\n\(table)")
        }

        // Re-running skips done tasks; a task whose markers say failed runs again.
        let (again, againText) = try shell(["sweep", "run", dir])
        XCTAssertEqual(again, 0, againText)
        XCTAssertTrue(againText.contains("0 of 4 tasks to run"), againText)
        try FileManager.default.removeItem(atPath: sweep.file(tasks[3], "done"))
        XCTAssertEqual(sweep.state(tasks[3]), .failed("half-written: records but no done marker"))
        let (rerun, rerunText) = try shell(["sweep", "run", dir, "--workers", "1"])
        XCTAssertEqual(rerun, 0, rerunText)
        XCTAssertTrue(rerunText.contains("1 of 4 tasks to run"), rerunText)
        XCTAssertEqual(sweep.state(tasks[3]), .done)
        let (_, table2) = try shell(["sweep", "collect", dir])
        XCTAssertEqual(table2, table, "same seed, same table")

        // `list` shows the states.
        let (_, listed) = try shell(["sweep", "list", dir])
        XCTAssertTrue(listed.contains("4 done, 0 running, 0 failed, 0 pending"), listed)
    }

    /// A task stopped with SIGTERM mid-run (as Slurm preempts) and run again continues the run it was
    /// in from its saved session, and its records equal those of a task that was never stopped.
    func testAStoppedTaskResumesItsRunExactly() throws {
        let binary = repositoryRoot.appendingPathComponent(".build/debug/fqat-shell").path
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: binary), "fqat-shell is not built")
        try XCTSkipUnless(fashionMNISTPresent, "Fashion-MNIST is not installed")
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("fqat-sweep-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        func shell(_ args: [String]) throws -> (Int32, String) { try runShell(binary, args) }
        let grid = ["examples/paper/table1.fqs", "--grid", "domains", "--domains=[fog]", "--seeds=[0]", "--per_domain=60",
                    "--arch=resnet8", "--erm_steps=40", "--qat_steps=2", "--eval_every=5", "--bits=[4]", "--ewgs=false"]
        let stopped = (root as NSString).appendingPathComponent("stopped"), straight = (root as NSString).appendingPathComponent("straight")
        XCTAssertEqual(try shell(["sweep", "create", stopped] + grid).0, 0)
        XCTAssertEqual(try shell(["sweep", "create", straight] + grid).0, 0)
        let sweep = SweepFolder(stopped)
        let task = try XCTUnwrap(try sweep.read().first)

        let job = try Subprocess(executable: binary, arguments: ["sweep", "task", stopped, "0", "--threads", "1"],
                                 workingDirectory: repositoryRoot.path, stdin: .null, stdout: .null, stderr: .null)
        let start = Date()
        // Stop it once fp-erm has evaluated at least once (records exist) and is still training.
        while !(((try? String(contentsOfFile: sweep.file(task, "results.jsonl"), encoding: .utf8)) ?? "").contains("\"steps_done\":5")) {
            guard Date().timeIntervalSince(start) < 120, job.wait(timeout: 0) == nil else { job.send(signal: SIGKILL); return XCTFail("the task did not start training") }
            Thread.sleep(forTimeInterval: 0.05)
        }
        job.send(signal: SIGTERM)
        XCTAssertEqual(job.wait(timeout: 60), .exited(143))
        guard case .failed(let why) = sweep.state(task) else { return XCTFail("\(sweep.state(task))") }
        XCTAssertTrue(why.hasPrefix("terminated (SIGTERM)"), why)
        XCTAssertTrue(SessionFile.hasRun(at: sweep.file(task, "autosave.fqsession")), "the run's exact-resume state is in the autosave (one file)")

        let (again, againText) = try shell(["sweep", "run", stopped, "--workers", "1", "--threads", "1"])
        XCTAssertEqual(again, 0, againText)
        XCTAssertEqual(sweep.state(task), .done)
        let log = try String(contentsOfFile: sweep.file(task, "out.txt"), encoding: .utf8)
        XCTAssertTrue(log.contains("fp-erm: resumed at step "), log)
        XCTAssertFalse(FileManager.default.fileExists(atPath: sweep.file(task, "autosave.fqsession")), "a done task keeps no resume point")

        XCTAssertEqual(try shell(["sweep", "run", straight, "--workers", "1", "--threads", "1"]).0, 0)
        func records(_ dir: String) throws -> [EvalRecord] {
            let r = try EvalRecord.parse(jsonLines: String(contentsOfFile: SweepFolder(dir).file(task, "results.jsonl"), encoding: .utf8))
            // Everything but provenance, which names the (different) folders of the checkpoints.
            return r.map { var x = $0; x.provenance = [:]; return x }
        }
        let a = try records(stopped), b = try records(straight)
        XCTAssertEqual(a.count, b.count)
        XCTAssertEqual(a, b, "a resumed task writes the records of one never stopped")
        XCTAssertEqual(try shell(["sweep", "collect", stopped]).1, try shell(["sweep", "collect", straight]).1)
    }

    /// A re-run task does not train again the `train` calls an earlier attempt finished: it loads the
    /// session each one left (`<autosave>.runs/`) and writes the same records; a call whose inputs
    /// changed (here: more QAT steps) trains, and everything before it is still reused.
    func testARerunTaskReusesTheRunsItFinished() throws {
        let binary = repositoryRoot.appendingPathComponent(".build/debug/fqat-shell").path
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: binary), "fqat-shell is not built")
        try XCTSkipUnless(fashionMNISTPresent, "Fashion-MNIST is not installed")
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("fqat-finished-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        func path(_ name: String) -> String { (root as NSString).appendingPathComponent(name) }
        let options = ["--domains=[fog]", "--seeds=[0]", "--per_domain=60", "--arch=resnet8", "--erm_steps=10",
                       "--eval_every=5", "--bits=[4]", "--ewgs=false", "--out=" + path("out")]
        func attempt(_ records: String, qatSteps: Int) throws -> (String, [EvalRecord]) {
            let (status, text) = try runShell(binary, ["--threads", "1", "--records", path(records), "--autosave", path("autosave.fqsession"),
                                                       "examples/paper/table1.fqs"] + options + ["--qat_steps=\(qatSteps)"])
            XCTAssertEqual(status, 0, text)
            return (text, try EvalRecord.parse(jsonLines: String(contentsOfFile: path(records), encoding: .utf8)))
        }
        let (first, straight) = try attempt("first.jsonl", qatSteps: 2)
        XCTAssertFalse(first.contains("finished in an earlier attempt"), first)
        let (second, reused) = try attempt("second.jsonl", qatSteps: 2)
        XCTAssertTrue(second.contains("fp-erm: steps 0–10 finished in an earlier attempt"), second)
        XCTAssertFalse(second.contains(": new "), "no call trains again:\n\(second)")
        XCTAssertEqual(reused.count, straight.count)
        XCTAssertEqual(reused, straight, "the reused calls write the records of the first attempt")
        // More QAT steps: fp-erm and fp-control are reused, every quantized run trains anew.
        let (third, _) = try attempt("third.jsonl", qatSteps: 3)
        XCTAssertTrue(third.contains("fp-erm: steps 0–10 finished in an earlier attempt"), third)
        XCTAssertTrue(third.contains("fp-control: new erm run"), third)
        XCTAssertTrue(third.contains(": new qat run"), third)
    }

    func testAFailingTaskIsMarkedWithItsLastErrorLine() throws {
        let binary = repositoryRoot.appendingPathComponent(".build/debug/fqat-shell").path
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: binary), "fqat-shell is not built")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fqat-sweep-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let script = (dir as NSString).appendingPathComponent("bad.fqs")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "let n = option \"n\" 1\nif n > 1 {\n    train erm steps=1\n}\nprint n\n".write(toFile: script, atomically: true, encoding: .utf8)
        let sweepDir = (dir as NSString).appendingPathComponent("sweep")
        var out: [String] = [], err: [String] = []
        XCTAssertEqual(SweepCLI.main(["create", sweepDir, script, "--each", "n", "--n=[1,2]"], print: { out.append($0) }, printError: { err.append($0) }), 0, "\(err)")
        let sweep = SweepFolder(sweepDir)
        let tasks = try sweep.read()
        let p = try Subprocess(executable: binary, arguments: ["sweep", "run", sweepDir, "--workers", "2"], stdin: .null, stdout: .pipe, stderr: .standardOutput)
        let text = String(decoding: p.output!.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertEqual(p.wait().status, 70, text)
        XCTAssertEqual(sweep.state(tasks[0]), .done)
        guard case .failed(let why) = sweep.state(tasks[1]) else { return XCTFail("\(sweep.state(tasks[1]))") }
        XCTAssertTrue(why.hasPrefix("exit 70: "), why)
        XCTAssertTrue(why.contains("error"), why)
        XCTAssertTrue(text.contains("1 not done"), text)
    }
}

/// Runs the built shell from the repository root; returns its exit status and its output (stdout and
/// stderr together).
private func runShell(_ binary: String, _ args: [String]) throws -> (Int32, String) {
    let p = try Subprocess(executable: binary, arguments: args, workingDirectory: repositoryRoot.path,
                           stdin: .null, stdout: .pipe, stderr: .standardOutput)
    let data = p.output!.readDataToEndOfFile()
    return (p.wait().status, String(decoding: data, as: UTF8.self))
}
