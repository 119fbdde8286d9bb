// `plot`: the paper's figures from the current run (training curves, g_QAT against g_flat, disorder
// heatmap, frozen set) and from the session's results (accuracy against bit width), through gnuplot.
import Datasets
import Foundation
import Optim
import Plot
import Quant
import ShellLanguage
import Training

extension ShellCommands {
    /// Draws a spec where the `plot` setting says: a PNG/SVG under <out>/plots (and, in a terminal with
    /// plot=auto, a view in the terminal too). A missing gnuplot is a warning: the CSV is still written.
    static func draw(_ spec: any PlotSpec, name: String, _ inv: Invocation, _ s: Session, format: PlotSetting? = nil) throws -> Value {
        let dir = (s.settings.out as NSString).appendingPathComponent("plots")
        let safeName = fileNameSafe(name)
        if safeName != name {
            inv.warn("note: plot name '\(name)' is not a plain file name; writing '\(safeName)' under \(dir) instead")
        }
        let stem = (dir as NSString).appendingPathComponent(safeName)
        let mode = format ?? s.settings.plot
        let interactive = isatty(1) != 0 && ProcessInfo.processInfo.environment["CI"] == nil
        var targets: [PlotTarget] = []
        switch mode {
        case .none: targets = []
        case .svg: targets = [.svg(path: stem + ".svg")]
        case .text: targets = [textTarget()]
        case .sixel: targets = [.sixel()]
        case .png: targets = [.png(path: stem + ".png")]
        case .auto: targets = [.png(path: stem + ".png")] + (interactive ? [textTarget()] : [])
        }
        if targets.isEmpty {
            let script = spec.script(target: .png(path: stem + ".png"), dataStem: stem)
            try s.plotter.write(dataFiles: script.dataFiles)
            inv.print("wrote \(script.dataFiles.map(\.path).joined(separator: ", ")) (plot=none)")
            return .string(stem + ".csv")
        }
        var written: String?
        for target in targets {
            do {
                let result = try s.plotter.render(spec, to: target, dataStem: stem)
                if !result.terminalOutput.isEmpty { inv.output.write(result.terminalOutput + (result.terminalOutput.hasSuffix("\n") ? "" : "\n"), to: .standard) }
                if !result.messages.isEmpty { inv.warn("gnuplot: \(result.messages)") }
                if let p = result.outputPath {
                    written = p
                    inv.print("plot: \(p)  (data: \(result.dataFiles.joined(separator: ", ")))")
                }
            } catch let e as PlotError {
                if case .gnuplotMissing = e { inv.warn("warning: \(e)"); return .string(stem + ".csv") }
                throw CommandError("\(e)")
            }
        }
        s.lastFigure = written
        return written.map { .string($0) } ?? .none
    }

    static func textTarget() -> PlotTarget {
        let size = TerminalSize.current()
        return .text(columns: max(60, min(size.columns, 160)), lines: max(16, min(size.lines - 4, 32)), color: TerminalColorMode.current())
    }

    struct PlotArguments: CommandArguments {
        enum Figure: String, ChoiceArgument { case curves, gradients, disorder, frozen, bits, sensitivity }
        enum Metric: String, ChoiceArgument { case ood, id, frozen }
        @Positional(help: "figure") var kind: Figure
        @Option(.pattern, help: "scale factors (glob) for gradients/disorder/frozen", completion: .dynamic("scales")) var factors = "*"
        @Option(.int(min: 1), help: "at most this many factors in the gradients figure") var top = 6
        @Option(help: "file name stem (default: <run>-<kind>)") var name: String?
        @Option(help: "override the plot setting") var format: PlotSetting?
        @Option(help: "figure title") var title: String?
        @Option(.path, help: "bits and sensitivity: a folder of study records (as `summary` reads); bits without it uses this session's results") var from: String?
        @Option(help: "sensitivity: the hyperparameter on the x axis (a key of the records' hparams, e.g. tau)") var x: String?
        @Option(help: "sensitivity: one line per value of this hyperparameter (e.g. K)") var by: String?
        @Option(.pattern, help: "sensitivity: only runs whose label matches this glob") var runs = "*"
        @Option(help: "sensitivity: what the y axis shows") var metric = Metric.ood
    }

