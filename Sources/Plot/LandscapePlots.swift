// 2-D loss-landscape figures after Li et al. 2018 (`plot_2D.py`, `h52vtp.py`; docs/landscape.md):
// contour lines with labels, a filled heatmap, and a 3-D surface with optional clipping and log(z + 0.1).
import Foundation

/// Values on a rectangular grid: `z[j][i]` is the value at (x[i], y[j]), as the loss-landscape code
/// stores it (Z[row = y index][col = x index], docs/landscape.md). NaN marks a missing value (a diverged
/// evaluation); gnuplot leaves that cell out.
public struct Grid: Equatable, Sendable {
    public var x: [Double]
    public var y: [Double]
    public var z: [[Double]]

    public init(x: [Double], y: [Double], z: [[Double]]) {
        precondition(z.count == y.count, "Grid: z has \(z.count) rows, y has \(y.count) values")
        for (j, row) in z.enumerated() {
            precondition(row.count == x.count, "Grid: z row \(j) has \(row.count) values, x has \(x.count)")
        }
        self.x = x; self.y = y; self.z = z
    }

    /// Smallest and largest finite value, nil when there is none.
    public var finiteRange: ClosedRange<Double>? {
        let finite = z.joined().filter { $0.isFinite }
        guard let low = finite.min(), let high = finite.max() else { return nil }
        return low...high
    }

    /// CSV `x,y,z`, x fastest, a blank line after each y row (gnuplot grid format).
    var table: DataTable {
        // Table (ny*nx) x (x, y, z).
        var rows: [[String]] = []
        var breaks = Set<Int>()
        for j in 0..<y.count {
            for i in 0..<x.count { rows.append([plotNumber(x[i]), plotNumber(y[j]), plotNumber(z[j][i])]) }
            breaks.insert(rows.count - 1)
        }
        return DataTable(header: ["x", "y", "z"], rows: rows, blankLineAfter: breaks)
    }

    /// The grid as a terminal heatmap: largest y on the top line, as on the page.
    func terminalHeatmap(title: String, xLabel: String, yLabel: String, zLabel: String,
                         zRange: ClosedRange<Double>?, palette: Palette,
                         transform: (Double) -> Double = { $0 }) -> TerminalHeatmap {
        let rows = z.reversed().map { $0.map(transform) }
        let finite = rows.joined().filter { $0.isFinite }
        let range = zRange ?? ((finite.min() ?? 0)...(finite.max() ?? 1))
        return TerminalHeatmap(title: title, rows: Array(rows), rowLabels: y.reversed().map(axisLabel),
                               rowAxis: .numeric, xFirst: x.first.map(axisLabel) ?? "",
                               xLast: x.last.map(axisLabel) ?? "", xLabel: xLabel, yLabel: yLabel,
                               zRange: range, zLabel: zLabel, palette: palette)
    }

    /// The one panel of a landscape plot: `commands` over this grid, and the terminal view with the same
    /// title (caption after " | "), axes and colours.
    func landscapePanel(_ commands: [String], title: String, caption: String?, axes: LandscapeAxes,
                        zLabel: String? = nil, zRange: ClosedRange<Double>?, palette: Palette,
                        transform: (Double) -> Double = { $0 }) -> Panel {
        let view = terminalHeatmap(title: captioned(title, caption, separator: " | "), xLabel: axes.x,
                                   yLabel: axes.y, zLabel: zLabel ?? axes.z, zRange: zRange, palette: palette,
                                   transform: transform)
        return Panel(commands: commands, tables: [table], terminalHeatmap: view)
    }
}

/// A number for an axis label in text: 3 significant digits.
func axisLabel(_ value: Double) -> String {
    if value.isNaN { return "NaN" }
    if value == value.rounded(), abs(value) < 1e6 { return String(Int64(value)) }
    return String(format: "%.3g", value)
}

/// A panel title with its caption (e.g. flatness numbers) on a second line, or after `separator` where
/// there is only one line (the terminal view).
func captioned(_ title: String, _ caption: String?, separator: String = "\n") -> String {
    guard let caption, !caption.isEmpty else { return title }
    return title + separator + caption
}

