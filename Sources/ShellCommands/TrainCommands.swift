// `train`, `step`, `eval`, `results`: running the DomainBed protocol and showing I.D against OOD.
import Datasets
import Foundation
import NN
import Optim
import Quant
import ShellLanguage
import TensorCore
import Training

extension ShellCommands {
    /// Hyperparameter keys of `train` and `step`; absent keys keep the session's value.
    struct HyperparameterArguments: CommandArguments {
        /// `eval=`: which splits each evaluation covers.
        enum EvalSplits: String, ChoiceArgument { case all, selection }
        /// `bn=`: batch statistics or fixed running statistics.
        enum BatchNormMode: String, ChoiceArgument { case train, frozen }

        @Option(.number(0...1), help: "Adam learning rate of the model (default 1e-3)") var lr: Double?
        @Option(.number(0...1), help: "weight decay, L2 added to the gradient (default 0)") var wd: Double?
        @Option(.number(0...1), help: "Adam learning rate of the scale factors, no weight decay (default 1e-4)") var scale_lr: Double?
        @Option(.number(0...10), help: "SAGM radius ρ (default 0.05)") var rho: Double?
        @Option(.number(0...1), help: "SAGM α (default 0.001)") var alpha: Double?
        @Option(.number(0...1), help: "disorder threshold τ of the freeze test (default 0.5)") var tau: Double?
        @Option(.int(2...1_000_000), help: "freeze window in steps (default 100)") var K: Int?
        @Option(.int(min: 1), help: "evaluate every domain every N steps (default 100)") var eval_every: Int?
        @Option(help: "splits each evaluation covers: all (DomainBed, default) or selection (not the training domains' in splits, which no score reads; same numbers, less work)") var eval: EvalSplits?
        @Option(help: "BatchNorm: batch statistics (train) or running statistics fixed (frozen, DomainBed/SAGM)") var bn: BatchNormMode?
        @Option(.number(0...0.99), help: "dropout on the features (default 0)") var dropout: Double?
    }

    /// Applies the hyperparameter keys given to this command to the session's hyperparameters.
    static func applyHyperparameters(_ given: HyperparameterArguments, _ s: Session) {
        var h = s.hyperparameters
        if let v = given.lr { h.learningRate = v }
        if let v = given.wd { h.weightDecay = v }
        if let v = given.scale_lr { h.scaleLearningRate = v }
        if let v = given.rho { h.rho = v }
        if let v = given.alpha { h.alpha = v }
        if let v = given.tau { h.tau = Float(v) }
        if let v = given.K { h.window = v }
        if let v = given.eval_every { h.evalEvery = v }
        if let v = given.eval { h.evaluateTrainingInSplits = v == .all }
        if let v = given.bn { h.frozenBatchNorm = v == .frozen }
        if let v = given.dropout { h.dropout = v }
        s.hyperparameters = h
    }

    struct TrainArguments: CommandArguments {
        @Positional(help: "training method") var method: TrainingMethod
        @Option(.int(min: 0), help: "steps to take") var steps: Int
        @Group var hyperparameters: HyperparameterArguments
        @Option(help: "start a new run even if the current one could continue") var new = false
        @Option(help: "name of this run in `results` and its records file (default: the method and bits)") var label: String?
    }

    static func trainCommand(_ s: Session) -> CommandSpec {
        CommandSpec(
            name: "train", summary: "train with a method for N steps on the DomainBed protocol (continues the current run)",
            discussion: """
            Methods: \(TrainingMethod.allCases.map { "\n  \($0.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0)) \($0.summary)" }.joined())
            Each step takes one batch from every training domain. Every `eval_every` steps (and at the end) every
            domain's in and out splits are evaluated (`eval=selection` skips the training domains' in splits, which
            no score reads); the record goes to <out>/<label>.jsonl. The summary shows the
            checkpoint picked by train-domain validation (I.D = mean out-split accuracy of the training domains)
            and its OOD accuracy (the held-out domains' in split). Calling `train` again with the same method
            continues the run (optimizer moments, disorder windows and freeze timers kept); a different method,
            model or hyperparameter starts a new run from the current weights. Ctrl-C pauses at the next step.
            Hyperparameters given here stay set for later `train` and `step` calls. A continued run keeps its
            label and records file; a new run whose records file already exists moves the earlier file aside
            to <file>.1 (.2, …), which `summary` does not read, so re-running a script never mixes two runs.
            """,
            group: "training",
            arguments: TrainArguments.self,
            examples: ["train erm steps=300 bn=train", "train fqat steps=500 tau=0.5 K=50", "train qat+sagm steps=500 lr=1e-4"],
            run: { args, inv in try train(args, inv, s) })
    }