    static func plotCommand(_ s: Session) -> CommandSpec {
        CommandSpec(
            name: "plot", summary: "draw a figure: training curves, gradients (Fig. 2), disorder (Fig. 3), frozen set (Fig. 4), bits",
            discussion: """
              curves     training loss and I.D / OOD accuracy of the current run against steps
              gradients  g_QAT against g_flat over steps for the scale factors matching `factors` (paper Fig. 2),
                         with the applied gradient (Fig. 4)
              disorder   disorder of every scale factor per window, as a heatmap, τ marked (Fig. 3)
              frozen     which scale factors had g_QAT frozen at each step, and how many (Fig. 4)
              bits       selected OOD accuracy against bit width for each method in `results`, or, with
                         `from=<folder>`, in the study records under the folder (labels like lsq+sagm-4bit; mean
                         over held-out domains per seed, then mean ± std over seeds; FP line: fp-control)
              sensitivity  from the study records under `from=<folder>`: the selected OOD accuracy (`metric=id`:
                         I.D; `metric=frozen`: scale factors with g_QAT frozen at the end) against the hyperparameter
                         `x=` (a key of the records' hparams: tau, K, rho, alpha, lr, scale_lr …), one line per value
                         of `by=`; mean over held-out domains per seed, then mean ± std over seeds (paper Fig. 6).
                         Runs whose label matches `runs=` count; ERM runs (the FP model and control) never do
            Files go to <out>/plots/<name>.png with the numbers beside them as CSV; `format=` overrides the
            `plot` setting (png, svg, text for a terminal view, sixel, none for data only).
            """,
            group: "plots",
            arguments: PlotArguments.self,
            examples: ["plot curves", "plot gradients factors=layer3.*.a.s top=4", "plot disorder format=text",
                       "plot bits from=runs/table1/style-fmnist", "plot sensitivity from=runs/fig6 x=tau by=K"],
            run: { args, inv in
                let kind = args.kind
                let format = args.format
                if args.from != nil && kind != .bits && kind != .sensitivity {
                    throw inv.error("from= applies to `plot bits` and `plot sensitivity`; the other figures are drawn from the current run", argument: args.$from)
                }
                for (given, key) in [(args.x, args.$x), (args.by, args.$by)] where given != nil && kind != .sensitivity {
                    throw inv.error("\(key)= applies to `plot sensitivity` only", argument: key)
                }
                let title = args.title
                if kind == .sensitivity {
                    guard let from = args.from else { throw inv.error("`plot sensitivity` reads study records: give from=<folder> (e.g. from=runs/fig6)") }
                    guard let x = args.x else { throw inv.error("`plot sensitivity` needs x=<hyperparameter> (e.g. x=tau)") }
                    let metric = args.metric
                    let spec = try sensitivityPlot(records: readRecords(under: from), x: x, by: args.by, runs: try NamePattern(args.runs),
                                                   metric: metric, title: title)
                    let name = args.name
                        ?? "sensitivity-\(x)" + (args.by.map { "-by-\($0)" } ?? "") + (metric == .ood ? "" : "-\(metric.rawValue)")
                    return try draw(spec, name: name, inv, s, format: format)
                }
                if kind == .bits {
                    let spec = try args.from.map { try bitsPlot(records: readRecords(under: $0), title: title) } ?? bitsPlot(s, title: title)
                    return try draw(spec, name: args.name ?? "accuracy-vs-bits", inv, s, format: format)
                }
                guard let run = s.run else { throw inv.error("no run yet; `train …` first (plots are drawn from the current run)") }
                let label = s.runLabel ?? run.method.rawValue
                let name = args.name ?? "\(label)-\(kind.rawValue)"
                let pattern = try NamePattern(args.factors)
                switch kind {
                case .curves:
                    let lossSeries = run.stepper.trace?.loss()
                    let loss = (steps: lossSeries?.steps ?? [], values: lossSeries?.values ?? [])
                    let recs = run.records
                    let steps = recs.map { Double($0.step) }
                    let spec = TrainingCurvesPlot(
                        title: title ?? "\(label): loss and accuracy (\(run.dataset.name))",
                        steps: loss.steps, loss: loss.values.map(Double.init),
                        accuracies: [AccuracyCurve(name: "I.D (train-domain val)", steps: steps, accuracy: recs.map { $0.validationAccuracy * 100 }, outOfDistribution: false),
                                     AccuracyCurve(name: "OOD (held-out)", steps: steps, accuracy: recs.map { $0.testAccuracy * 100 }, outOfDistribution: true)])
                    return try draw(spec, name: name, inv, s, format: format)
                case .gradients:
                    let trace = try requireTrace(run)
                    let factors = run.scales.map(\.name).filter(pattern.matches).prefix(args.top)
                    guard !factors.isEmpty else { throw inv.error("no scale factor matches '\(args.factors)'", argument: args.$factors) }
                    var traces: [Plot.GradientTrace] = []
                    for f in factors {
                        let q = try trace.series(.qatMean, factor: f), fl = try trace.series(.flatMean, factor: f), a = try trace.series(.appliedMean, factor: f)
                        traces.append(Plot.GradientTrace(factor: f, steps: q.steps, qat: q.values.map(Double.init), flat: fl.values.map(Double.init),
                                                         applied: a.values.map(Double.init)))
                    }
                    let spec = GradientComparisonPlot(title: title ?? "\(label): g_QAT and g_flat of scale factors", traces: traces)
                    return try draw(spec, name: name, inv, s, format: format)
                case .disorder:
                    let trace = try requireTrace(run)
                    let h = trace.disorderHeatmap()
                    let keep = h.factors.indices.filter { pattern.matches(h.factors[$0]) }
                    guard !h.windowEndSteps.isEmpty else { throw inv.error("no disorder window has completed yet (K = \(run.hyperparameters.window) steps)") }
                    let spec = DisorderHeatmapPlot(title: title ?? "\(label): gradient disorder of g_QAT per window",
                                                   factors: keep.map { h.factors[$0] }, steps: h.windowEndSteps,
                                                   disorder: keep.map { h.values[$0].map(Double.init) },
                                                   threshold: run.method.freezePolicy.usesDisorderTest ? Double(run.hyperparameters.tau) : nil)
                    return try draw(spec, name: name, inv, s, format: format)
                case .frozen, .bits, .sensitivity: // frozen (bits and sensitivity returned above)
                    let trace = try requireTrace(run)
                    let names = run.scales.map(\.name).filter(pattern.matches)
                    var steps: [Double] = []
                    var frozen: [[Bool]] = []
                    for f in names {
                        let series = try trace.series(.frozen, factor: f)
                        steps = series.steps
                        frozen.append(series.values.map { $0 >= 0.5 })
                    }
                    let spec = FrozenSetPlot(title: title ?? "\(label): scale factors with g_QAT frozen",
                                             factors: names, steps: steps, frozen: frozen)
                    return try draw(spec, name: name, inv, s, format: format)
                }
            })
    }

