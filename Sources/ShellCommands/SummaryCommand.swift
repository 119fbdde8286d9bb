// `summary <folder>`: rebuilds the result tables from the JSON-lines records a study wrote, so
// anyone can regenerate them: per method (run label) and held-out domain, the checkpoint picked by
// train-domain validation, mean ± std over seeds of Val (I.D) and Test (OOD), and the noise of the
// selection (how much the test accuracy moves between neighbouring evaluations).
import Datasets
import Foundation
import ShellLanguage
import Training

extension ShellCommands {
    struct RunRecords {
        var label: String
        var seed: Int
        var testDomains: [Int]
        var records: [EvalRecord]
    }

    static func readRecords(under folder: String) throws -> [RunRecords] {
        guard let walker = FileManager.default.enumerator(atPath: folder) else {
            throw CommandError("cannot read the folder '\(folder)'")
        }
        var runs: [RunRecords] = []
        // A sweep folder (docs/sweeps.md) is read as DomainBed reads it: <task>/results.jsonl, one
        // per task, each holding every run of its task (the per-label copies under <task>/out are
        // not read again). A results file may hold several runs: they are told apart by label, seed and held-out domains.
        let isSweep = SweepFolder.isSweep(folder)
        let files: [String]
        if isSweep {
            let subs = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted()
            files = subs.map { ($0 as NSString).appendingPathComponent("results.jsonl") }
                .filter { FileManager.default.fileExists(atPath: (folder as NSString).appendingPathComponent($0)) }
        } else {
            files = walker.compactMap { $0 as? String }.filter { $0.hasSuffix(".jsonl") }
        }
        for rel in files {
            let path = (folder as NSString).appendingPathComponent(rel)
            let text = try String(contentsOfFile: path, encoding: .utf8)
            let all: [EvalRecord]
            do { all = try EvalRecord.parse(jsonLines: text) } catch {
                throw CommandError("\(path): \(error)")
            }
            func labelOf(_ r: EvalRecord) -> String? { r.args["label"].flatMap { if case .string(let s) = $0 { return s } else { return nil } } }
            var order: [String] = []
            var byLabel: [String: [EvalRecord]] = [:]
            for r in all {
                let key = isSweep ? "\(labelOf(r) ?? "")|\(r.args["seed"]?.description ?? "")|\(r.testDomains)" : ""
                if byLabel[key] == nil { order.append(key) }
                byLabel[key, default: []].append(r)
            }
            for key in order {
                let records = byLabel[key]!
                guard let first = records.first else { continue }
                let label = labelOf(first) ?? ((rel as NSString).lastPathComponent as NSString).deletingPathExtension
                let seedNumber = first.args["seed"].flatMap { $0.number } ?? 0
                guard let seed = Int(exactly: seedNumber) else {
                    throw CommandError("\(path): args.seed is \(seedNumber), not a whole number; the records file is damaged or was edited")
                }
                runs.append(RunRecords(label: label, seed: seed, testDomains: first.testDomains, records: records))
            }
        }
        return runs.sorted { ($0.label, $0.testDomains.first ?? 0, $0.seed) < ($1.label, $1.testDomains.first ?? 0, $1.seed) }
    }

    /// Mean absolute change of the test accuracy between the selected evaluation and its neighbours.
    static func selectionJitter(_ records: [EvalRecord], selectedStep: Int) -> Double? {
        guard let i = records.firstIndex(where: { $0.step == selectedStep }) else { return nil }
        var diffs: [Double] = []
        for j in [i - 1, i + 1] where j >= 0 && j < records.count {
            diffs.append(abs(records[j].testAccuracy - records[i].testAccuracy))
        }
        return diffs.isEmpty ? nil : diffs.reduce(0, +) / Double(diffs.count)
    }

    struct SummaryArguments: CommandArguments {
        @Positional(.path, help: "folder with records (searched recursively)") var folder: String
        @Option(help: "use test-domain oracle selection (labelled as such)") var oracle = false
        @Option(.path, help: "also write the table as CSV") var csv: String?
        @Option(help: "a run label: also print every other run's paired difference from it") var versus: String?
        @Option(.number(min: 0), help: "points: OOD differences within it are ties (the spread between BLAS kernels and backends)") var kernel_noise = ShellCommands.kernelNoisePoints
        @Option(.list(.path), help: "folders holding the same runs from another kernel or backend: print how far each run moves") var across: [String]?
    }

