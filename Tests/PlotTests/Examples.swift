// Synthetic data for every figure kind, shared by the script tests, the real gnuplot renders and the
// documentation images (docs/img). Deterministic: a small linear congruential generator, no Foundation
// randomness.
import Foundation
@testable import Plot

/// A tiny deterministic generator (Knuth's MMIX LCG) for test data; uniform in [0, 1) and Box-Muller normals.
struct TestNumbers {
    var state: UInt64
    init(seed: UInt64) { state = seed &* 6364136223846793005 &+ 1442695040888963407 }
    mutating func uniform() -> Double {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Double(state >> 11) / Double(1 << 53)
    }
    mutating func normal() -> Double {
        let u = max(uniform(), 1e-12), v = uniform()
        return (-2 * log(u)).squareRoot() * cos(2 * .pi * v)
    }
}

enum Examples {
    static func linspace(_ low: Double, _ high: Double, _ count: Int) -> [Double] {
        (0..<count).map { low + (high - low) * Double($0) / Double(count - 1) }
    }

    /// A loss landscape: a bowl with ripples; `sharpness` scales the curvature.
    static func landscapeGrid(points: Int = 31, sharpness: Double = 1) -> Grid {
        let axis = linspace(-1, 1, points)
        let z = axis.map { b in
            axis.map { a in
                0.25 + sharpness * (3.0 * a * a + 1.6 * b * b) + 0.25 * sharpness * sin(5 * a) * cos(4 * b) + 0.1 * a
            }
        }
        return Grid(x: axis, y: axis, z: z)
    }

    static func contour() -> ContourPlot {
        ContourPlot(title: "Loss contours, 4-bit LSQ, held-out domain", grid: landscapeGrid(),
                    levels: ContourLevels(start: 0.1, end: 10, step: 0.5))
    }

    static func heatmap() -> HeatmapPlot {
        HeatmapPlot(title: "Loss heatmap, 4-bit LSQ, held-out domain", grid: landscapeGrid(), zRange: 0.1...6)
    }

    static func surface(title: String = "Loss surface, 4-bit LSQ+SAGM", sharpness: Double = 1, points: Int = 31) -> SurfacePlot {
        SurfacePlot(title: title, grid: landscapeGrid(points: points, sharpness: sharpness), zMax: 10, logarithmic: true)
    }

    static func landscape1D() -> Landscape1DPlot {
        let alphas = linspace(-1, 1, 51)
        func curve(_ name: String, _ sharpness: Double) -> LandscapeCurve {
            let loss = alphas.map { 0.3 + sharpness * 3 * $0 * $0 + 0.05 * sin(9 * $0) }
            return LandscapeCurve(name: name, loss: loss, accuracy: loss.map { 100 * exp(-0.45 * $0) })
        }
        return Landscape1DPlot(title: "1-D loss landscape, 4-bit", alphas: alphas,
                               curves: [curve("LSQ+SAGM", 1.4), curve("FQAT", 0.7)])
    }

    static let factorNames = ["conv1.act_scale", "layer1.0.conv1.w_scale", "layer1.0.conv2.w_scale",
                              "layer2.0.conv1.w_scale", "layer2.0.conv2.w_scale", "layer3.0.conv1.w_scale",
                              "layer3.0.conv2.w_scale", "layer4.0.conv1.w_scale", "layer4.0.conv2.w_scale",
                              "layer4.2.conv1.w_scale"]

    static func gradients() -> GradientComparisonPlot {
        var numbers = TestNumbers(seed: 7)
        let steps = (0..<200).map { Double($0 * 10) }
        func trace(_ name: String, cancelling: Bool) -> GradientTrace {
            var qat: [Double] = [], flat: [Double] = []
            for (i, _) in steps.enumerated() {
                let base = 0.02 * exp(-Double(i) / 75)
                let q = (cancelling ? 0.015 : base) + 0.004 * numbers.normal()
                var f = (cancelling ? -0.015 : 0.5 * base) + 0.012 * numbers.normal()
                if numbers.uniform() < 0.03 { f += 0.06 * numbers.normal() }  // outliers
                qat.append(q); flat.append(f)
            }
            return GradientTrace(factor: name, steps: steps, qat: qat, flat: flat, markers: cancelling ? [1000] : [])
        }
        return GradientComparisonPlot(title: "g_QAT vs g_flat per scale factor", traces: [
            trace("layer1.0.conv1.w_scale", cancelling: false), trace("layer2.0.conv2.w_scale", cancelling: false),
            trace("layer4.0.conv1.w_scale", cancelling: true), trace("layer4.2.conv1.w_scale", cancelling: true),
        ], columns: 2)
    }

    /// Disorder per factor and window: deep layers settle (disorder falls), shallow ones stay high.
    static func disorderValues(windows: Int = 20) -> [[Double]] {
        var numbers = TestNumbers(seed: 11)
        return factorNames.indices.map { row in
            let settle = Double(row) / Double(factorNames.count - 1)
            return (0..<windows).map { w in
                let t = Double(w) / Double(windows - 1)
                return min(1, max(0, 0.9 - 0.75 * settle * t + 0.06 * numbers.normal()))
            }
        }
    }