    static func requireTrace(_ run: Run) throws -> Optim.GradientTrace {
        guard run.method.isQuantized, let t = run.stepper.trace else {
            throw CommandError("the current run (\(run.method.rawValue)) has no scale factors to trace; train a quantized method first")
        }
        return t
    }

    static func bitsPlot(_ s: Session, title: String?) throws -> BitWidthPlot {
        var byMethod: [String: [Int: [Double]]] = [:]
        var fp: [Double] = []
        for r in s.results {
            if r.bits == "FP" { fp.append(r.test * 100); continue }
            guard let b = Int(r.bits.dropFirst().prefix { $0.isNumber }) else { continue }
            byMethod[r.method, default: [:]][b, default: []].append(r.test * 100)
        }
        guard !byMethod.isEmpty else { throw CommandError("no quantized results yet; `train qat|qat+sagm|fqat …` at some bit widths first") }
        let methods = byMethod.keys.sorted().map { m in
            MethodResults(method: m, results: byMethod[m]!.keys.sorted().map { b in
                let (mean, sd) = meanAndSampleStd(byMethod[m]![b]!)
                return BitWidthResult(bits: b, mean: mean, std: sd)
            })
        }
        return BitWidthPlot(title: title ?? "OOD accuracy against bit width", methods: methods,
                            fullPrecision: fp.isEmpty ? nil : fp.reduce(0, +) / Double(fp.count))
    }