    static func summaryCommand(_ s: Session) -> CommandSpec {
        CommandSpec(
            name: "summary", summary: "build result tables (mean ± std over seeds) from the records under a folder",
            discussion: """
            Reads every *.jsonl record file under the folder (as written by `train`), selects each run's
            checkpoint by train-domain validation (or the test-domain oracle, labelled), and prints per run
            label: Val (I.D) and Test (OOD) for each held-out domain and their average, as mean ± sample std
            over seeds. `noise` is the mean change of the selected OOD accuracy between neighbouring
            evaluations: differences between methods smaller than it are ties.

            With `versus=<label>`, a second table pairs every other run with that one on the same held-out
            domain and seed (same starting checkpoint and batches in the paper scripts) and prints the mean
            difference of Val and Test, its standard error over the pairs (sample std / sqrt(pairs)) and the
            number of pairs. The `OOD verdict` column applies the study's rule: the Test difference is a tie
            unless it exceeds its 95% t-interval half-width (t(0.975, pairs − 1) standard errors), the larger
            noise of the two runs, and the kernel noise over √pairs; then the run is `ahead` or `behind` the
            baseline (`—` when none can be measured). The kernel noise (`kernel_noise`, in points) is how far
            one run's selected OOD accuracy moves when only the order of float32 sums changes (another BLAS
            kernel, CPU or backend; docs/data.md "Kernel noise"); its default was measured with the quickstart.

            With `across=[<folder>, …]`, the same runs (label, held-out domain, seed) recorded in other
            folders (the same script run with another BLAS kernel, backend or thread count) are compared
            with this folder's: each run's selected Val / Test per folder, then for every pair of folders
            the mean |Δ Val|, the mean and the largest |Δ Test| over the runs both hold, and the mean over
            all pairs, which is the kernel noise those folders measure.
            """,
            group: "training",
            arguments: SummaryArguments.self,
            examples: ["summary runs/table1", "summary runs/table1 versus=\"lsq+sagm-4bit\"",
                       "summary runs/haswell across=[\"runs/prescott\", \"runs/onednn\"]"],
            run: { args, inv in
                let runs = try readRecords(under: args.folder)
                guard !runs.isEmpty else { throw inv.error("no records (*.jsonl) under '\(args.folder)'", argument: args.$folder) }
                let method: SelectionMethod = args.oracle ? .testDomainOracle : .trainingDomainValidation
                let domains = Array(Set(runs.flatMap(\.testDomains))).sorted()
                let labels = Array(Set(runs.map(\.label))).sorted()
                func fmt(_ xs: [Double]) -> String {
                    guard !xs.isEmpty else { return "—" }
                    // One seed has no spread to report.
                    let (m, sd) = meanAndSampleStd(xs)
                    guard let sd else { return String(format: "%.1f", m * 100) }
                    return String(format: "%.1f ± %.1f", m * 100, sd * 100)
                }
                var rows: [[String]] = []
                var csv = "label,test_domain,seeds,val_mean,test_mean,noise\n"
                var values: [Value] = []
                // The selected (Val, Test) of each run, by label, held-out domain and seed, for `versus`.
                var selected: [String: [PairKey: (Double, Double)]] = [:]
                var noiseByLabel: [String: Double] = [:]
                for label in labels {
                    var cells = [label]
                    var avgVal: [Double] = [], avgTest: [Double] = [], noise: [Double] = []
                    var seedsSeen = Set<Int>()
                    for d in domains {
                        let group = runs.filter { $0.label == label && $0.testDomains.contains(d) }
                        var vals: [Double] = [], tests: [Double] = []
                        for r in group {
                            guard let sel = ModelSelection.select(r.records, method: method) else { continue }
                            vals.append(sel.validationAccuracy)
                            tests.append(sel.testAccuracyByDomain[d] ?? sel.testAccuracy)
                            seedsSeen.insert(r.seed)
                            selected[label, default: [:]][PairKey(domain: d, seed: r.seed)] =
                                (sel.validationAccuracy, sel.testAccuracyByDomain[d] ?? sel.testAccuracy)
                            if let j = selectionJitter(r.records, selectedStep: sel.record.step) { noise.append(j) }
                        }
                        cells.append(tests.isEmpty ? "—" : "\(fmt(vals)) / \(fmt(tests))")
                        if !tests.isEmpty {
                            avgVal.append(vals.reduce(0, +) / Double(vals.count))
                            avgTest.append(tests.reduce(0, +) / Double(tests.count))
                            csv += Render.csvLine([label, String(d), String(tests.count), String(vals.reduce(0, +) / Double(vals.count)),
                                                   String(tests.reduce(0, +) / Double(tests.count)), String(noise.last ?? .nan)])
                        }
                    }
                    let meanNoise = noise.isEmpty ? Double.nan : noise.reduce(0, +) / Double(noise.count)
                    if !noise.isEmpty { noiseByLabel[label] = meanNoise }
                    let av = avgVal.isEmpty ? Double.nan : avgVal.reduce(0, +) / Double(avgVal.count)
                    let at = avgTest.isEmpty ? Double.nan : avgTest.reduce(0, +) / Double(avgTest.count)
                    cells += [Render.percent(av), Render.percent(at), Render.percent(meanNoise), String(seedsSeen.count)]
                    rows.append(cells)
                    values.append(.record(Record([("label", .string(label)), ("id", .number(av)), ("ood", .number(at)), ("noise", .number(meanNoise))])))
                }
                let names = s.dataset?.domainNames
                let header = ["run"] + domains.map { d in "test \(names.map { d < $0.count ? $0[d] : "env\(d)" } ?? "env\(d)") Val / Test" } + ["avg Val", "avg Test", "noise", "seeds"]
                inv.print((method.isOracle ? "selection: test-domain oracle (uses test-domain data)\n" : "selection: train-domain validation\n") + Render.table(header, rows))
                if let csvPath = args.csv { try csv.write(toFile: csvPath, atomically: true, encoding: .utf8) }
                if let base = args.versus {
                    guard let baseline = selected[base] else {
                        throw inv.error("no run labelled '\(base)'; the labels are \(labels.joined(separator: ", "))", argument: args.$versus)
                    }
                    inv.print(pairedTable(selected: selected, baseline: baseline, baseLabel: base, labels: labels,
                                          noise: noiseByLabel, kernelNoise: args.kernel_noise / 100))
                }
                if let across = args.across {
                    let folders = [args.folder] + across
                    var columns: [[RunKey: (Double, Double)]] = []
                    for (i, folder) in folders.enumerated() {
                        let folderRuns = i == 0 ? runs : try readRecords(under: folder)
                        guard !folderRuns.isEmpty else { throw inv.error("no records (*.jsonl) under '\(folder)'", argument: args.$across) }
                        columns.append(selectedAccuracies(folderRuns, method: method))
                    }
                    inv.print(spreadTable(folders: folders, columns: columns))
                }
                return .list(values)
            })
    }

