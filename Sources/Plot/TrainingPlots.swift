// Figures about training: loss and ID/OOD accuracy curves, accuracy against bit width per method
// (mean ± std over seeds), and g_QAT vs g_flat of chosen scale factors as small multiples (FQAT Fig. 2).
import Foundation

// MARK: - Training curves

/// Accuracy (in %) of one evaluation split over training.
public struct AccuracyCurve: Equatable, Sendable {
    public var name: String
    public var steps: [Double]
    public var accuracy: [Double]
    /// Out-of-distribution (held-out domain) curves are solid, in-distribution ones dashed.
    public var outOfDistribution: Bool

    public init(name: String, steps: [Double], accuracy: [Double], outOfDistribution: Bool) {
        precondition(steps.count == accuracy.count,
                     "AccuracyCurve \(name): \(steps.count) steps, \(accuracy.count) accuracies")
        self.name = name; self.steps = steps; self.accuracy = accuracy; self.outOfDistribution = outOfDistribution
    }
}

/// Training loss (left axis) and in-distribution / out-of-distribution accuracy (right axis, 0-100 %)
/// against the training step.
public struct TrainingCurvesPlot: PlotSpec {
    public var title: String
    public var steps: [Double]
    public var loss: [Double]
    public var accuracies: [AccuracyCurve]
    public var logLoss: Bool
    public var lossLabel: String
    public var xLabel: String

    public init(title: String, steps: [Double], loss: [Double], accuracies: [AccuracyCurve], logLoss: Bool = false,
                lossLabel: String = "training loss", xLabel: String = "training step") {
        precondition(steps.count == loss.count, "TrainingCurvesPlot: \(steps.count) steps, \(loss.count) losses")
        self.title = title; self.steps = steps; self.loss = loss; self.accuracies = accuracies
        self.logLoss = logLoss; self.lossLabel = lossLabel; self.xLabel = xLabel
    }

    public var linePlot: LinePlot {
        var series = [LineSeries(name: lossLabel, x: steps, y: loss, color: RGB(60, 60, 60), lineWidth: 1.5)]
        for (k, curve) in accuracies.enumerated() {
            series.append(LineSeries(name: "\(curve.name) accuracy", x: curve.steps, y: curve.accuracy, axis: .right,
                                     style: .linesPoints, color: seriesColors[k % seriesColors.count],
                                     dashed: !curve.outOfDistribution))
        }
        return LinePlot(title: title, xLabel: xLabel, yLabel: logLoss ? "\(lossLabel) (log scale)" : lossLabel,
                        y2Label: accuracies.isEmpty ? nil : "accuracy (%)", series: series, logY: logLoss,
                        y2Range: accuracies.isEmpty ? nil : 0...100, key: .below)
    }

    public var suggestedSize: PixelSize { PixelSize(width: 800, height: 600) }
    public func panels() -> [Panel] { linePlot.panels() }
}

// MARK: - Accuracy vs bit width

/// Mean ± std accuracy of one method at one bit width.
public struct BitWidthResult: Equatable, Sendable {
    public var bits: Int
    public var mean: Double
    /// Standard deviation over seeds; nil (or 0) draws no bar.
    public var std: Double?
    public init(bits: Int, mean: Double, std: Double? = nil) { self.bits = bits; self.mean = mean; self.std = std }
}

/// All bit widths of one method (e.g. "LSQ", "LSQ+SAGM", "FQAT").
public struct MethodResults: Equatable, Sendable {
    public var method: String
    public var results: [BitWidthResult]
    public init(method: String, results: [BitWidthResult]) {
        self.method = method; self.results = results.sorted { $0.bits < $1.bits }
    }
}

/// Accuracy against bit width, one line with error bars (mean ± std over seeds) per method. Methods are
/// dodged sideways by a few hundredths of a bit so bars do not hide each other; the CSV keeps the true
/// bit widths. An optional full-precision accuracy is drawn as a dashed horizontal reference.
public struct BitWidthPlot: PlotSpec {
    public var title: String
    public var methods: [MethodResults]
    public var fullPrecision: Double?
    public var yLabel: String
    public var xLabel: String

    public init(title: String, methods: [MethodResults], fullPrecision: Double? = nil,
                yLabel: String = "OOD accuracy (%)", xLabel: String = "bit width (weights and activations)") {
        self.title = title; self.methods = methods; self.fullPrecision = fullPrecision
        self.yLabel = yLabel; self.xLabel = xLabel
    }

