// Line plots with several named series: the general kind, and the 1-D loss landscape built on it
// (Li et al. 2018 `plot_1D.py`: loss on the left axis, accuracy on the right; docs/landscape.md).
import Foundation

/// One named curve of a `LinePlot`.
public struct LineSeries: Equatable, Sendable {
    public enum Axis: Equatable, Sendable { case left, right }
    /// `steps` holds each value until the next x (for quantities decided at a step and kept, such as
    /// the number of frozen factors).
    public enum Style: Equatable, Sendable { case lines, linesPoints, points, steps }

    public var name: String
    public var x: [Double]
    public var y: [Double]
    /// Half-widths of error bars (mean ± std); drawn with `yerrorlines`/`yerrorbars` when present.
    public var yError: [Double]?
    public var axis: Axis
    public var style: Style
    /// Nil picks the next colour of `seriesColors`.
    public var color: RGB?
    public var dashed: Bool
    /// Added to x when drawing (not in the CSV): dodges error bars of grouped series apart.
    public var xOffset: Double
    public var lineWidth: Double

    public init(name: String, x: [Double], y: [Double], yError: [Double]? = nil, axis: Axis = .left,
                style: Style = .lines, color: RGB? = nil, dashed: Bool = false, xOffset: Double = 0,
                lineWidth: Double = 2) {
        precondition(x.count == y.count, "LineSeries \(name): x has \(x.count) values, y has \(y.count)")
        if let yError { precondition(yError.count == y.count, "LineSeries \(name): yError has \(yError.count) values, y has \(y.count)") }
        self.name = name; self.x = x; self.y = y; self.yError = yError; self.axis = axis
        self.style = style; self.color = color; self.dashed = dashed; self.xOffset = xOffset
        self.lineWidth = lineWidth
    }
}

/// Where the key (legend) goes. The figure kinds use `below` (or `above` in small multiples, so every
/// panel keeps the same plot area): outside the plot area, so a legend never covers data wherever the
/// curves run. The inside positions stay for callers who know where their data is not.
public enum KeyPosition: String, Equatable, Sendable {
    case topRight = "top right", topLeft = "top left", bottomRight = "bottom right", bottomLeft = "bottom left"
    /// `below`: under the x axis label. `height 1` adds one line of space above the entries: without
    /// it gnuplot 5.4 draws the first row of a key below the plot over the x axis label.
    case outside = "outside right top", below = "below center horizontal height 1", off = "off"
    /// In the top margin, under the title, in one row.
    case above = "tmargin center horizontal"
    /// Inside at the right edge, middle height, on an opaque white box: where training curves leave room
    /// (loss has fallen to the bottom, accuracy risen to the top).
    case centerRightBoxed = "right center opaque box lc rgb \"#bbbbbb\""
}

/// Several named (x, y) series in one plot, optionally some on a second y axis (right), optionally log y.
///
/// Data: one CSV in long format `series_index,x,y[,y_error],series`; series k is drawn with
/// `using (x):($1==k ? $3 : NaN)`, so each series is a contiguous block and lines never join two series.
public struct LinePlot: PlotSpec {
    public var title: String
    public var xLabel: String
    public var yLabel: String
    /// Label of the right axis; used when any series is on `.right`.
    public var y2Label: String?
    public var series: [LineSeries]
    public var logY: Bool
    public var xRange: ClosedRange<Double>?
    public var yRange: ClosedRange<Double>?
    public var y2Range: ClosedRange<Double>?
    public var key: KeyPosition
    /// Explicit x tics (label, value), e.g. bit widths; nil lets gnuplot choose.
    public var xTics: [(label: String, value: Double)]?
    /// Vertical dashed lines at these x values (e.g. the step at which freezing starts).
    public var markers: [Double]
    /// Distance between x tics; nil lets gnuplot choose (it crowds small multiplot panels).
    public var xTicStep: Double?