    /// Accuracy against bit width from study records: runs labelled `<method>-<b>bit` are selected by
    /// train-domain validation, averaged over held-out domains for each seed, then over seeds (mean ±
    /// sample std). The full-precision line is `fp-control` (the fair control), else `fp-erm`.
    static func bitsPlot(records runs: [RunRecords], title: String?) throws -> BitWidthPlot {
        // [method: [bits: [seed: [test accuracy per held-out domain]]]]
        var table: [String: [Int: [Int: [Double]]]] = [:]
        var fp: [String: [Int: [Double]]] = [:]
        for r in runs {
            guard let sel = ModelSelection.select(r.records, method: .trainingDomainValidation) else { continue }
            let accuracy = sel.testAccuracy * 100
            if r.label == "fp-control" || r.label == "fp-erm" {
                fp[r.label, default: [:]][r.seed, default: []].append(accuracy)
                continue
            }
            guard let match = r.label.range(of: #"-[2-8]bit$"#, options: .regularExpression),
                  let bits = Int(r.label[match].dropFirst().prefix(1)) else { continue }
            let method = String(r.label[..<match.lowerBound])
            table[method, default: [:]][bits, default: [:]][r.seed, default: []].append(accuracy)
        }
        guard !table.isEmpty else {
            throw CommandError("no quantized runs labelled <method>-<bits>bit (e.g. lsq+sagm-4bit) in those records")
        }
        func mean(_ v: [Double]) -> Double { meanAndSampleStd(v).mean }
        let methods = table.keys.sorted().map { m in
            MethodResults(method: m, results: table[m]!.keys.sorted().map { b in
                let perSeed = table[m]![b]!.sorted { $0.key < $1.key }.map { mean($0.value) }
                let (mu, sd) = meanAndSampleStd(perSeed)
                return BitWidthResult(bits: b, mean: mu, std: sd)
            })
        }
        let reference = fp["fp-control"] ?? fp["fp-erm"]
        return BitWidthPlot(title: title ?? "OOD accuracy against bit width (mean over held-out domains; ± std over seeds)",
                            methods: methods, fullPrecision: reference.map { mean($0.values.map(mean)) })
    }

    /// The selected accuracy (or the final frozen count) against one hyperparameter, one line per value
    /// of another, from study records: per seed the mean over held-out domains, then mean ± sample std
    /// over seeds. Values are read from each record's `hparams`, so labels do not matter.
    static func sensitivityPlot(records runs: [RunRecords], x: String, by: String?, runs pattern: NamePattern,
                                metric: PlotArguments.Metric, title: String?) throws -> LinePlot {
        // Single-precision settings (τ) are stored as 0.30000001192…: 6 significant digits name the setting.
        func hparam(_ r: RunRecords, _ key: String) -> Double? {
            r.records.first?.hparams[key]?.number.flatMap { Double(String(format: "%.6g", $0)) }
        }
        // [line value: [x value: [seed: [value per held-out domain]]]]
        var table: [Double?: [Double: [Int: [Double]]]] = [:]
        var keys = Set<String>()
        for r in runs where pattern.matches(r.label) {
            // The training method: args.method (args.algorithm in records written before it held the label).
            guard let first = r.records.first, (first.args["method"] ?? first.args["algorithm"]).map({ $0 == .string("erm") }) != true else { continue }
            keys.formUnion(first.hparams.keys)
            guard let xv = hparam(r, x) else { continue }
            var line: Double?
            if let by {
                guard let v = hparam(r, by) else { continue }
                line = v
            }
            let value: Double
            switch metric {
            case .frozen:
                guard let f = r.records.last?.metrics["frozen_scales"] else { continue }
                value = f
            case .id, .ood:
                guard let sel = ModelSelection.select(r.records, method: .trainingDomainValidation) else { continue }
                value = (metric == .id ? sel.validationAccuracy : sel.testAccuracy) * 100
            }
            table[line, default: [:]][xv, default: [:]][r.seed, default: []].append(value)
        }
        guard !table.isEmpty else {
            let known = keys.sorted().joined(separator: ", ")
            if keys.isEmpty { throw CommandError("no non-ERM runs matching '\(pattern.text)' in those records") }
            if !keys.contains(x) { throw CommandError("the records have no hyperparameter '\(x)'; they have: \(known)") }
            if let by, !keys.contains(by) { throw CommandError("the records have no hyperparameter '\(by)'; they have: \(known)") }
            throw CommandError("no run in those records has a '\(metric == .frozen ? "frozen_scales" : x)' value to plot (records written before fqat-shell stored frozen counts have none)")
        }
        func mean(_ v: [Double]) -> Double { meanAndSampleStd(v).mean }
        let lines = table.keys.sorted { ($0 ?? -.infinity) < ($1 ?? -.infinity) }
        let xs = Array(Set(table.values.flatMap(\.keys))).sorted()
        let span = (xs.last ?? 1) - (xs.first ?? 0)
        let pad = span > 0 ? span * 0.08 : 0.5
        var series: [LineSeries] = []
        for (i, line) in lines.enumerated() {
            let points = table[line]!.keys.sorted()
            var ys: [Double] = [], errs: [Double] = []
            for p in points {
                let perSeed = table[line]![p]!.sorted { $0.key < $1.key }.map { mean($0.value) }
                let (mu, sd) = meanAndSampleStd(perSeed)
                ys.append(mu); errs.append(sd ?? 0)
            }
            let offset = (Double(i) - Double(lines.count - 1) / 2) * (span > 0 ? span * 0.01 : 0.02)
            let name = line.map { "\(by!) = \($0 == $0.rounded() && abs($0) < 1e9 ? String(Int($0)) : Value.format($0))" }
                ?? (metric == .frozen ? "frozen" : metric.rawValue.uppercased())
            series.append(LineSeries(name: name,
                                     x: points, y: ys, yError: errs, style: .linesPoints,
                                     color: seriesColors[i % seriesColors.count], xOffset: offset))
        }
        let (yLabel, what): (String, String)
        switch metric {
        case .ood: (yLabel, what) = ("OOD accuracy (%)", "OOD accuracy")
        case .id: (yLabel, what) = ("I.D accuracy (%)", "I.D accuracy")
        case .frozen: (yLabel, what) = ("scale factors with g_QAT frozen at the end", "frozen scale factors")
        }
        return LinePlot(title: title ?? "\(what) against \(x)" + (by.map { " for each \($0)" } ?? "") + " (mean over held-out domains; ± std over seeds)",
                        xLabel: x, yLabel: yLabel, series: series, xRange: ((xs.first ?? 0) - pad)...((xs.last ?? 1) + pad),
                        key: .below)
    }
}
