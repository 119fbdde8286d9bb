// The Slurm launcher for real: a single-node cluster started by the test (scripts/slurm-cluster.sh,
// as root), a smoke sweep submitted as an array, one task stopped mid-run with
// `scancel --signal=TERM`, requeued, and the collected table compared with the local launcher's.
// Skipped with a printed reason where Slurm is not installed or the tests do not run as root.
import Foundation
import Plot
@testable import ShellCommands
import XCTest

final class SlurmSweepTests: XCTestCase {
    func which(_ name: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/usr/sbin").split(separator: ":") + ["/usr/bin", "/usr/sbin", "/bin", "/sbin"] {
            let path = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    /// Runs a command (a name on PATH, or a path relative to the repository), output and errors together.
    /// Plot's Subprocess (posix_spawn + waitpid): children inherit this process's environment,
    /// SLURM_CONF included.
    @discardableResult
    func sh(_ args: [String], check: Bool = true, file: StaticString = #filePath, line: UInt = #line) throws -> (Int32, String) {
        let name = args[0]
        let path = name.hasPrefix("/") ? name : name.contains("/") ? repositoryRoot.appendingPathComponent(name).path : (which(name) ?? name)
        let p = try Subprocess(executable: path, arguments: Array(args.dropFirst()), workingDirectory: repositoryRoot.path,
                               stdin: .null, stdout: .pipe, stderr: .standardOutput)
        let data = p.output!.readDataToEndOfFile()
        let status = p.wait().status
        let text = String(decoding: data, as: UTF8.self)
        if check { XCTAssertEqual(status, 0, "\(args.joined(separator: " ")): \(text)", file: file, line: line) }
        return (status, text)
    }

    let testStart = Date()

    func waitFor(_ what: String, limit: Double, _ condition: () throws -> Bool) throws {
        let start = Date()
        while try !condition() {
            guard Date().timeIntervalSince(start) < limit else { throw SweepError("timed out after \(Int(limit)) s waiting for \(what)") }
            Thread.sleep(forTimeInterval: 0.25)
        }
        print(String(format: "SlurmSweepTests: %.1f s: %@", Date().timeIntervalSince(testStart), what))
    }

    func testASweepRunsAsASlurmArrayAndSurvivesATerminatedTask() throws {
        let binary = repositoryRoot.appendingPathComponent(".build/debug/fqat-shell").path
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: binary), "fqat-shell is not built")
        try XCTSkipUnless(fashionMNISTPresent, "Fashion-MNIST is not installed")
        let missing = ["slurmctld", "slurmd", "sbatch", "scancel", "scontrol", "munged"].filter { which($0) == nil }
        if !missing.isEmpty || getuid() != 0 {
            let reason = getuid() != 0 ? "the Slurm test starts its own cluster as root; not root here"
                : "Slurm is not installed (missing \(missing.joined(separator: ", "))); `scripts/slurm-cluster.sh install` as root installs it"
            print("SlurmSweepTests: skipped: \(reason)")
            throw XCTSkip(reason)
        }
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("fqat-slurm-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let cluster = (root as NSString).appendingPathComponent("cluster")
        defer {
            _ = try? sh(["scripts/slurm-cluster.sh", "stop", cluster], check: false)
            try? FileManager.default.removeItem(atPath: root)
        }
        let (started, startText) = try sh(["scripts/slurm-cluster.sh", "start", cluster], check: false)
        guard started == 0 else { return XCTFail("the test cluster did not start: \(startText)") }
        setenv("SLURM_CONF", (cluster as NSString).appendingPathComponent("slurm.conf"), 1)
        defer { unsetenv("SLURM_CONF") }

        // The same smoke sweep twice: on Slurm and with the local launcher. 20 ERM steps leave time to
        // stop a task while it trains.
        let grid = ["examples/paper/table1.fqs", "--grid", "domains", "--domains=[fog,clean]", "--seeds=[0]",
                    "--per_domain=60", "--arch=resnet8", "--erm_steps=20", "--qat_steps=2", "--eval_every=5", "--bits=[4]", "--ewgs=false",
                    "--domainbed-dataset", "PACS"]
        let slurmDir = (root as NSString).appendingPathComponent("slurm-sweep")
        let localDir = (root as NSString).appendingPathComponent("local-sweep")
        try sh([binary, "sweep", "create", slurmDir] + grid)
        try sh([binary, "sweep", "create", localDir] + grid)
        let sweep = SweepFolder(slurmDir)
        let tasks = try sweep.read()
        XCTAssertEqual(tasks.map(\.id), try SweepFolder(localDir).read().map(\.id), "ids depend on the arguments only")

        let (_, dry) = try sh([binary, "sweep", "run", slurmDir, "--launcher", "slurm", "--dry-run", "--time", "00:10:00"])
        XCTAssertTrue(dry.contains("#SBATCH --array=0-1\n") && dry.contains("#SBATCH --time=00:10:00"), dry)
        let (_, submitted) = try sh([binary, "sweep", "run", slurmDir, "--launcher", "slurm", "--time", "00:10:00"])
        let job = try XCTUnwrap(submitted.split(separator: " ").drop { $0 != "job" }.dropFirst().first.map { $0.trimmingCharacters(in: CharacterSet(charactersIn: ",")) }, submitted)

        // Stop task 0 once its script trains, as a preemption would.
        try waitFor("task 0 to train", limit: 120) {
            ((try? String(contentsOfFile: sweep.file(tasks[0], "out.txt"), encoding: .utf8)) ?? "").contains("fp-erm: new")
        }
        try sh(["scancel", "--signal=TERM", "--full", "\(job)_0"])
        try waitFor("task 0 to stop", limit: 120) { sweep.state(tasks[0]) != .pending && !(sweep.state(tasks[0]).name == "running") }
        XCTAssertEqual(sweep.state(tasks[0]).name, "failed")
        if case .failed(let why) = sweep.state(tasks[0]) { XCTAssertTrue(why.hasPrefix("terminated (SIGTERM)"), why) }
        XCTAssertTrue(FileManager.default.fileExists(atPath: sweep.file(tasks[0], "autosave.fqsession")), "the script saved its session")

        // Requeue the stopped task; wait for the whole array.
        try waitFor("Slurm to see task 0 end", limit: 60) {
            let (_, state) = try sh(["scontrol", "show", "job", "\(job)_0"], check: false)
            return !state.contains("JobState=RUNNING") && !state.contains("JobState=COMPLETING")
        }
        try sh(["scontrol", "requeue", "\(job)_0"])
        try waitFor("the requeued task 0 to run again", limit: 300) { sweep.state(tasks[0]).name == "running" }
        try waitFor("every task to be done", limit: 400) { tasks.allSatisfy { sweep.state($0) == .done } }
        let (_, listed) = try sh([binary, "sweep", "list", slurmDir])
        XCTAssertTrue(listed.contains("2 done, 0 running, 0 failed, 0 pending"), listed)
        for t in tasks {
            let records = try String(contentsOfFile: sweep.file(t, "results.jsonl"), encoding: .utf8).split(separator: "\n")
            // fp-erm: 20 steps evaluated every 5 (4 records); the control and 3 methods: 2 steps, 1 record each.
            XCTAssertEqual(records.count, 8, "a re-run task starts its results over: \(records.joined(separator: "\n"))")
        }

        let log0 = try String(contentsOfFile: sweep.file(tasks[0], "out.txt"), encoding: .utf8)
        XCTAssertTrue(log0.contains("fp-erm: resumed at step "), "the requeued task continues its run: \(log0)")
        for t in tasks { print("SlurmSweepTests: task \(t.index) done: \((try? String(contentsOfFile: sweep.file(t, "done"), encoding: .utf8)) ?? "")") }
        // The local launcher gives the identical table.
        try sh([binary, "sweep", "run", localDir, "--workers", "2", "--threads", "1"])
        print(String(format: "SlurmSweepTests: %.1f s: the local launcher ran the same sweep", Date().timeIntervalSince(testStart)))
        let (_, slurmTable) = try sh([binary, "sweep", "collect", slurmDir])
        let (_, localTable) = try sh([binary, "sweep", "collect", localDir])
        XCTAssertTrue(slurmTable.contains("fqat-lsq-4bit"), slurmTable)
        XCTAssertEqual(slurmTable, localTable)
    }
}