    static func train(_ args: TrainArguments, _ inv: Invocation, _ s: Session) throws -> Value {
        applyHyperparameters(args.hyperparameters, s)
        let method = args.method
        var (run, isNew) = try s.runFor(method: method, forceNew: args.new)
        // A continued run keeps its label (and records file) unless a new one is given.
        let label = args.label ?? (!isNew ? s.runLabel : nil) ?? defaultLabel(method, s)
        var steps = args.steps
        // A sweep task's earlier attempt finished this very call: reuse its result (FinishedRuns).
        let finishedKey = FinishedRuns.folder(s) == nil ? nil : FinishedRuns.key(s, run: run, label: label, method: method, steps: steps)
        if let key = finishedKey, let (path, outcome) = FinishedRuns.lookup(s, key: key) {
            return try reuseFinished(inv, s, label: label, method: method, isNew: isNew, path: path, outcome: outcome)
        }
        let recordsBefore = run.records.count
        var resumed = false
        if isNew, let saved = try resumableRun(s, label: label, method: method, candidate: run, steps: steps) {
            // A re-run sweep task (`fqat-shell --resume-from`): this is the run its killed attempt was
            // in; the saved session continues it exactly, for the steps it had left.
            try SessionFile.load(s, from: saved)
            s.launch.resumeFrom = nil
            guard let r = s.run else { throw CommandError("the session '\(saved)' has no run to resume") }
            inv.print("\(label): resumed at step \(r.step) of \(steps) from \(saved)")
            steps -= r.step
            run = r
            resumed = true
            if let file = s.launch.recordsFile { for record in r.records { try appendRecord(record, to: file) } }
        }
        // The run owns its label (`Session.runLabel` reads it; a saved session keeps it with the run).
        run.recordArgs["label"] = .string(label)
        // DomainBed's tools make one table row per args.algorithm, so it holds the run label (one row
        // per method × quantizer × bits, as `summary`); the training method itself is args.method.
        run.recordArgs["algorithm"] = .string(label)
        run.recordArgs["method"] = .string(method.rawValue)
        for (key, value) in s.launch.recordArgOverrides {
            if key == "dataset", let own = run.recordArgs["dataset"], run.recordArgs["benchmark"] == nil { run.recordArgs["benchmark"] = own }
            run.recordArgs[key] = value
        }
        let progress = Progress(mode: Progress.mode(setting: s.settings.progress), total: steps, label: label) {
            inv.output.write($0, to: .standard)
        }
        if resumed {
        } else if isNew {
            inv.print("\(label): new \(method.rawValue) run — \(runDescription(run))")
        } else {
            inv.print("\(label): continuing at step \(run.step)")
        }
        let recordsPath = try recordsFile(s, label: label)
        if isNew, !resumed, let moved = try setAsideEarlierRecords(recordsPath) {
            inv.print("\(label): earlier records in \(recordsPath) moved to \(moved) (a new run starts a new file)")
        }
        try checkRecordsWritable(recordsPath)
        var done = 0
        var lastLoss: Float = .nan
        var recordFailure: RecordWriteError?
        let summary: TrainSummary
        do {
            summary = try run.train(steps: steps, shouldStop: { inv.interrupt.isRequested || recordFailure != nil }) { event in
                switch event {
                case .step(let report, _):
                    done += 1
                    lastLoss = report.loss
                    var status = "loss \(Render.number(Double(report.loss), "%.4f"))"
                    if method.isQuantized && method.usesFlatnessPass { status += "  frozen \(report.frozen.count)/\(run.scales.count)" }
                    progress.update(done, status)
                case .evaluation(let record, _):
                    // `fqat-shell --records FILE` (a sweep task): every run's records also go to one
                    // DomainBed results.jsonl, which the task runner clears before each attempt.
                    for file in [recordsPath] + (s.launch.recordsFile.map { [$0] } ?? []) {
                        do { try appendRecord(record, to: file) } catch let e as RecordWriteError {
                            if recordFailure == nil { recordFailure = e }
                        } catch {}
                    }
                    progress.note(evalLine(record, s: s, loss: record.metrics["loss"]))
                }
            }
        } catch {
            progress.finish()
            if case TrainingError.diverged = error {
                inv.warn("records so far are in \(recordsPath)")
            }
            throw error
        }
        progress.finish()
        if let failure = recordFailure {
            // The run stopped at the step boundary after the failed write; its state and every record
            // (in memory, with the run) are intact.
            throw CommandError("could not append a record to '\(failure.path)': \(failure.reason). The run stopped at step \(run.step) with its state and records kept in the session; free space or `set out=…`, then `train \(method.rawValue) steps=…` continues (or `save session` keeps everything)")
        }
        if let key = finishedKey, !summary.interrupted {
            try FinishedRuns.store(s, key: key, outcome: .init(stepsRun: summary.stepsRun, lastLoss: lastLoss, meanLoss: summary.meanLoss,
                                                               seconds: summary.seconds, imagesPerSecond: summary.imagesPerSecond,
                                                               recordsBefore: resumed ? 0 : recordsBefore))
        }
        if let sel = summary.selected {
            inv.print("\(label): \(summary.stepsRun) steps in \(Render.duration(summary.seconds)) (\(Int(summary.imagesPerSecond)) img/s), final loss \(Render.number(Double(lastLoss), "%.4f"))")
            reportSelection(inv, s, label: label, method: method, run: run, selection: sel, recordsPath: recordsPath)
        }
        if summary.interrupted {
            inv.print("interrupted after step \(run.step): model, optimizer and freeze state are intact; `train \(method.rawValue) steps=…` continues")
            throw Interrupted()
        }
        return trainValue(run, summary: summary, label: label)
    }