    static let windowSteps = (1...20).map { Double($0 * 100) }

    static func disorder() -> DisorderHeatmapPlot {
        DisorderHeatmapPlot(title: "Gradient disorder of g_QAT per scale factor (K = 100)", factors: factorNames,
                            steps: windowSteps, disorder: disorderValues(), threshold: 0.5)
    }

    static func frozenSet() -> FrozenSetPlot {
        let frozen = disorderValues().map { $0.map { $0 < 0.5 } }
        return FrozenSetPlot(title: "Adaptive freezing, τ = 0.5, K = 100", factors: factorNames, steps: windowSteps,
                             frozen: frozen)
    }

    static func trainingCurves() -> TrainingCurvesPlot {
        var numbers = TestNumbers(seed: 3)
        let steps = (0..<200).map { Double($0 * 10) }
        let loss = steps.map { 2.2 * exp(-$0 / 500) + 0.25 + 0.05 * numbers.normal() }
        let evalSteps = (0...10).map { Double($0 * 200) }
        let id = evalSteps.map { 95 - 70 * exp(-$0 / 400) }
        let ood = evalSteps.map { 78 - 58 * exp(-$0 / 500) }
        return TrainingCurvesPlot(title: "FQAT, 4-bit, held-out domain: sketch", steps: steps, loss: loss, accuracies: [
            AccuracyCurve(name: "ID (train-domain validation)", steps: evalSteps, accuracy: id, outOfDistribution: false),
            AccuracyCurve(name: "OOD (sketch)", steps: evalSteps, accuracy: ood, outOfDistribution: true),
        ])
    }

    static func bitWidth() -> BitWidthPlot {
        BitWidthPlot(title: "OOD accuracy vs bit width (mean ± std over 2 seeds)", methods: [
            MethodResults(method: "LSQ", results: [BitWidthResult(bits: 3, mean: 71.2, std: 1.1),
                                                   BitWidthResult(bits: 4, mean: 78.9, std: 0.7),
                                                   BitWidthResult(bits: 5, mean: 80.4, std: 0.5)]),
            MethodResults(method: "LSQ+SAGM", results: [BitWidthResult(bits: 3, mean: 72.5, std: 1.3),
                                                        BitWidthResult(bits: 4, mean: 79.6, std: 0.6),
                                                        BitWidthResult(bits: 5, mean: 81.0, std: 0.4)]),
            MethodResults(method: "FQAT", results: [BitWidthResult(bits: 3, mean: 74.8, std: 0.9),
                                                    BitWidthResult(bits: 4, mean: 81.3, std: 0.5),
                                                    BitWidthResult(bits: 5, mean: 82.1, std: 0.4)]),
        ], fullPrecision: 83.0)
    }

    static func linePlot() -> LinePlot {
        let x = linspace(0, 10, 21)
        return LinePlot(title: "Two series", xLabel: "step", yLabel: "loss", series: [
            LineSeries(name: "train", x: x, y: x.map { exp(-$0 / 3) + 0.1 }),
            LineSeries(name: "val", x: x, y: x.map { exp(-$0 / 4) + 0.2 }, style: .linesPoints),
        ], logY: true)
    }

    /// A landscape panel as `landscape … style=surface` draws it: linear z clipped at 10, labelled
    /// contours, and a caption with the centre loss and the largest increase within r = 0.5 and 1.
    static func comparedSurface(title: String, sharpness: Double) -> SurfacePlot {
        let grid = landscapeGrid(points: 21, sharpness: sharpness)
        let centre = grid.z[10][10]
        func maxIncrease(within r: Double) -> Double {
            var m = -Double.infinity
            for (j, b) in grid.y.enumerated() {
                for (i, a) in grid.x.enumerated() where (a * a + b * b).squareRoot() <= r + 1e-9 { m = max(m, grid.z[j][i] - centre) }
            }
            return m
        }
        let caption = String(format: "centre %.3g | max ΔL r=0.5 %.3g, r=1 %.3g", centre, maxIncrease(within: 0.5), maxIncrease(within: 1))
        return SurfacePlot(title: title, grid: grid, zMax: 10, contours: true, caption: caption)
    }

    static func sideBySide() -> Figure {
        Figure(title: "4-bit LSQ on PACS-like domains: LSQ+SAGM (left) vs FQAT (right), one z range", rows: 2, columns: 2,
               specs: SurfacePlot.sharingZRange([
                   comparedSurface(title: "LSQ+SAGM, art", sharpness: 1.3),
                   comparedSurface(title: "FQAT, art", sharpness: 0.7),
                   comparedSurface(title: "LSQ+SAGM, sketch", sharpness: 1.6),
                   comparedSurface(title: "FQAT, sketch", sharpness: 0.8),
               ]))
    }

    /// Every kind with a file name, for the real renders and docs/img.
    static func all() -> [(name: String, spec: any PlotSpec)] {
        [("line", linePlot()), ("landscape-1d", landscape1D()), ("contour", contour()), ("heatmap", heatmap()),
         ("surface", surface()), ("gradients", gradients()), ("disorder", disorder()), ("frozen", frozenSet()),
         ("training", trainingCurves()), ("bitwidth", bitWidth()), ("side-by-side", sideBySide())]
    }
}