    /// Mean and sample standard deviation (nil for fewer than two values), as the result tables use:
    /// `SeedSummary`'s numbers, with "no spread" made explicit (and NaN for no values).
    static func meanAndSampleStd(_ xs: [Double]) -> (mean: Double, std: Double?) {
        guard !xs.isEmpty else { return (.nan, nil) }
        let summary = SeedSummary(xs)
        return (summary.mean, summary.count > 1 ? summary.sampleStandardDeviation : nil)
    }

    struct PairKey: Hashable {
        var domain: Int
        var seed: Int
    }

    /// Paired differences (run − baseline) over the (held-out domain, seed) pairs both have.
    static func pairedTable(selected: [String: [PairKey: (Double, Double)]], baseline: [PairKey: (Double, Double)],
                            baseLabel: String, labels: [String], noise: [String: Double],
                            kernelNoise: Double = 0) -> String {
        func stats(_ xs: [Double]) -> String {
            guard !xs.isEmpty else { return "—" }
            let (m, sd) = meanAndSampleStd(xs)
            let shown = abs(m) < 0.0005 ? 0 : m * 100   // no "-0.0" from rounding noise
            guard let sd else { return String(format: "%+.1f", shown) }
            return String(format: "%+.1f ± %.1f", shown, sd / Double(xs.count).squareRoot() * 100)
        }
        var rows: [[String]] = []
        for label in labels where label != baseLabel {
            guard let runs = selected[label] else { continue }
            var dv: [Double] = [], dt: [Double] = []
            // In a fixed order, so the sums (and the printed digits) never depend on hashing.
            for (key, value) in runs.sorted(by: { ($0.key.domain, $0.key.seed) < ($1.key.domain, $1.key.seed) }) {
                guard let b = baseline[key] else { continue }
                dv.append(value.0 - b.0)
                dt.append(value.1 - b.1)
            }
            let pairNoise = [noise[label], noise[baseLabel]].compactMap { $0 }.max()
            rows.append([label, stats(dv), stats(dt), String(dt.count),
                         verdict(dt, noise: pairNoise, kernelNoise: kernelNoise).rawValue])
        }
        return "paired against \(baseLabel) (same held-out domain and seed; mean ± standard error, points; "
            + "kernel noise \(String(format: "%.1f", kernelNoise * 100)))\n"
            + Render.table(["run", "Δ Val", "Δ Test", "pairs", "OOD verdict"], rows)
    }