    public init(title: String, xLabel: String, yLabel: String, y2Label: String? = nil, series: [LineSeries],
                logY: Bool = false, xRange: ClosedRange<Double>? = nil, yRange: ClosedRange<Double>? = nil,
                y2Range: ClosedRange<Double>? = nil, key: KeyPosition = .below,
                xTics: [(label: String, value: Double)]? = nil, markers: [Double] = [], xTicStep: Double? = nil) {
        self.title = title; self.xLabel = xLabel; self.yLabel = yLabel; self.y2Label = y2Label
        self.series = series; self.logY = logY; self.xRange = xRange; self.yRange = yRange
        self.y2Range = y2Range; self.key = key; self.xTics = xTics; self.markers = markers; self.xTicStep = xTicStep
    }

    public func panels() -> [Panel] { [panel()] }

    /// The single panel (also used inside small multiples).
    func panel() -> Panel {
        let hasErrors = series.contains { $0.yError != nil }
        let usesRight = series.contains { $0.axis == .right }
        // Table (sum of series lengths) x (series_index, x, y, [y_error], series).
        var rows: [[String]] = []
        for (k, line) in series.enumerated() {
            for i in 0..<line.x.count {
                var row = [String(k), plotNumber(line.x[i]), plotNumber(line.y[i])]
                if hasErrors { row.append(line.yError.map { plotNumber($0[i]) } ?? "NaN") }
                row.append(line.name)
                rows.append(row)
            }
        }
        let header = hasErrors ? ["series_index", "x", "y", "y_error", "series"] : ["series_index", "x", "y", "series"]
        let table = DataTable(header: header, rows: rows)

        var commands = ["set title \(gnuplotString(title))",
                        "set xlabel \(gnuplotString(xLabel))",
                        "set ylabel \(gnuplotString(yLabel))",
                        "set grid lc rgb \"#dddddd\"",
                        key == .off ? "unset key" : "set key \(key.rawValue)"]
        if usesRight {
            commands += ["set y2label \(gnuplotString(y2Label ?? ""))", "set ytics nomirror", "set y2tics"]
        }
        if logY { commands.append("set logscale y") }
        if let xRange { commands.append("set xrange [\(plotNumber(xRange.lowerBound)):\(plotNumber(xRange.upperBound))]") }
        if let yRange { commands.append("set yrange [\(plotNumber(yRange.lowerBound)):\(plotNumber(yRange.upperBound))]") }
        if let y2Range { commands.append("set y2range [\(plotNumber(y2Range.lowerBound)):\(plotNumber(y2Range.upperBound))]") }
        if let xTics {
            let tics = xTics.map { "\(gnuplotString($0.label)) \(plotNumber($0.value))" }.joined(separator: ", ")
            commands.append("set xtics (\(tics))")
        }
        if xTics == nil, let xTicStep { commands.append("set xtics \(plotNumber(xTicStep))") }
        for marker in markers {
            commands.append("set arrow from \(plotNumber(marker)), graph 0 to \(plotNumber(marker)), graph 1 nohead dt 2 lc rgb \"#555555\"")
        }
        var clauses: [String] = []
        for (k, line) in series.enumerated() {
            let x = line.xOffset == 0 ? "2"
                : line.xOffset > 0 ? "($2+\(plotNumber(line.xOffset)))" : "($2-\(plotNumber(-line.xOffset)))"
            let y = "($1==\(k) ? $3 : NaN)"
            let using: String
            let style: String
            if line.yError != nil {
                using = "\(x):\(y):4"
                style = line.style == .points ? "yerrorbars" : "yerrorlines"
            } else {
                using = "\(x):\(y)"
                switch line.style {
                case .lines: style = "lines"
                case .linesPoints: style = "linespoints"
                case .points: style = "points"
                case .steps: style = "steps"
                }
            }
            let color = line.color ?? seriesColors[k % seriesColors.count]
            var clause = "\(k == 0 ? Panel.data(0) : "\"\"") using \(using) with \(style) lw \(plotNumber(line.lineWidth))"
            if line.style == .linesPoints || line.style == .points || line.yError != nil { clause += " pt 7 ps 0.8" }
            clause += " lc rgb \"\(color.hex)\""
            if line.dashed { clause += " dt 2" }
            if line.axis == .right { clause += " axes x1y2" }
            clause += " title \(gnuplotString(line.name))"
            clauses.append(clause)
        }
        if clauses.isEmpty {
            // gnuplot refuses to autoscale a plot with no data ("all points y value undefined"); fixed
            // ranges give an empty frame with the labels, so the figure stays valid.
            if xRange == nil { commands.append("set xrange [0:1]") }
            if yRange == nil { commands.append("set yrange [\(logY ? "0.1:1" : "0:1")]") }
            commands.append("plot NaN notitle")
        } else {
            commands.append("plot " + clauses.joined(separator: ", \\\n     "))
        }
        return Panel(commands: commands, tables: [table])
    }
}

