// Per-scale-factor maps over training: gradient disorder (FQAT paper Fig. 3) and the frozen set with the
// count of frozen factors (Fig. 4). Rows are scale factors (names as y tics, first factor on top), columns
// are evaluation windows or steps. Cells are drawn as filled boxes (`boxxyerror` + palette), so uneven
// step spacing is drawn truthfully and SVG output stays vector.
import Foundation

/// Rows x columns of values with names for the rows and a step for each column.
struct FactorMatrix {
    var factors: [String]
    var steps: [Double]
    /// values[row][column]
    var values: [[Double]]
    var valueHeader: String

    init(factors: [String], steps: [Double], values: [[Double]], valueHeader: String, span: Span, kind: String) {
        precondition(values.count == factors.count, "\(kind): \(values.count) rows of values for \(factors.count) factors")
        for (row, line) in values.enumerated() {
            precondition(line.count == steps.count,
                         "\(kind): row \(row) (\(factors[row])) has \(line.count) values for \(steps.count) steps")
        }
        self.factors = factors; self.steps = steps; self.values = values; self.valueHeader = valueHeader
        self.span = span
    }

    /// Which stretch of steps a column stands for.
    enum Span {
        /// The window that ends at the step (disorder over the previous K steps).
        case preceding
        /// From the step to the next one (a frozen set decided at the step holds until the next decision).
        case following
    }
    var span: Span

    /// Cell edges along x. The outer cell is as wide as its neighbour; a single column is one unit wide.
    var edges: [(low: Double, high: Double)] {
        let n = steps.count
        guard n > 1 else { return steps.map { span == .preceding ? ($0 - 1, $0) : ($0, $0 + 1) } }
        return (0..<n).map { i in
            switch span {
            case .preceding:
                return (i == 0 ? steps[0] - (steps[1] - steps[0]) : steps[i - 1], steps[i])
            case .following:
                return (steps[i], i == n - 1 ? steps[n - 1] + (steps[n - 1] - steps[n - 2]) : steps[i + 1])
            }
        }
    }

    /// CSV `step,step_low,step_high,row,<value>,factor`, factor by factor.
    var table: DataTable {
        let edges = self.edges
        // Table (factors*steps) x 6.
        var rows: [[String]] = []
        for (row, name) in factors.enumerated() {
            for (column, step) in steps.enumerated() {
                rows.append([plotNumber(step), plotNumber(edges[column].low), plotNumber(edges[column].high),
                             String(row), plotNumber(values[row][column]), name])
            }
        }
        return DataTable(header: ["step", "step_low", "step_high", "row", valueHeader, "factor"], rows: rows)
    }

    /// `set ytics (...)` naming the rows; at most `maxLabels` names (every k-th beyond that) so they stay legible.
    func yTicsCommands(maxLabels: Int = 40) -> [String] {
        guard !factors.isEmpty else { return [] }
        let every = max(1, (factors.count + maxLabels - 1) / maxLabels)
        let tics = stride(from: 0, to: factors.count, by: every)
            .map { "\(gnuplotString(factors[$0])) \($0)" }.joined(separator: ", ")
        var commands = ["set ytics (\(tics)) nomirror"]
        if factors.count > 16 { commands.append("set ytics font \",8\"") }
        return commands
    }

    var xRange: ClosedRange<Double> {
        let edges = self.edges
        guard let first = edges.first, let last = edges.last else { return 0...1 }
        return first.low...last.high
    }

    /// Left margin (characters) for the longest row name (capped) and the y label, so stacked panels align.
    var leftMargin: Int { min(max(factors.map(\.count).max() ?? 4, 4), 32) + 6 }

    func boxCommands(title: String, xLabel: String) -> [String] {
        var commands = ["set title \(gnuplotString(title))",
                        "set xlabel \(gnuplotString(xLabel))",
                        "set ylabel \"scale factor\"",
                        "set xrange [\(plotNumber(xRange.lowerBound)):\(plotNumber(xRange.upperBound))]",
                        "set yrange [\(plotNumber(Double(factors.count) - 0.5)):-0.5]",
                        "set tics out",
                        "set xtics nomirror",
                        "unset key"]
        commands += yTicsCommands()
        return commands
    }

    /// The boxes: x, row, x_low, x_high, row−0.5, row+0.5, colour value.
    static let boxPlot = "plot \(Panel.data(0)) using 1:4:2:3:($4-0.5):($4+0.5):5 with boxxyerror fs solid 1.0 noborder lc palette notitle"

    func terminalHeatmap(title: String, xLabel: String, zRange: ClosedRange<Double>, zLabel: String,
                         palette: Palette) -> TerminalHeatmap {
        TerminalHeatmap(title: title, rows: values, rowLabels: factors, rowAxis: .categorical,
                        xFirst: steps.first.map(axisLabel) ?? "", xLast: steps.last.map(axisLabel) ?? "",
                        xLabel: xLabel, yLabel: "scale factor", zRange: zRange, zLabel: zLabel, palette: palette)
    }
}

/// Gradient disorder of each scale factor per window, colour in [0, 1] (FQAT paper Fig. 3;
/// docs/fqat.md, Gradient disorder). An optional threshold τ is marked on the colour bar.
public struct DisorderHeatmapPlot: PlotSpec {
    public var title: String
    public var factors: [String]
    /// The step at the end of each window (one per column).
    public var steps: [Double]
    /// disorder[factor][window] in [0, 1]; NaN for "not enough history".
    public var disorder: [[Double]]
    public var threshold: Double?
    public var xLabel: String
    public var colorLabel: String