    public var linePlot: LinePlot {
        let bits = Array(Set(methods.flatMap { $0.results.map(\.bits) })).sorted()
        let low = Double(bits.first ?? 0) - 0.5, high = Double(bits.last ?? 8) + 0.5
        let dodge = 0.06
        var series: [LineSeries] = []
        for (m, method) in methods.enumerated() {
            let offset = (Double(m) - Double(methods.count - 1) / 2) * dodge
            series.append(LineSeries(name: method.method, x: method.results.map { Double($0.bits) },
                                     y: method.results.map(\.mean), yError: method.results.map { $0.std ?? 0 },
                                     style: .linesPoints, color: seriesColors[m % seriesColors.count], xOffset: offset))
        }
        if let fullPrecision {
            series.append(LineSeries(name: "full precision", x: [low, high], y: [fullPrecision, fullPrecision],
                                     color: RGB(90, 90, 90), dashed: true, lineWidth: 1.5))
        }
        return LinePlot(title: title, xLabel: xLabel, yLabel: yLabel, series: series, xRange: low...high,
                        key: .below, xTics: bits.map { (label: "\($0)-bit", value: Double($0)) })
    }

    public func panels() -> [Panel] { linePlot.panels() }
}

// MARK: - g_QAT vs g_flat

/// The two gradients of one scale factor over training (and optionally the gradient actually applied).
public struct GradientTrace: Equatable, Sendable {
    public var factor: String
    public var steps: [Double]
    /// Task-loss gradient g_QAT (FQAT §4.1).
    public var qat: [Double]
    /// Flatness gradient g_flat.
    public var flat: [Double]
    /// The gradient the optimiser used (g_flat alone while frozen, else g_QAT + g_flat), if recorded.
    public var applied: [Double]?
    /// Steps to mark with a dashed vertical line (e.g. where freezing started).
    public var markers: [Double]

    public init(factor: String, steps: [Double], qat: [Double], flat: [Double], applied: [Double]? = nil,
                markers: [Double] = []) {
        precondition(qat.count == steps.count && flat.count == steps.count,
                     "GradientTrace \(factor): \(steps.count) steps, \(qat.count) g_QAT, \(flat.count) g_flat")
        if let applied { precondition(applied.count == steps.count, "GradientTrace \(factor): \(applied.count) applied for \(steps.count) steps") }
        self.factor = factor; self.steps = steps; self.qat = qat; self.flat = flat; self.applied = applied
        self.markers = markers
    }
}

/// g_QAT (blue) and g_flat (yellow) over steps for chosen scale factors, one small plot per factor
/// (FQAT paper Fig. 2); with `applied` set, the gradient actually used is drawn too (Fig. 4). Every
/// panel has its key above the plot area (one row), so the panels keep equal sizes and no key covers
/// a curve.
public struct GradientComparisonPlot: PlotSpec {
    public var title: String
    public var traces: [GradientTrace]
    public var columns: Int
    public var yLabel: String
    public var xLabel: String

    public static let qatColor = RGB(31, 119, 180)
    public static let flatColor = RGB(230, 159, 0)
    public static let appliedColor = RGB(44, 160, 44)

    public init(title: String, traces: [GradientTrace], columns: Int = 2, yLabel: String = "gradient of s",
                xLabel: String = "training step") {
        precondition(columns > 0, "GradientComparisonPlot: columns must be positive, got \(columns)")
        self.title = title; self.traces = traces; self.columns = columns; self.yLabel = yLabel; self.xLabel = xLabel
    }

    public var layout: (rows: Int, columns: Int) {
        let columns = min(self.columns, max(traces.count, 1))
        return (max(1, (traces.count + columns - 1) / columns), columns)
    }

    /// The plot of one factor.
    public func linePlot(for index: Int) -> LinePlot {
        let trace = traces[index]
        // g_flat first so the steadier g_QAT stays visible on top of it.
        var series = [LineSeries(name: "g_flat", x: trace.steps, y: trace.flat, color: Self.flatColor, lineWidth: 1),
                      LineSeries(name: "g_QAT", x: trace.steps, y: trace.qat, color: Self.qatColor, lineWidth: 1)]
        if let applied = trace.applied {
            series.append(LineSeries(name: "applied", x: trace.steps, y: applied, color: Self.appliedColor, lineWidth: 1))
        }
        // A single factor is drawn without multiplot, so its title carries the figure title too.
        let plotTitle = traces.count == 1 ? "\(title): \(trace.factor)" : trace.factor
        // The x axis spans the steps traced (gnuplot's autoscale would run it on to the next tic).
        let first = trace.steps.min() ?? 0, last = trace.steps.max() ?? 0
        return LinePlot(title: plotTitle, xLabel: xLabel, yLabel: yLabel, series: series,
                        xRange: last > first ? first...last : nil, key: .above, markers: trace.markers,
                        xTicStep: niceTicStep(span: last - first, maxTics: 4))
    }

    public func panels() -> [Panel] {
        if traces.isEmpty {
            return LinePlot(title: title, xLabel: xLabel, yLabel: yLabel, series: []).panels()
        }
        return traces.indices.map { linePlot(for: $0).panel() }
    }
}
