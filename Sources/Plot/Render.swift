// One entry point for the shell's `plot` and `landscape` commands: a spec and a target in, a result out.
// Image and sixel targets go through gnuplot whole; text targets draw heatmap-like panels in Swift
// (gnuplot's `dumb` cannot fill them) and line panels through gnuplot `dumb`, laid out as the figure is.
import Foundation

extension Plotter {
    /// Draws `spec` on `target`.
    ///
    /// Data files go to `<dataStem>.csv` (or `<dataStem>-<n>.csv` for several tables). `dataStem` defaults
    /// to the image path without its extension; for terminal targets it defaults to
    /// `<temporary folder>/fqat-plot`. The CSV files are written in every case, also when gnuplot is
    /// missing (then `PlotError.gnuplotMissing` lists them).
    public func render(_ spec: any PlotSpec, to target: PlotTarget, dataStem: String? = nil) throws -> PlotResult {
        let stem = dataStem ?? target.defaultDataStem
            ?? (NSTemporaryDirectory() as NSString).appendingPathComponent("fqat-plot")
        if case .text(let columns, let lines, let color) = target {
            return try renderText(spec, columns: columns, lines: lines, color: color, dataStem: stem)
        }
        let script = spec.script(target: target, dataStem: stem)
        var result = try render(script: script.text, dataFiles: script.dataFiles)
        result.outputPath = target.outputPath
        return result
    }

    private func renderText(_ spec: any PlotSpec, columns: Int, lines: Int, color: TerminalColorMode,
                            dataStem: String) throws -> PlotResult {
        let panels = spec.panels()
        precondition(!panels.isEmpty, "PlotSpec \(type(of: spec)) produced no panels")
        let target = PlotTarget.text(columns: columns, lines: lines, color: color)
        // Only line plots: gnuplot draws the whole figure, multiplot included.
        if panels.allSatisfy({ $0.terminalHeatmap == nil }) {
            let script = spec.script(target: target, dataStem: dataStem)
            var result = try render(script: script.text, dataFiles: script.dataFiles)
            result.terminalOutput = Self.cleanDumbOutput(result.terminalOutput)
            return result
        }
        let (paths, files) = dataFiles(panels: panels, dataStem: dataStem)
        try write(dataFiles: files)
        // Each row of the layout gets the full height (output scrolls) and an equal share of the width.
        let layoutColumns = max(1, min(spec.layout.columns, panels.count))
        let gap = 3
        let panelWidth = max((columns - gap * (layoutColumns - 1)) / layoutColumns, 20)
        var blocks: [String] = []
        var messages: [String] = []
        for (index, panel) in panels.enumerated() {
            if let heatmap = panel.terminalHeatmap {
                blocks.append(heatmap.render(columns: panelWidth, lines: lines, color: color))
            } else {
                let text = assembleScript(title: spec.title, panels: [panel], paths: [paths[index]], multiplot: nil,
                                          target: .text(columns: panelWidth, lines: lines, color: color), size: spec.suggestedSize)
                let result = try render(script: text, dataFiles: [])
                blocks.append(Self.cleanDumbOutput(result.terminalOutput))
                if !result.messages.isEmpty { messages.append(result.messages) }
            }
        }
        var rows: [String] = []
        for start in stride(from: 0, to: blocks.count, by: layoutColumns) {
            rows.append(sideBySide(Array(blocks[start..<min(start + layoutColumns, blocks.count)]), gap: gap))
        }
        var text = rows.joined(separator: "\n")
        if panels.count > 1 { text = spec.title + "\n\n" + text }
        return PlotResult(outputPath: nil, terminalOutput: text, messages: messages.joined(separator: "\n"),
                          dataFiles: files.map(\.path))
    }

    /// gnuplot's `dumb` output without the form feed it starts each page with, and without trailing blanks.
    static func cleanDumbOutput(_ text: String) -> String {
        var text = text
        while text.first == "\u{0C}" { text.removeFirst() }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            var line = String(line)
            while line.last == " " { line.removeLast() }
            return line
        }
        var trimmed = lines
        while trimmed.last == "" { trimmed.removeLast() }
        while trimmed.first == "" { trimmed.removeFirst() }
        return trimmed.joined(separator: "\n") + "\n"
    }
}