    /// A run of a study, told apart from the others in one folder: its label, held-out domain and seed.
    struct RunKey: Hashable, Comparable {
        var label: String
        var domain: Int
        var seed: Int
        static func < (a: RunKey, b: RunKey) -> Bool { (a.label, a.domain, a.seed) < (b.label, b.domain, b.seed) }
    }

    /// Each run's selected (Val, Test) accuracy, as `summary` selects them.
    static func selectedAccuracies(_ runs: [RunRecords], method: SelectionMethod) -> [RunKey: (Double, Double)] {
        var out: [RunKey: (Double, Double)] = [:]
        for r in runs {
            guard let sel = ModelSelection.select(r.records, method: method) else { continue }
            for d in r.testDomains {
                out[RunKey(label: r.label, domain: d, seed: r.seed)] = (sel.validationAccuracy, sel.testAccuracyByDomain[d] ?? sel.testAccuracy)
            }
        }
        return out
    }

    /// How far the same runs move between folders (one folder per kernel or backend), in fractions.
    struct Spread: Equatable {
        struct Pair: Equatable {
            var first: Int, second: Int   // folder indices
            var runs: Int
            var meanValidation: Double, meanTest: Double, maxTest: Double
        }
        var pairs: [Pair]
        /// Over every (run, pair of folders) difference: the kernel noise these folders measure.
        var all: Pair
    }

    /// Mean |Δ Val|, mean and largest |Δ Test| for every pair of columns over the runs both hold, and
    /// the same over all pairs together (every difference counted once; NaN where none).
    static func spread(_ columns: [[RunKey: (Double, Double)]]) -> Spread {
        var pairs: [Spread.Pair] = []
        var allValidation: [Double] = [], allTest: [Double] = []
        for i in columns.indices {
            for j in columns.indices where j > i {
                var dv: [Double] = [], dt: [Double] = []
                // In a fixed order, so the sums never depend on hashing.
                for key in columns[i].keys.sorted() {
                    guard let a = columns[i][key], let b = columns[j][key] else { continue }
                    dv.append(abs(a.0 - b.0))
                    dt.append(abs(a.1 - b.1))
                }
                pairs.append(spreadPair(i, j, dv, dt))
                allValidation += dv
                allTest += dt
            }
        }
        return Spread(pairs: pairs, all: spreadPair(-1, -1, allValidation, allTest))
    }

    private static func spreadPair(_ i: Int, _ j: Int, _ dv: [Double], _ dt: [Double]) -> Spread.Pair {
        func mean(_ xs: [Double]) -> Double { xs.isEmpty ? .nan : xs.reduce(0, +) / Double(xs.count) }
        return Spread.Pair(first: i, second: j, runs: dt.count, meanValidation: mean(dv), meanTest: mean(dt),
                           maxTest: dt.max() ?? .nan)
    }