/// The commands a contour or heatmap panel opens with: title (caption on a second line), axis and
/// colour-bar labels, and the flat, square view that fits the grid exactly.
func mapViewCommands(title: String, caption: String?, axes: LandscapeAxes) -> [String] {
    ["set title \(gnuplotString(captioned(title, caption)))",
     "set xlabel \(gnuplotString(axes.x))",
     "set ylabel \(gnuplotString(axes.y))",
     "set cblabel \(gnuplotString(axes.z)) offset 1,0",
     "set view map",
     "set size square",
     "set autoscale xfix",
     "set autoscale yfix"]
}

/// Contour levels from `start` to `end` every `step` (Li et al.: vmin 0.1, vmax 10, vlevel 0.5).
public struct ContourLevels: Equatable, Sendable {
    public var start: Double
    public var end: Double
    public var step: Double
    public init(start: Double = 0.1, end: Double = 10, step: Double = 0.5) {
        precondition(step > 0 && end > start, "ContourLevels: need start < end and step > 0, got \(start), \(end), \(step)")
        self.start = start; self.end = end; self.step = step
    }
}

/// Axis labels for a landscape: the two filter-normalised directions and the value plotted.
public struct LandscapeAxes: Equatable, Sendable {
    public var x: String
    public var y: String
    public var z: String
    public init(x: String = "α (direction 1)", y: String = "β (direction 2)", z: String = "loss") {
        self.x = x; self.y = y; self.z = z
    }
}

/// 2-D landscape as contour lines coloured by level, with inline level labels (Li et al. Fig. 1/5).
public struct ContourPlot: PlotSpec {
    public var title: String
    public var grid: Grid
    public var levels: ContourLevels
    public var labels: Bool
    public var axes: LandscapeAxes
    public var palette: Palette
    /// A second title line (the panel's flatness numbers).
    public var caption: String?

    public init(title: String, grid: Grid, levels: ContourLevels = ContourLevels(), labels: Bool = true,
                axes: LandscapeAxes = LandscapeAxes(), palette: Palette = .summer, caption: String? = nil) {
        self.title = title; self.grid = grid; self.levels = levels; self.labels = labels
        self.axes = axes; self.palette = palette; self.caption = caption
    }

    /// The top of the colour range: the highest level, or the highest level the data reaches (so the
    /// colours of the drawn lines span the whole palette).
    var colorTop: Double {
        guard let high = grid.finiteRange?.upperBound, high > levels.start else { return levels.end }
        let reached = levels.start + (((high - levels.start) / levels.step).rounded(.up)) * levels.step
        return min(levels.end, reached)
    }

    public func panels() -> [Panel] {
        var commands = mapViewCommands(title: title, caption: caption, axes: axes)
            + ["unset surface",
               "set contour base",
               "set cntrparam levels incremental \(plotNumber(levels.start)),\(plotNumber(levels.step)),\(plotNumber(levels.end))",
               "set cbrange [\(plotNumber(levels.start)):\(plotNumber(colorTop))]",
               palette.gnuplotCommand,
               "unset key"]
        var plot = "splot \(Panel.data(0)) using 1:2:3 with lines lw 1.5 palette notitle"
        if labels {
            // Labels sit on the contour lines; an opaque text box hides the line beneath each label.
            commands.append("set cntrlabel format \"%.1f\" font \",8\" start 5 interval 60")
            commands.append("set style textbox opaque noborder margins 0.5,0.5")
            plot += ", \"\" using 1:2:3 with labels boxed notitle"
        }
        commands.append(plot)
        return [grid.landscapePanel(commands, title: title, caption: caption, axes: axes, zRange: levels.start...colorTop,
                                    palette: palette)]
    }
}

/// 2-D landscape as a filled heatmap (gnuplot `pm3d map`), colour range `zRange` (vmin/vmax).
public struct HeatmapPlot: PlotSpec {
    public var title: String
    public var grid: Grid
    /// Colour range; nil spans the data.
    public var zRange: ClosedRange<Double>?
    public var axes: LandscapeAxes
    public var palette: Palette
    /// A second title line (the panel's flatness numbers).
    public var caption: String?

    public init(title: String, grid: Grid, zRange: ClosedRange<Double>? = nil, axes: LandscapeAxes = LandscapeAxes(),
                palette: Palette = .viridis, caption: String? = nil) {
        self.title = title; self.grid = grid; self.zRange = zRange; self.axes = axes; self.palette = palette
        self.caption = caption
    }

