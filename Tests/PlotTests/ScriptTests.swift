// Each figure kind's gnuplot script checked as text through RecordingPlotter (tests never need gnuplot):
// terminal, output, titles, axis labels, using clauses and the CSV data.
import Foundation
import XCTest
@testable import Plot

/// The script's lines, for `XCTAssertTrue(lines.contains(...))` with a readable failure.
func assertHasLine(_ script: String, _ line: String, file: StaticString = #filePath, line number: UInt = #line) {
    let lines = script.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    XCTAssertTrue(lines.contains(line), "script has no line\n  \(line)\nscript:\n\(script)", file: file, line: number)
}

func assertHasText(_ script: String, _ text: String, file: StaticString = #filePath, line number: UInt = #line) {
    XCTAssertTrue(script.contains(text), "script has no text\n  \(text)\nscript:\n\(script)", file: file, line: number)
}

final class EscapingTests: XCTestCase {
    func testGnuplotStringEscapesQuotesBackslashesAndLineBreaks() {
        XCTAssertEqual(gnuplotString(#"say "hi" it's"#), #"'say "hi" it''s'"#)
        XCTAssertEqual(gnuplotString(#"C:\runs\a"#), #"'C:\runs\a'"#)
        XCTAssertEqual(gnuplotString("two\nlines\tand\u{07}bell"), #"'two'."\n".'lines'."\t".'andbell'"#)
        XCTAssertEqual(gnuplotString("layer1.0.conv_1 α^2 {x} @&~"), "'layer1.0.conv_1 α^2 {x} @&~'")
        XCTAssertEqual(gnuplotString(""), "''")
    }

    func testNumbersAreShortAndReadable() {
        XCTAssertEqual(plotNumber(3), "3")
        XCTAssertEqual(plotNumber(-0.5), "-0.5")
        XCTAssertEqual(plotNumber(1e-5), "1e-05")
        XCTAssertEqual(plotNumber(.nan), "NaN")
        XCTAssertEqual(plotNumber(.infinity), "Inf")
        XCTAssertEqual(plotNumber(-.infinity), "-Inf")
    }

    func testCSVQuotesCellsWithCommasAndQuotes() {
        let table = DataTable(header: ["x", "name"], rows: [["1", "a, b"], ["2", #"say "x""#], ["3", "plain"]],
                              blankLineAfter: [0])
        XCTAssertEqual(table.csv, "x,name\n1,\"a, b\"\n\n2,\"say \"\"x\"\"\"\n3,plain\n")
    }

    func testTitlesWithQuotesAreEscapedInTheScript() {
        let plot = LinePlot(title: #"loss of "best" run \ seed 0"#, xLabel: "step", yLabel: #"loss "CE""#,
                            series: [LineSeries(name: #"run "a""#, x: [0, 1], y: [1, 0.5])])
        let script = plot.script(target: .svg(path: #"/tmp/we"ird.svg"#), dataStem: "/tmp/d").text
        assertHasLine(script, #"set title 'loss of "best" run \ seed 0'"#)
        assertHasLine(script, #"set ylabel 'loss "CE"'"#)
        assertHasLine(script, #"set output '/tmp/we"ird.svg'"#)
        assertHasText(script, #"title 'run "a"'"#)
    }

    func testPaletteInterpolatesBetweenStops() {
        let palette = Palette.viridis
        XCTAssertEqual(palette.color(at: 0), RGB(68, 1, 84))
        XCTAssertEqual(palette.color(at: 1), RGB(253, 231, 37))
        XCTAssertEqual(palette.color(at: 2), RGB(253, 231, 37), "clamped above 1")
        // Halfway between the stops at 0.5 (33,144,141) and 0.625 (39,173,129).
        XCTAssertEqual(palette.color(at: 0.5625), RGB(36, 159, 135))
    }
}

final class ScriptTests: XCTestCase {
    /// Renders through RecordingPlotter and returns the script and the data files.
    func record(_ spec: any PlotSpec, target: PlotTarget? = nil, stem: String = "/out/fig") throws
        -> (script: String, files: [DataFile], result: PlotResult) {
        let plotter = RecordingPlotter()
        let result = try plotter.render(spec, to: target ?? .png(path: "\(stem).png"), dataStem: stem)
        XCTAssertEqual(plotter.scripts.count, 1)
        return (plotter.scripts[0], plotter.dataFiles[0], result)
    }

    func testLinePlotScriptAndData() throws {
        let plot = LinePlot(title: "Loss", xLabel: "step", yLabel: "loss", y2Label: "accuracy (%)", series: [
            LineSeries(name: "train", x: [0, 10], y: [2, 1]),
            LineSeries(name: "val acc", x: [0, 10], y: [50, 70], axis: .right, style: .linesPoints, dashed: true),
        ], logY: true, yRange: 0.1...10)
        let (script, files, result) = try record(plot, target: .png(path: "/out/fig.png", size: PixelSize(width: 640, height: 480), font: "Serif,9"))
        XCTAssertEqual(result.outputPath, "/out/fig.png")
        XCTAssertEqual(result.dataFiles, ["/out/fig.csv"])
        let lines = script.split(separator: "\n").map(String.init)
        XCTAssertEqual(Array(lines[2...5]), ["reset", "set encoding utf8",
                                             "set terminal pngcairo size 640,480 font 'Serif,9' noenhanced",
                                             "set output '/out/fig.png'"])
        XCTAssertEqual(lines.last, "unset output")
        assertHasLine(script, "set datafile separator comma")
        assertHasLine(script, "set datafile columnheaders")
        assertHasLine(script, "set title 'Loss'")
        assertHasLine(script, "set xlabel 'step'")
        assertHasLine(script, "set ylabel 'loss'")
        assertHasLine(script, "set y2label 'accuracy (%)'")
        assertHasLine(script, "set y2tics")
        assertHasLine(script, "set logscale y")
        assertHasLine(script, "set yrange [0.1:10]")
        assertHasLine(script, "plot '/out/fig.csv' using 2:($1==0 ? $3 : NaN) with lines lw 2 lc rgb \"#1f77b4\" title 'train', \\")
        assertHasLine(script, "     \"\" using 2:($1==1 ? $3 : NaN) with linespoints lw 2 pt 7 ps 0.8 lc rgb \"#ff7f0e\" dt 2 axes x1y2 title 'val acc'")
        XCTAssertEqual(files, [DataFile(path: "/out/fig.csv", contents: """
        series_index,x,y,series
        0,0,2,train
        0,10,1,train
        1,0,50,val acc
        1,10,70,val acc

        """)])
    }

    func testLandscape1DPutsLossLeftAndAccuracyRight() throws {
        let plot = Landscape1DPlot(title: "1-D", alphas: [-1, 0, 1],
                                   curves: [LandscapeCurve(name: "FQAT", loss: [2, 0.5, 2], accuracy: [40, 90, 40])])
        let (script, files, _) = try record(plot)
        assertHasLine(script, "set xlabel 'α (filter-normalised direction)'")
        assertHasLine(script, "set yrange [0:5]")
        assertHasLine(script, "set y2range [0:100]")
        assertHasLine(script, "set y2label 'accuracy (%)'")
        assertHasText(script, "axes x1y2 title 'FQAT accuracy'")
        assertHasText(script, "title 'FQAT loss'")
        XCTAssertTrue(files[0].contents.hasPrefix("series_index,x,y,series\n0,-1,2,FQAT loss\n0,0,0.5,FQAT loss\n"))
    }

    func testContourScriptFollowsLiEtAlLevels() throws {
        let grid = Grid(x: [-1, 0, 1], y: [-1, 1], z: [[3, 1, 3], [4, 2, 4]])
        let plot = ContourPlot(title: "Contour", grid: grid, levels: ContourLevels(start: 0.1, end: 10, step: 0.5))
        let (script, files, _) = try record(plot)
        assertHasLine(script, "set title 'Contour'")
        assertHasLine(script, "set xlabel 'α (direction 1)'")
        assertHasLine(script, "set ylabel 'β (direction 2)'")
        assertHasLine(script, "set cblabel 'loss' offset 1,0")
        assertHasLine(script, "set contour base")
        assertHasLine(script, "unset surface")
        assertHasLine(script, "set view map")
        assertHasLine(script, "set cntrparam levels incremental 0.1,0.5,10")
        // The colour range stops at the first level at or above the data maximum (4 -> 4.1).
        assertHasLine(script, "set cbrange [0.1:4.1]")
        assertHasLine(script, "set cntrlabel format \"%.1f\" font \",8\" start 5 interval 60")
        assertHasLine(script, "splot '/out/fig.csv' using 1:2:3 with lines lw 1.5 palette notitle, \"\" using 1:2:3 with labels boxed notitle")
        // Grid format: x fastest, a blank line after each y row.
        XCTAssertEqual(files[0].contents, "x,y,z\n-1,-1,3\n0,-1,1\n1,-1,3\n\n-1,1,4\n0,1,2\n1,1,4\n\n")
        let unlabelled = ContourPlot(title: "C", grid: grid, labels: false)
        let plain = try record(unlabelled).script
        assertHasLine(plain, "splot '/out/fig.csv' using 1:2:3 with lines lw 1.5 palette notitle")
    }

    func testHeatmapScriptUsesPm3dMapAndColourRange() throws {
        let plot = HeatmapPlot(title: "Heat", grid: Examples.landscapeGrid(points: 5), zRange: 0.1...6,
                               axes: LandscapeAxes(x: "δ", y: "η", z: "test loss"))
        let (script, files, _) = try record(plot, target: .svg(path: "/out/fig.svg", size: PixelSize(width: 500, height: 400)))
        assertHasLine(script, "set terminal svg size 500,400 font 'Sans,11' noenhanced background \"white\"")
        assertHasLine(script, "set output '/out/fig.svg'")
        assertHasLine(script, "set pm3d map corners2color mean")
        assertHasLine(script, "set cbrange [0.1:6]")
        assertHasLine(script, "set cblabel 'test loss' offset 1,0")
        assertHasLine(script, "set xlabel 'δ'")
        assertHasLine(script, "splot '/out/fig.csv' using 1:2:3 with pm3d notitle")
        XCTAssertEqual(files[0].contents.split(separator: "\n").count, 1 + 25, "header + 5x5 rows")
    }

    func testSurfaceClipsAndTakesTheLogInTheUsingClause() throws {
        let plot = SurfacePlot(title: "Surface", grid: Examples.landscapeGrid(points: 4), zMax: 10, logarithmic: true)
        let (script, _, _) = try record(plot)
        assertHasLine(script, "splot '/out/fig.csv' using 1:2:(log(($3 > 10 ? 10 : $3) + 0.1)) with pm3d notitle")
        assertHasLine(script, "set zlabel 'log(loss + 0.1)' rotate parallel offset -1,0")
        assertHasLine(script, "set view 55,35,0.9")
        assertHasLine(script, "set hidden3d front")
        assertHasLine(script, "set pm3d depthorder border lc rgb \"#303030\" lw 0.3")
        let raw = SurfacePlot(title: "S", grid: Examples.landscapeGrid(points: 4))
        assertHasLine(try record(raw).script, "splot '/out/fig.csv' using 1:2:($3) with pm3d notitle")
        XCTAssertEqual(plot.transform(100), log(10.1), accuracy: 1e-12)
        XCTAssertEqual(plot.transform(1), log(1.1), accuracy: 1e-12)
    }

    func testSharedZRangeSpansAllSurfaces() {
        let flat = SurfacePlot(title: "a", grid: Grid(x: [0, 1], y: [0], z: [[1, 2]]))
        let sharp = SurfacePlot(title: "b", grid: Grid(x: [0, 1], y: [0], z: [[0.5, 8]]))
        let shared = SurfacePlot.sharingZRange([flat, sharp])
        XCTAssertEqual(shared.map(\.zRange), [0.5...8, 0.5...8])
        let script = Figure(title: "both", rows: 1, columns: 2, specs: shared).script(target: .png(path: "/o/f.png"), dataStem: "/o/f").text
        XCTAssertEqual(script.components(separatedBy: "set zrange [0.5:8]").count - 1, 2)
    }

    /// Fig. 7's problem: an FP surface whose corners reach 2,500 flattened the quantized ones on a
    /// shared range. Grouped ranges put the quantized surfaces on their own range.
    func testZRangesPerPanelOrPerGroup() {
        let fp = SurfacePlot(title: "fp", grid: Grid(x: [0, 1], y: [0], z: [[0.8, 2500]]))
        let lsq = SurfacePlot(title: "lsq", grid: Grid(x: [0, 1], y: [0], z: [[0.6, 7]]))
        let fqat = SurfacePlot(title: "fqat", grid: Grid(x: [0, 1], y: [0], z: [[0.5, 4]]))
        let grouped = SurfacePlot.sharingZRange([fp, lsq, fqat], groups: [false, true, true])
        XCTAssertEqual(grouped.map(\.zRange), [0.8...2500, 0.5...7, 0.5...7])
        XCTAssertEqual(grouped.map(\.title), ["fp", "lsq", "fqat"], "order kept")
        XCTAssertEqual([fp, lsq, fqat].map { $0.withOwnZRange().zRange }, [0.8...2500, 0.6...7, 0.5...4])
        XCTAssertEqual(SurfacePlot.sharingZRange([fp, lsq, fqat]).map(\.zRange), [0.5...2500, 0.5...2500, 0.5...2500])
        // Clipping applies before the range: zMax 10 caps the FP panel.
        var clipped = fp
        clipped.zMax = 10
        XCTAssertEqual(clipped.withOwnZRange().zRange, 0.8...10)
    }

    func testSurfaceContoursCaptionAndLogAxis() throws {
        // Loss 1 + 9(α² + β²) on a 5 × 5 grid: from 1 to 19.
        let axis: [Double] = [-1, -0.5, 0, 0.5, 1]
        let grid = Grid(x: axis, y: axis, z: axis.map { b in axis.map { a in 1 + 9 * (a * a + b * b) } })
        let plot = SurfacePlot(title: "fqat (OOD)", grid: grid, contours: true,
                               caption: "centre 1, 90.0% | max ΔL r=0.5 2.25").withOwnZRange()
        XCTAssertEqual(plot.contourLevels(), [5, 10, 15], "round levels strictly inside 1...19")
        let (script, _, _) = try record(plot)
        assertHasLine(script, "set title 'fqat (OOD)'.\"\\n\".'centre 1, 90.0% | max ΔL r=0.5 2.25'")
        assertHasLine(script, "set contour base")
        assertHasLine(script, "set cntrparam levels discrete 5,10,15")
        assertHasLine(script, "set cntrlabel onecolor format \"%.3g\" font \",8\" start 5 interval 30")
        assertHasLine(script, "set zrange [1:19]")
        assertHasLine(script, "splot '/out/fig.csv' using 1:2:($3) with pm3d nocontours notitle, "
                      + "\"\" using 1:2:($3) with lines lc rgb \"#202020\" lw 1 nosurface notitle, "
                      + "\"\" using 1:2:($3) with labels nosurface notitle")
        XCTAssertFalse(script.contains("set logscale"))

        // A log z axis: 1-2-5 levels in loss units, tics in loss units.
        let log = SurfacePlot(title: "fp", grid: Grid(x: [0, 1, 2], y: [0], z: [[0.8, 30, 2500]]), logAxis: true, contours: true)
        XCTAssertEqual(log.contourLevels(), [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000])
        XCTAssertEqual(log.zLabel, "loss (log scale)")
        let logScript = try record(log.withOwnZRange()).script
        assertHasLine(logScript, "set logscale z")
        assertHasLine(logScript, "set logscale cb")
        assertHasLine(logScript, "set zrange [0.8:2500]")
        assertHasLine(logScript, "set zlabel 'loss (log scale)' rotate parallel offset -1,0")
        // Non-positive values cannot sit on a log axis: left out of the range, not a crash.
        let zero = SurfacePlot(title: "z", grid: Grid(x: [0, 1], y: [0], z: [[0, 3]]), logAxis: true)
        XCTAssertEqual(zero.transformedRange, 3...3)

        // Li et al.'s log(z + 0.1) transform draws no contours (levels would read in log units); nor
        // does a flat surface, nor a surface without `contours`.
        XCTAssertEqual(SurfacePlot(title: "l", grid: grid, logarithmic: true, contours: true).contourLevels(), [])
        XCTAssertEqual(SurfacePlot(title: "c", grid: Grid(x: [0, 1], y: [0], z: [[2, 2]]), contours: true).contourLevels(), [])
        XCTAssertFalse(try record(SurfacePlot(title: "n", grid: grid)).script.contains("contour"))
        let flat = try record(SurfacePlot(title: "c", grid: Grid(x: [0, 1], y: [0], z: [[2, 2]]), contours: true)).script
        assertHasLine(flat, "splot '/out/fig.csv' using 1:2:($3) with pm3d notitle")

        // Captions on the 2-D kinds too, and in the one-line terminal title.
        assertHasLine(try record(ContourPlot(title: "C", grid: grid, caption: "centre 1")).script, "set title 'C'.\"\\n\".'centre 1'")
        assertHasLine(try record(HeatmapPlot(title: "H", grid: grid, caption: "centre 1")).script, "set title 'H'.\"\\n\".'centre 1'")
        XCTAssertEqual(plot.panels()[0].terminalHeatmap?.title, "fqat (OOD) | centre 1, 90.0% | max ΔL r=0.5 2.25")
    }

    /// No figure kind puts its legend inside the plot area, where it can cover a curve.
    func testEveryKeyIsOutsideThePlotArea() throws {
        for (name, spec) in Examples.all() {
            for panel in spec.panels() {
                for command in panel.commands where command.hasPrefix("set key") {
                    let position = command.dropFirst("set key ".count)
                    XCTAssertTrue(position.hasPrefix("below") || position.hasPrefix("tmargin") || position.hasPrefix("outside"),
                                  "\(name): \(command)")
                }
            }
        }
        XCTAssertEqual(LinePlot(title: "t", xLabel: "x", yLabel: "y", series: []).key, .below)
        assertHasLine(try record(Examples.trainingCurves()).script, "set key below center horizontal height 1")
        assertHasLine(try record(Examples.landscape1D()).script, "set key below center horizontal height 1")
        assertHasLine(try record(Examples.bitWidth()).script, "set key below center horizontal height 1")
    }

    func testGradientComparisonIsSmallMultiples() throws {
        let plot = Examples.gradients()
        let (script, files, _) = try record(plot)
        assertHasLine(script, "set multiplot layout 2,2 title 'g_QAT vs g_flat per scale factor' font \",13\"")
        assertHasLine(script, "unset multiplot")
        XCTAssertEqual(script.components(separatedBy: "\nreset\n").count - 1, 4, "one reset at the top and before panels 2-4")
        for factor in ["layer1.0.conv1.w_scale", "layer2.0.conv2.w_scale", "layer4.0.conv1.w_scale", "layer4.2.conv1.w_scale"] {
            assertHasLine(script, "set title '\(factor)'")
        }
        assertHasText(script, "using 2:($1==0 ? $3 : NaN) with lines lw 1 lc rgb \"#e69f00\" title 'g_flat'")
        assertHasText(script, "using 2:($1==1 ? $3 : NaN) with lines lw 1 lc rgb \"#1f77b4\" title 'g_QAT'")
        assertHasLine(script, "set arrow from 1000, graph 0 to 1000, graph 1 nohead dt 2 lc rgb \"#555555\"")
        assertHasLine(script, "set xtics 500")
        // The x axis ends at the last traced step (1990), not at gnuplot's next tic (2000).
        XCTAssertEqual(script.components(separatedBy: "\nset xrange [0:1990]\n").count - 1, 4)
        XCTAssertEqual(script.components(separatedBy: "set key tmargin center horizontal").count - 1, 4,
                       "a one-row key above every panel: equal plot areas, no key over a curve")
        XCTAssertFalse(script.contains("unset key"))
        XCTAssertEqual(files.map(\.path), ["/out/fig-1.csv", "/out/fig-2.csv", "/out/fig-3.csv", "/out/fig-4.csv"])
        assertHasText(script, "plot '/out/fig-3.csv' using")
        XCTAssertEqual(files[0].contents.split(separator: "\n").count, 1 + 400, "header + 2 series x 200 steps")

        let single = GradientComparisonPlot(title: "Fig. 2", traces: [Examples.gradients().traces[0]])
        let one = try record(single).script
        XCTAssertFalse(one.contains("multiplot"))
        assertHasLine(one, "set title 'Fig. 2: layer1.0.conv1.w_scale'")
    }

    func testDisorderHeatmapNamesRowsAndSpansWindows() throws {
        let plot = DisorderHeatmapPlot(title: "Disorder", factors: ["a.w_scale", #"b "odd""#], steps: [100, 200, 300],
                                       disorder: [[0.9, 0.8, 0.7], [0.5, 0.3, .nan]], threshold: 0.3)
        let (script, files, _) = try record(plot)
        assertHasLine(script, #"set ytics ('a.w_scale' 0, 'b "odd"' 1) nomirror"#)
        assertHasLine(script, "set yrange [1.5:-0.5]")
        assertHasLine(script, "set xrange [0:300]")
        assertHasLine(script, "set cbrange [0:1]")
        // τ marked by a one-letter tic, its value in the colour bar's title (a wide tic label pushed the
        // title off the canvas).
        assertHasLine(script, "set cbtics in")
        assertHasLine(script, "set cbtics add ('τ' 0.3)")
        assertHasLine(script, "set cblabel 'disorder (τ = 0.3)' offset 1,0")
        assertHasLine(script, "set xlabel 'training step'")
        assertHasLine(script, "set ylabel \"scale factor\"")
        assertHasLine(script, "plot '/out/fig.csv' using 1:4:2:3:($4-0.5):($4+0.5):5 with boxxyerror fs solid 1.0 noborder lc palette notitle")
        // Each window is the K steps that end at its step.
        XCTAssertEqual(files[0].contents, """
        step,step_low,step_high,row,disorder,factor
        100,0,100,0,0.9,a.w_scale
        200,100,200,0,0.8,a.w_scale
        300,200,300,0,0.7,a.w_scale
        100,0,100,1,0.5,"b ""odd\"\"\"
        200,100,200,1,0.3,"b ""odd\"\"\"
        300,200,300,1,NaN,"b ""odd\"\"\"

        """)
    }

    func testFrozenSetHasBinaryMapAndCountPanel() throws {
        let plot = FrozenSetPlot(title: "Freezing", factors: ["a", "b", "c"], steps: [100, 200],
                                 frozen: [[false, true], [true, true], [false, false]])
        XCTAssertEqual(plot.counts, [1, 2])
        let (script, files, _) = try record(plot)
        assertHasLine(script, "set multiplot layout 2,1 title 'Freezing' font \",13\"")
        assertHasLine(script, "set cbtics (\"active\" 0.25, \"frozen\" 0.75) scale 0")
        assertHasLine(script, "set palette maxcolors 2")
        assertHasLine(script, "set title 'number of frozen scale factors'")
        assertHasLine(script, "set ylabel 'frozen factors'")
        assertHasLine(script, "set yrange [0:3]")
        // Both panels share the x range and margins so the count lines up under the map.
        XCTAssertEqual(script.components(separatedBy: "set xrange [100:300]").count - 1, 2)
        XCTAssertEqual(script.components(separatedBy: "set rmargin at screen 0.84").count - 1, 2)
        assertHasText(script, "with steps lw 2")
        XCTAssertEqual(files[0].contents, """
        step,step_low,step_high,row,frozen,factor
        100,100,200,0,0,a
        200,200,300,0,1,a
        100,100,200,1,1,b
        200,200,300,1,1,b
        100,100,200,2,0,c
        200,200,300,2,0,c

        """)
        XCTAssertEqual(files[1].contents, "series_index,x,y,series\n0,100,1,frozen\n0,200,2,frozen\n0,300,2,frozen\n")
        let alone = FrozenSetPlot(title: "F", factors: ["a"], steps: [1], frozen: [[true]], showCount: false)
        XCTAssertFalse(try record(alone).script.contains("multiplot"))
    }

    func testTrainingCurvesPutAccuracyOnTheRightAxis() throws {
        let plot = TrainingCurvesPlot(title: "Run", steps: [0, 1, 2], loss: [2, 1, 0.5], accuracies: [
            AccuracyCurve(name: "ID", steps: [0, 2], accuracy: [10, 90], outOfDistribution: false),
            AccuracyCurve(name: "OOD", steps: [0, 2], accuracy: [10, 70], outOfDistribution: true),
        ])
        let (script, files, _) = try record(plot)
        assertHasLine(script, "set ylabel 'training loss'")
        assertHasLine(script, "set y2label 'accuracy (%)'")
        assertHasLine(script, "set y2range [0:100]")
        assertHasLine(script, "set xlabel 'training step'")
        assertHasText(script, "dt 2 axes x1y2 title 'ID accuracy'")
        assertHasText(script, "lc rgb \"#ff7f0e\" axes x1y2 title 'OOD accuracy'")
        XCTAssertTrue(files[0].contents.hasSuffix("1,0,10,ID accuracy\n1,2,90,ID accuracy\n2,0,10,OOD accuracy\n2,2,70,OOD accuracy\n"))
    }

    func testBitWidthPlotDrawsErrorBarsDodgedApart() throws {
        let (script, files, _) = try record(Examples.bitWidth())
        assertHasLine(script, "set xtics ('3-bit' 3, '4-bit' 4, '5-bit' 5)")
        assertHasLine(script, "set xrange [2.5:5.5]")
        assertHasText(script, "using ($2-0.06):($1==0 ? $3 : NaN):4 with yerrorlines")
        assertHasText(script, "using 2:($1==1 ? $3 : NaN):4 with yerrorlines")
        assertHasText(script, "using ($2+0.06):($1==2 ? $3 : NaN):4 with yerrorlines")
        assertHasText(script, "dt 2 title 'full precision'")
        assertHasLine(script, "set ylabel 'OOD accuracy (%)'")
        let csv = files[0].contents.split(separator: "\n").map(String.init)
        XCTAssertEqual(csv[0], "series_index,x,y,y_error,series")
        XCTAssertEqual(csv[1], "0,3,71.2,1.1,LSQ")
        XCTAssertEqual(csv.last, "3,5.5,83,NaN,full precision")
    }

    func testFigureLaysOutSpecsAndNumbersDataFiles() throws {
        let figure = Figure(title: "Side by side", columns: 2, specs: [Examples.surface(title: "left"), Examples.contour()])
        XCTAssertEqual(figure.rows, 1)
        let (script, files, _) = try record(figure, target: .png(path: "/out/fig.png"))
        assertHasLine(script, "set terminal pngcairo size 1120,460 font 'Sans,11' noenhanced")
        assertHasLine(script, "set multiplot layout 1,2 title 'Side by side' font \",13\"")
        assertHasText(script, "splot '/out/fig-1.csv' using 1:2:(log")
        assertHasText(script, "splot '/out/fig-2.csv' using 1:2:3 with lines")
        XCTAssertEqual(files.map(\.path), ["/out/fig-1.csv", "/out/fig-2.csv"])
        // No setting of the surface (view, hidden3d) may leak into the contour: a reset sits between them.
        let second = script.components(separatedBy: "\nreset\n").last!
        XCTAssertTrue(second.hasPrefix("set datafile separator comma\nset datafile columnheaders\nset title 'Loss contours"))
    }

    func testNiceTicSteps() {
        XCTAssertEqual(niceTicStep(span: 1990, maxTics: 4), 500)
        XCTAssertEqual(niceTicStep(span: 1, maxTics: 4), 0.5)
        XCTAssertEqual(niceTicStep(span: 30, maxTics: 5), 10)
        XCTAssertEqual(niceTicStep(span: 100, maxTics: 5), 20)
        XCTAssertNil(niceTicStep(span: 0, maxTics: 4))
    }

    func testDataStemDefaultsToTheImagePath() throws {
        XCTAssertEqual(PlotTarget.png(path: "runs/a/fig.png").defaultDataStem, "runs/a/fig")
        XCTAssertEqual(PlotTarget.svg(path: "fig").defaultDataStem, "fig")
        XCTAssertNil(PlotTarget.text(columns: 80, lines: 24, color: .none).defaultDataStem)
        let plotter = RecordingPlotter()
        let result = try plotter.render(Examples.linePlot(), to: .png(path: "runs/a/fig.png"))
        XCTAssertEqual(result.dataFiles, ["runs/a/fig.csv"])
        assertHasText(plotter.scripts[0], "plot 'runs/a/fig.csv' using")
    }

    func testSixelTargetWritesToStandardOutput() throws {
        let (script, _, result) = try record(Examples.linePlot(), target: .sixel(size: PixelSize(width: 600, height: 400)))
        assertHasLine(script, "set terminal sixelgd size 600,400 font 'Sans,11' noenhanced truecolor")
        assertHasLine(script, "unset output")
        XCTAssertNil(result.outputPath)
    }

    func testRecordingPlotterSurfacesItsError() {
        let plotter = RecordingPlotter(error: .gnuplotMissing(dataFiles: ["/out/fig.csv"]))
        XCTAssertThrowsError(try plotter.render(Examples.linePlot(), to: .png(path: "/out/fig.png"))) { error in
            XCTAssertEqual(error as? PlotError, .gnuplotMissing(dataFiles: ["/out/fig.csv"]))
            XCTAssertTrue("\(error)".contains("apt-get install gnuplot-nox"), "\(error)")
        }
        XCTAssertEqual(plotter.scripts.count, 1)
    }

    func testEmptyLinePlotStillDrawsAFrame() throws {
        let (script, files, _) = try record(LinePlot(title: "nothing yet", xLabel: "step", yLabel: "loss", series: []))
        assertHasLine(script, "plot NaN notitle")
        XCTAssertEqual(files[0].contents, "series_index,x,y,series\n")
    }
}