    /// A `train` call that an earlier attempt of this sweep task finished (same key): loads the
    /// session it left, writes the records the call wrote, and reports what it reported.
    static func reuseFinished(_ inv: Invocation, _ s: Session, label: String, method: TrainingMethod, isNew: Bool,
                              path: String, outcome: FinishedRuns.Outcome) throws -> Value {
        try SessionFile.load(s, from: path)
        guard let run = s.run else { throw CommandError("the finished-run snapshot '\(path)' has no run; delete it and run again") }
        let recordsPath = try recordsFile(s, label: label)
        if isNew, let moved = try setAsideEarlierRecords(recordsPath) {
            inv.print("\(label): earlier records in \(recordsPath) moved to \(moved) (a new run starts a new file)")
        }
        let written = run.records.count > outcome.recordsBefore ? Array(run.records[outcome.recordsBefore...]) : []
        for record in written {
            for file in [recordsPath] + (s.launch.recordsFile.map { [$0] } ?? []) { try appendRecord(record, to: file) }
        }
        inv.print("\(label): steps \(run.step - outcome.stepsRun)–\(run.step) finished in an earlier attempt of this task; loaded from \(path), not trained again")
        let summary = TrainSummary(stepsRun: outcome.stepsRun, finalStep: run.step, lastLoss: outcome.lastLoss, meanLoss: outcome.meanLoss,
                                   seconds: outcome.seconds, imagesPerSecond: outcome.imagesPerSecond, interrupted: false,
                                   lastRecord: run.records.last, selected: run.selection())
        if let sel = summary.selected {
            reportSelection(inv, s, label: label, method: method, run: run, selection: sel, recordsPath: recordsPath)
        }
        return trainValue(run, summary: summary, label: label)
    }