    /// `summary … across=`: each run's selected Val / Test per folder, then the spread per pair of folders.
    static func spreadTable(folders: [String], columns: [[RunKey: (Double, Double)]]) -> String {
        let keys = Set(columns.flatMap(\.keys)).sorted()
        let runRows = keys.map { key in
            ["\(key.label) (env\(key.domain), seed \(key.seed))"] + columns.map { column in
                column[key].map { String(format: "%.1f / %.1f", $0.0 * 100, $0.1 * 100) } ?? "—"
            }
        }
        let s = spread(columns)
        func row(_ name: String, _ p: Spread.Pair) -> [String] {
            [name, String(p.runs), Render.percent(p.meanValidation), Render.percent(p.meanTest), Render.percent(p.maxTest)]
        }
        let pairRows = s.pairs.map { row("\(folders[$0.first]) – \(folders[$0.second])", $0) } + [row("all pairs", s.all)]
        return "the same runs across folders (selected Val / Test, points)\n"
            + Render.table(["run"] + folders, runRows)
            + "\n\nspread between folders (points)\n"
            + Render.table(["folders", "runs", "mean |Δ Val|", "mean |Δ Test|", "max |Δ Test|"], pairRows)
            + (s.all.runs == 0 ? "\n\nno run (label, held-out domain, seed) is in two of the folders: nothing to compare"
                : String(format: "\n\nkernel noise these folders measure (mean |Δ Test| over all pairs): %.1f points (kernel_noise=)",
                         s.all.meanTest * 100))
    }

    public enum Verdict: String {
        case ahead, behind, tie
        case unknown = "—"
    }

    /// The quickstart's selected OOD accuracy moved by this many points on average between any two of
    /// its four measured columns (OpenBLAS's Haswell, Prescott and Cooperlake kernels, and the oneDNN
    /// backend; same machine, seed and 2 threads): the mean |difference| over all 6 pairs of columns ×
    /// 5 runs, as `summary docs/results/quickstart across=[…]` prints it from the committed records
    /// (docs/data.md "Kernel noise"; KernelNoiseTests checks this value against them). `summary …
    /// versus=` calls a paired difference within it (over √pairs) a tie; `kernel_noise=` overrides it.
    public static let kernelNoisePoints = 4.6

    /// The study's rule for a paired difference: a tie unless |mean| exceeds the half-width of its
    /// two-sided 95% t-interval (t(0.975, pairs − 1) standard errors: 12.7 with 2 pairs, 2.36 with 8,
    /// 2.20 with 12), the selection noise (the larger of the two runs') and `kernelNoise` / √pairs
    /// (`kernelNoise`: how far a single pair's difference moves across BLAS kernels, same units as the
    /// differences; the runs of different pairs are perturbed independently, so the mean's share
    /// shrinks with √pairs). With one pair there is no standard error, and with none of the three
    /// there is nothing to judge by.
    public static func verdict(_ differences: [Double], noise: Double?, kernelNoise: Double = 0) -> Verdict {
        guard !differences.isEmpty else { return .unknown }
        let (m, sd) = meanAndSampleStd(differences)
        let halfWidth = sd.map { studentT975(degreesOfFreedom: differences.count - 1) * $0 / Double(differences.count).squareRoot() }
        guard halfWidth != nil || noise != nil || kernelNoise > 0 else { return .unknown }
        let threshold = max(halfWidth ?? 0, noise ?? 0, kernelNoise / Double(differences.count).squareRoot())
        // Rounding guard: a difference equal to the threshold (e.g. both zero) is a tie.
        if abs(m) <= threshold + 1e-12 { return .tie }
        return m > 0 ? .ahead : .behind
    }

    /// The 0.975 quantile of Student's t with `df` degrees of freedom (tabulated to 30; beyond, the
    /// approximation 1.96 + 2.4 / df, within 0.003 of the exact value).
    public static func studentT975(degreesOfFreedom df: Int) -> Double {
        let table: [Double] = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                               2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                               2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]
        precondition(df >= 1, "Student's t needs at least one degree of freedom")
        return df <= table.count ? table[df - 1] : 1.96 + 2.4 / Double(df)
    }
}