    public func panels() -> [Panel] {
        var commands = mapViewCommands(title: title, caption: caption, axes: axes)
            + ["set pm3d map corners2color mean",
               palette.gnuplotCommand,
               "unset key"]
        if let zRange { commands.append("set cbrange [\(plotNumber(zRange.lowerBound)):\(plotNumber(zRange.upperBound))]") }
        commands.append("splot \(Panel.data(0)) using 1:2:3 with pm3d notitle")
        return [grid.landscapePanel(commands, title: title, caption: caption, axes: axes, zRange: zRange, palette: palette)]
    }
}

/// 2-D landscape as a 3-D surface (pm3d with depth ordering, `hidden3d`), as Li et al. `h52vtp.py`
/// prepares it: z clipped at `zMax`, then optionally z ← log(z + 0.1). The CSV keeps the raw values;
/// the clipping and the log happen in the `using` clause. The z axis carries the scale, so there is no
/// colour bar. `logAxis` instead draws the (clipped) loss on a logarithmic z axis, whose tics and
/// contour labels stay in loss units. Which surfaces share a z range is the caller's choice:
/// `sharingZRange` (one range for all), `withOwnZRange` (each its own), or `sharingZRange(_:groups:)`
/// (e.g. the quantized models on one range, the full-precision model on its own; docs/plots.md). With
/// `contours`, labelled contour lines of the loss are projected on the base plane (not with
/// `logarithmic`, whose levels would read in log units); `caption` is printed under the title (the
/// flatness numbers of the panel).
public struct SurfacePlot: PlotSpec {
    public var title: String
    public var grid: Grid
    public var zMax: Double?
    public var logarithmic: Bool
    public var axes: LandscapeAxes
    public var palette: Palette
    /// gnuplot `set view rotX, rotZ` in degrees.
    public var view: (rotX: Double, rotZ: Double)
    /// z axis and colour range after clipping and log; nil spans the data.
    public var zRange: ClosedRange<Double>?
    /// A logarithmic z axis (tics in loss units; values ≤ 0 are left out).
    public var logAxis: Bool
    /// Draw labelled contour lines (levels from `contourLevels()`) on the base plane.
    public var contours: Bool
    /// A second title line, e.g. "centre 0.59 (78.3%) | max ΔL r=0.5 2.97, r=1 6.71".
    public var caption: String?

    public init(title: String, grid: Grid, zMax: Double? = nil, logarithmic: Bool = false,
                axes: LandscapeAxes = LandscapeAxes(), palette: Palette = .coolwarm,
                view: (rotX: Double, rotZ: Double) = (55, 35), zRange: ClosedRange<Double>? = nil,
                logAxis: Bool = false, contours: Bool = false, caption: String? = nil) {
        self.title = title; self.grid = grid; self.zMax = zMax; self.logarithmic = logarithmic
        self.axes = axes; self.palette = palette; self.view = view; self.zRange = zRange
        self.logAxis = logAxis; self.contours = contours; self.caption = caption
    }

    /// The plotted (clipped, log) values' finite range.
    public var transformedRange: ClosedRange<Double>? {
        let values = grid.z.joined().map(transform).filter { $0.isFinite }
        guard let low = values.min(), let high = values.max() else { return nil }
        return low...high
    }

    /// The same surfaces with one z range spanning all of them, so flatter and sharper surfaces are drawn
    /// on the same scale (FQAT Fig. 7 compares LSQ+SAGM and FQAT side by side).
    public static func sharingZRange(_ plots: [SurfacePlot]) -> [SurfacePlot] {
        let ranges = plots.compactMap(\.transformedRange)
        guard let low = ranges.map(\.lowerBound).min(), let high = ranges.map(\.upperBound).max() else { return plots }
        return plots.map { var plot = $0; plot.zRange = low...high; return plot }
    }

    /// The surfaces in the same order, those with the same group key sharing one z range: e.g. the
    /// quantized models on one range and the full-precision model, whose corners can be hundreds of
    /// times higher, on its own.
    public static func sharingZRange<Key: Hashable>(_ plots: [SurfacePlot], groups: [Key]) -> [SurfacePlot] {
        precondition(groups.count == plots.count, "sharingZRange: \(groups.count) group keys for \(plots.count) plots")
        var result = plots
        for key in Set(groups) {
            let members = plots.indices.filter { groups[$0] == key }
            let shared = sharingZRange(members.map { plots[$0] })
            for (index, plot) in zip(members, shared) { result[index] = plot }
        }
        return result
    }