    /// A finished call's row in `results` (replacing the label's earlier one) and its selection line.
    static func reportSelection(_ inv: Invocation, _ s: Session, label: String, method: TrainingMethod, run: Run,
                                selection sel: Selection, recordsPath: String) {
        s.results.removeAll { $0.label == label }
        s.results.append(resultRow(label: label, method: method, run: run, selection: sel, s: s))
        inv.print("  selected step \(sel.record.step) by train-domain validation: I.D \(Render.percent(sel.validationAccuracy))%  OOD \(Render.percent(sel.testAccuracy))%  (records: \(recordsPath))")
    }

    /// The session file to resume this new run from (`s.launch.resumeFrom`, set by `fqat-shell
    /// --resume-from`): only when its run has this label and method, the same data, seed and
    /// hyperparameters as the run about to start, and fewer steps than asked; else nil (the run
    /// starts afresh, as any run before the one that was stopped).
    static func resumableRun(_ s: Session, label: String, method: TrainingMethod, candidate: Run, steps: Int) throws -> String? {
        guard let path = s.launch.resumeFrom, SessionFile.hasRun(at: path) else { return nil }
        let probe = Session()
        probe.plotter = s.plotter
        do { try SessionFile.load(probe, from: path) } catch { return nil }
        guard let saved = probe.run, saved.recordArgs["label"] == .string(label), saved.method == method,
              saved.step < steps, saved.seed == candidate.seed, saved.trialSeed == candidate.trialSeed,
              saved.hyperparameters == candidate.hyperparameters, saved.environments == candidate.environments,
              probe.dataChoice == s.dataChoice else { return nil }
        return path
    }

    static func defaultLabel(_ method: TrainingMethod, _ s: Session) -> String {
        guard method.isQuantized, let q = s.quantization else { return method.rawValue }
        let base = q.method.rawValue
        let m: String
        switch method {
        case .qat: m = base
        case .qatSAGM: m = "\(base)+sagm"
        case .fqat: m = "fqat-\(base)"
        default: m = "\(method.rawValue)-\(base)"
        }
        return q.weightBits == q.activationBits ? "\(m)-\(q.weightBits)bit" : "\(m)-w\(q.weightBits)a\(q.activationBits)"
    }

    static func runDescription(_ r: Run) -> String {
        let h = r.hyperparameters
        var parts = ["lr \(Value.format(h.learningRate))", "batch \(h.batchPerDomain)×\(r.environments.trainingDomains.count)",
                     "bn \(h.frozenBatchNorm ? "frozen" : "train")", "eval every \(h.evalEvery)"]
        if !h.evaluateTrainingInSplits { parts.append("eval selection splits") }
        if r.method.isQuantized { parts.append("scale lr \(Value.format(h.scaleLearningRate))") }
        if r.method.usesFlatnessPass { parts.append("ρ \(Value.format(h.rho)) α \(Value.format(h.alpha))") }
        if r.method.freezePolicy.usesDisorderTest { parts.append("τ \(Value.format(Double(h.tau))) K \(h.window)") }
        return parts.joined(separator: ", ")
    }