    public init(title: String, factors: [String], steps: [Double], disorder: [[Double]], threshold: Double? = nil,
                xLabel: String = "training step", colorLabel: String = "disorder") {
        _ = FactorMatrix(factors: factors, steps: steps, values: disorder, valueHeader: "disorder", span: .preceding, kind: "DisorderHeatmapPlot")
        self.title = title; self.factors = factors; self.steps = steps; self.disorder = disorder
        self.threshold = threshold; self.xLabel = xLabel; self.colorLabel = colorLabel
    }

    var matrix: FactorMatrix {
        FactorMatrix(factors: factors, steps: steps, values: disorder, valueHeader: "disorder", span: .preceding, kind: "DisorderHeatmapPlot")
    }

    public var suggestedSize: PixelSize {
        PixelSize(width: 900, height: min(max(360, 140 + 16 * factors.count), 2000))
    }

    public func panels() -> [Panel] {
        let matrix = self.matrix
        var commands = matrix.boxCommands(title: title, xLabel: xLabel)
        // gnuplot sizes the right margin from the regular colour-bar tics drawn inward: a wider added
        // tic label ("τ = 0.5") or outward tics pushed the bar's title off the canvas. So the tics
        // point in, τ is a one-letter tic, and its value goes into the title.
        let label = threshold.map { "\(colorLabel) (τ = \(axisLabel($0)))" } ?? colorLabel
        commands += [Palette.viridis.gnuplotCommand,
                     "set cbrange [0:1]",
                     "set cbtics in",
                     "set cblabel \(gnuplotString(label)) offset 1,0"]
        if let threshold {
            commands.append("set cbtics add ('τ' \(plotNumber(threshold)))")
        }
        commands.append(FactorMatrix.boxPlot)
        let view = matrix.terminalHeatmap(title: title, xLabel: xLabel, zRange: 0...1, zLabel: colorLabel,
                                          palette: .viridis)
        return [Panel(commands: commands, tables: [matrix.table], terminalHeatmap: view)]
    }
}

/// Which scale factors have g_QAT frozen at each decision step (binary map, FQAT paper Fig. 4), and,
/// when `showCount` is set, the number of frozen factors over time in a second panel underneath with
/// the same x range and margins.
public struct FrozenSetPlot: PlotSpec {
    public var title: String
    public var factors: [String]
    /// The step at which each frozen set was decided (it holds until the next one).
    public var steps: [Double]
    /// frozen[factor][decision]
    public var frozen: [[Bool]]
    public var showCount: Bool
    public var xLabel: String

    public init(title: String, factors: [String], steps: [Double], frozen: [[Bool]], showCount: Bool = true,
                xLabel: String = "training step") {
        _ = FactorMatrix(factors: factors, steps: steps, values: frozen.map { $0.map { $0 ? 1 : 0 } },
                         valueHeader: "frozen", span: .following, kind: "FrozenSetPlot")
        self.title = title; self.factors = factors; self.steps = steps; self.frozen = frozen
        self.showCount = showCount; self.xLabel = xLabel
    }

    var matrix: FactorMatrix {
        FactorMatrix(factors: factors, steps: steps, values: frozen.map { $0.map { $0 ? 1 : 0 } },
                     valueHeader: "frozen", span: .following, kind: "FrozenSetPlot")
    }

    /// Frozen factors per decision step.
    public var counts: [Double] {
        steps.indices.map { column in Double(frozen.reduce(0) { $0 + ($1[column] ? 1 : 0) }) }
    }

    public var layout: (rows: Int, columns: Int) { showCount ? (2, 1) : (1, 1) }

    public var suggestedSize: PixelSize {
        let mapHeight = min(max(320, 140 + 16 * factors.count), 1600)
        return PixelSize(width: 900, height: showCount ? mapHeight + 320 : mapHeight)
    }

    /// The count over time as its own line plot (steps: the set holds until the next decision).
    /// Each count is drawn from its decision step to the next (to the end of the last cell).
    public var countPlot: LinePlot {
        let range = matrix.xRange
        let counts = self.counts
        let x = steps.isEmpty ? [] : steps + [range.upperBound]
        let y = counts.isEmpty ? [] : counts + [counts[counts.count - 1]]
        return LinePlot(title: "number of frozen scale factors", xLabel: xLabel, yLabel: "frozen factors",
                        series: [LineSeries(name: "frozen", x: x, y: y, style: .steps, color: Palette.frozen.stops[1].color)],
                        xRange: range, yRange: 0...Double(max(factors.count, 1)), key: .off)
    }

    public func panels() -> [Panel] {
        let matrix = self.matrix
        // Same left margin (characters) and right edge (screen fraction, the colour bar sits beyond it) in
        // both panels, so the count lines up under the map.
        let margins = ["set lmargin \(matrix.leftMargin)", "set rmargin at screen 0.84"]
        let mapTitle = showCount ? "frozen set (g_QAT frozen)" : title
        var commands = matrix.boxCommands(title: mapTitle, xLabel: xLabel)
        commands += margins
        commands += [Palette.frozen.gnuplotCommand,
                     "set palette maxcolors 2",
                     "set cbrange [0:1]",
                     "set cbtics (\"active\" 0.25, \"frozen\" 0.75) scale 0",
                     FactorMatrix.boxPlot]
        let view = matrix.terminalHeatmap(title: mapTitle, xLabel: xLabel, zRange: 0...1, zLabel: "frozen", palette: .frozen)
        var panels = [Panel(commands: commands, tables: [matrix.table], terminalHeatmap: view)]
        if showCount {
            var count = countPlot.panel()
            count.commands.insert(contentsOf: margins, at: 0)
            panels.append(count)
        }
        return panels
    }
}