/// A tic spacing of 1, 2 or 5 times a power of ten giving at most `maxTics` intervals over `span`.
public func niceTicStep(span: Double, maxTics: Int) -> Double? {
    guard span > 0, span.isFinite, maxTics > 0 else { return nil }
    let raw = span / Double(maxTics)
    let power = pow(10, floor(log10(raw)))
    for multiple in [1.0, 2, 5, 10] where multiple * power >= raw { return multiple * power }
    return 10 * power
}

// MARK: - 1-D loss landscape

/// One curve of a 1-D landscape: loss (left axis) and, optionally, accuracy in % (right axis).
public struct LandscapeCurve: Equatable, Sendable {
    public var name: String
    public var loss: [Double]
    public var accuracy: [Double]?
    public init(name: String, loss: [Double], accuracy: [Double]? = nil) {
        self.name = name; self.loss = loss; self.accuracy = accuracy
    }
}

/// A 1-D loss landscape along one filter-normalised direction (Li et al. `plot_1D.py`): loss on the left
/// axis from 0 to `lossMax` (log optional), accuracy on the right axis from 0 to 100 %, same colour per
/// curve, accuracy dashed.
public struct Landscape1DPlot: PlotSpec {
    public var title: String
    public var alphas: [Double]
    public var curves: [LandscapeCurve]
    public var xLabel: String
    public var lossMax: Double?
    public var logLoss: Bool

    public init(title: String, alphas: [Double], curves: [LandscapeCurve],
                xLabel: String = "α (filter-normalised direction)", lossMax: Double? = 5, logLoss: Bool = false) {
        for curve in curves {
            precondition(curve.loss.count == alphas.count,
                         "Landscape1DPlot curve \(curve.name): \(curve.loss.count) losses for \(alphas.count) alphas")
            if let accuracy = curve.accuracy {
                precondition(accuracy.count == alphas.count,
                             "Landscape1DPlot curve \(curve.name): \(accuracy.count) accuracies for \(alphas.count) alphas")
            }
        }
        self.title = title; self.alphas = alphas; self.curves = curves; self.xLabel = xLabel
        self.lossMax = lossMax; self.logLoss = logLoss
    }

    public var linePlot: LinePlot {
        var series: [LineSeries] = []
        for (k, curve) in curves.enumerated() {
            let color = seriesColors[k % seriesColors.count]
            series.append(LineSeries(name: "\(curve.name) loss", x: alphas, y: curve.loss, color: color))
            if let accuracy = curve.accuracy {
                series.append(LineSeries(name: "\(curve.name) accuracy", x: alphas, y: accuracy, axis: .right,
                                         color: color, dashed: true))
            }
        }
        let hasAccuracy = curves.contains { $0.accuracy != nil }
        let lossRange: ClosedRange<Double>? = lossMax.map { (logLoss ? 0.01 : 0)...$0 }
        return LinePlot(title: title, xLabel: xLabel, yLabel: logLoss ? "loss (log scale)" : "loss",
                        y2Label: hasAccuracy ? "accuracy (%)" : nil, series: series, logY: logLoss,
                        yRange: lossRange, y2Range: hasAccuracy ? 0...100 : nil, key: .below)
    }

    public func panels() -> [Panel] { linePlot.panels() }
}