    static func recordsFile(_ s: Session, label: String) throws -> String {
        let dir = s.settings.out
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
            throw CommandError("cannot create the output folder '\(dir)': \(error.localizedDescription); choose another with `set out=…`")
        }
        return (dir as NSString).appendingPathComponent(fileNameSafe(label, fallback: "run") + ".jsonl")
    }

    /// A new run must not append to the records of an earlier run with the same label (a summary
    /// would count both). The earlier file is renamed to the first free `<file>.1`, `<file>.2`, … —
    /// names `summary` does not read — and nothing is lost. Returns the new name, or nil when there
    /// was nothing to move.
    static func setAsideEarlierRecords(_ path: String) throws -> String? {
        let fm = FileManager.default
        guard let attrs = try? fm.attributesOfItem(atPath: path), (attrs[.size] as? NSNumber)?.intValue ?? 0 > 0 else { return nil }
        var n = 1
        while fm.fileExists(atPath: "\(path).\(n)") { n += 1 }
        let target = "\(path).\(n)"
        do { try fm.moveItem(atPath: path, toPath: target) } catch {
            throw CommandError("cannot move the earlier records '\(path)' aside to '\(target)': \(error.localizedDescription); move them yourself or choose another folder with `set out=…`")
        }
        return target
    }

    /// Appends one JSON line to the records file. Every failure (no space, a read-only or pseudo file
    /// system, a vanished folder) is thrown with the OS's reason: records are never dropped silently.
    static func appendRecord(_ record: EvalRecord, to path: String) throws {
        try appendLine(record.jsonLine() + "\n", to: path)
    }

    static func appendLine(_ line: String, to path: String) throws {
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw RecordWriteError(path: path, reason: String(cString: strerror(errno))) }
        let bytes = Array(line.utf8)
        var written = 0
        var failure: String?
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                failure = String(cString: strerror(errno)); break
            }
            if n == 0 { failure = "nothing was written"; break }
            written += n
        }
        if close(fd) != 0, failure == nil { failure = String(cString: strerror(errno)) }
        if let failure { throw RecordWriteError(path: path, reason: failure) }
    }

    /// The records file must take a line before a run starts (`out=/proc/self` accepts a folder but no file).
    static func checkRecordsWritable(_ path: String) throws {
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw CommandError("cannot write records to '\(path)': \(String(cString: strerror(errno))); choose another folder with `set out=…`")
        }
        close(fd)
    }

    static func evalLine(_ r: EvalRecord, s: Session, loss: Double?) -> String {
        var t = "step \(r.step)"
        if let l = loss { t += "  loss \(Render.number(l, "%.4f"))" }
        t += "  I.D \(Render.percent(r.validationAccuracy))%  OOD \(Render.percent(r.testAccuracy))%"
        return t
    }

    static func resultRow(label: String, method: TrainingMethod, run: Run, selection sel: Selection, s: Session) -> ResultRow {
        let names = run.dataset.domainNames
        var byDomain: [String: Double] = [:]
        for (d, v) in sel.testAccuracyByDomain { byDomain[names[d]] = v }
        let last = run.records.last
        return ResultRow(label: label, method: method.rawValue, bits: s.quantization.map { "W\($0.weightBits)A\($0.activationBits)" } ?? "FP",
                         steps: run.step, selectedStep: sel.record.step, validation: sel.validationAccuracy,
                         test: sel.testAccuracy, testByDomain: byDomain,
                         lastValidation: last?.validationAccuracy ?? .nan, lastTest: last?.testAccuracy ?? .nan)
    }

    static func trainValue(_ run: Run, summary: TrainSummary, label: String) -> Value {
        var fields: [(String, Value)] = [("label", .string(label)), ("method", .string(run.method.rawValue)),
                                         ("step", .int(run.step)), ("loss", .number(Double(summary.lastLoss))),
                                         ("seconds", .number(summary.seconds))]
        if let sel = summary.selected {
            fields += [("id", .number(sel.validationAccuracy)), ("ood", .number(sel.testAccuracy)),
                       ("selected_step", .int(sel.record.step))]
        }
        return .record(Record(fields))
    }

    struct EvalArguments: CommandArguments {
        @Option(.int(1...4096), help: "evaluation batch size") var batch = 256
    }

    static func evalCommand(_ s: Session) -> CommandSpec {
        CommandSpec(
            name: "eval", summary: "evaluate every domain now: in/out split accuracy, I.D (validation) against OOD (test)",
            group: "training",
            arguments: EvalArguments.self,
            examples: ["eval", "let r = eval", "print r.ood"],
            run: { args, inv in
                let net = try s.requireNetwork()
                let (dataset, env) = try s.requireData()
                // A batch is never larger than the largest domain.
                let largest = dataset.domains.map(\.count).max() ?? 0
                try checkBatchMemory(net, imageShape: dataset.imageShape, batch: min(args.batch, largest), what: "eval", argument: args.$batch)
                let splits = dataset.domainBedSplits(trialSeed: s.settings.trialSeed)
                let (record, results) = try Evaluator.record(net, dataset: dataset, splits: splits, environments: env,
                                                             step: s.run?.step ?? 0, batchSize: args.batch,
                                                             shouldStop: { inv.interrupt.isRequested })
                inv.print(evalTable(record, results, dataset: dataset))
                var fields: [(String, Value)] = [("id", .number(record.validationAccuracy)), ("ood", .number(record.testAccuracy)),
                                                 ("gap", .number(record.validationAccuracy - record.testAccuracy)),
                                                 ("step", .int(record.step))]
                for r in results { fields.append(("\(dataset.domainNames[r.domain])_\(r.part.rawValue)", .number(r.accuracy))) }
                return .record(Record(fields))
            })
    }

    static func evalTable(_ record: EvalRecord, _ results: [SplitResult], dataset: DomainDataset) -> String {
        var rows: [[String]] = []
        for (i, name) in dataset.domainNames.enumerated() {
            let role = record.testDomains.contains(i) ? "test (OOD)" : "train"
            let inR = results.first { $0.domain == i && $0.part == .in }
            let outR = results.first { $0.domain == i && $0.part == .out }
            rows.append([name, role, inR.map { Render.percent($0.accuracy) } ?? "—", outR.map { Render.percent($0.accuracy) } ?? "—",
                         outR.map { Render.number($0.loss, "%.3f") } ?? "—"])
        }
        let se = results.filter { record.testDomains.contains($0.domain) && $0.part == .in }.map(\.standardError).max() ?? .nan
        var text = Render.table(["domain", "role", "in %", "out %", "out loss"], rows)
        text += "\nI.D (train-domain validation) \(Render.percent(record.validationAccuracy))%   OOD (held-out) \(Render.percent(record.testAccuracy))%   gap \(Render.percent(record.validationAccuracy - record.testAccuracy)) points   (OOD s.e. ±\(Render.percent(se)))"
        return text
    }

    struct ResultsArguments: CommandArguments {
        @Option(.path, help: "also write the table as CSV to this file") var csv: String?
    }

    static func resultsCommand(_ s: Session) -> CommandSpec {
        CommandSpec(
            name: "results", summary: "table of every run this session: selected I.D and OOD accuracy per method",
            discussion: "Accuracies are those of the checkpoint picked by train-domain validation; `last` columns are the final evaluation.",
            group: "training",
            arguments: ResultsArguments.self,
            run: { args, inv in
                guard !s.results.isEmpty else { inv.print("no finished runs yet; `train …` first"); return .list([]) }
                let rows = s.results.map { r in [r.label, r.bits, String(r.steps), String(r.selectedStep), Render.percent(r.validation),
                                                 Render.percent(r.test), Render.percent(r.validation - r.test),
                                                 Render.percent(r.lastValidation), Render.percent(r.lastTest)] }
                inv.print(Render.table(["run", "bits", "steps", "selected", "I.D %", "OOD %", "gap", "last I.D", "last OOD"], rows))
                if let csvPath = args.csv {
                    var csv = "run,method,bits,steps,selected_step,id,ood,last_id,last_ood\n"
                    for r in s.results {
                        csv += Render.csvLine([r.label, r.method, r.bits, String(r.steps), String(r.selectedStep), String(r.validation),
                                               String(r.test), String(r.lastValidation), String(r.lastTest)])
                    }
                    try csv.write(toFile: csvPath, atomically: true, encoding: .utf8)
                }
                return .list(s.results.map { r in .record(Record([("label", .string(r.label)), ("id", .number(r.validation)), ("ood", .number(r.test))])) })
            })
    }
}

/// A records line that could not be written, with the OS's reason.
struct RecordWriteError: Error, CustomStringConvertible {
    var path: String
    var reason: String
    var description: String { "could not append a record to '\(path)': \(reason); free space or choose another folder" }
}