    /// This surface with a z range spanning its own data (a panel on its own scale).
    public func withOwnZRange() -> SurfacePlot {
        var plot = self
        plot.zRange = transformedRange
        return plot
    }

    /// The z label after the transform, e.g. `log(loss + 0.1)`.
    public var zLabel: String {
        logarithmic ? "log(\(axes.z) + 0.1)" : logAxis ? "\(axes.z) (log scale)" : axes.z
    }

    /// The same transform as the script's `using` clause (and for a log axis, the axis's), for the
    /// terminal view and the z ranges.
    func transform(_ value: Double) -> Double {
        var v = value
        if let zMax, v > zMax { v = zMax }
        if logarithmic { return log(v + 0.1) }
        return logAxis && v <= 0 ? .nan : v
    }

    /// Contour levels in loss units (after clipping) strictly inside the data's range: about six evenly
    /// spaced round values (1, 2 or 5 × 10ⁿ apart), or on a log axis the 1-2-5 sequence. Empty when the
    /// surface is constant, and with `logarithmic` (levels in log units would not read as losses).
    public func contourLevels() -> [Double] {
        guard !logarithmic else { return [] }
        let values = grid.z.joined().map(transform).filter { $0.isFinite }
        guard let low = values.min(), let high = values.max(), high > low else { return [] }
        if logAxis {
            var levels: [Double] = []
            var decade = pow(10, floor(log10(max(low, 1e-3))))
            while decade <= high && levels.count < 40 {
                for m in [1.0, 2, 5] {
                    let level = m * decade
                    if level > low && level < high { levels.append(level) }
                }
                decade *= 10
            }
            return levels
        }
        guard let step = niceTicStep(span: high - low, maxTics: 6) else { return [] }
        var levels: [Double] = []
        var level = (low / step).rounded(.down) * step + step
        while level < high && levels.count < 20 {
            // Multiples of the step, without accumulated rounding (0.30000000000000004).
            levels.append((level / step).rounded() * step)
            level += step
        }
        return levels
    }

    public func panels() -> [Panel] {
        var clipped = "$3"
        if let zMax { clipped = "($3 > \(plotNumber(zMax)) ? \(plotNumber(zMax)) : $3)" }
        let z = logarithmic ? "log(\(clipped) + 0.1)" : clipped
        var commands = ["set title \(gnuplotString(captioned(title, caption)))",
                        "set xlabel \(gnuplotString(axes.x))",
                        "set ylabel \(gnuplotString(axes.y))",
                        // Scale 0.9 and the offset keep the rotated z label clear of the tic labels
                        // in small multiplot panels.
                        "set zlabel \(gnuplotString(zLabel)) rotate parallel offset -1,0",
                        "unset colorbox",
                        "set view \(plotNumber(view.rotX)),\(plotNumber(view.rotZ)),0.9",
                        "set xyplane 0",
                        "set autoscale xfix",
                        "set autoscale yfix",
                        "set hidden3d front",
                        "set pm3d depthorder border lc rgb \"#303030\" lw 0.3",
                        palette.gnuplotCommand,
                        "unset key"]
        let range = zRange
        if logAxis { commands += ["set logscale z", "set logscale cb"] }
        if let range {
            let text = "[\(plotNumber(range.lowerBound)):\(plotNumber(range.upperBound))]"
            commands += ["set zrange \(text)", "set cbrange \(text)"]
        }
        let levels = contours ? contourLevels() : []
        if levels.isEmpty {
            commands.append("splot \(Panel.data(0)) using 1:2:(\(z)) with pm3d notitle")
        } else {
            // Lines on the base plane in one dark colour, each level's value printed on its line.
            commands += ["set contour base",
                         "set cntrparam levels discrete \(levels.map(plotNumber).joined(separator: ","))",
                         "set cntrlabel onecolor format \"%.3g\" font \",8\" start 5 interval 30"]
            commands.append("splot \(Panel.data(0)) using 1:2:(\(z)) with pm3d nocontours notitle, "
                            + "\"\" using 1:2:(\(clipped)) with lines lc rgb \"#202020\" lw 1 nosurface notitle, "
                            + "\"\" using 1:2:(\(clipped)) with labels nosurface notitle")
        }
        return [grid.landscapePanel(commands, title: title, caption: caption, axes: axes, zLabel: zLabel, zRange: range,
                                    palette: palette, transform: transform)]
    }
}
