// The shape every figure kind shares: a spec is a value that yields panels (gnuplot commands plus the
// CSV tables they read); `script(target:dataStem:)` wraps the panels in terminal, output and multiplot
// commands. The data always goes to CSV files with a header next to the image, never inline, so a user
// can re-plot it elsewhere (pandas, matplotlib) and the script stays short and readable.
import Foundation

// MARK: - Data files

/// A CSV table: a header line, then rows of already formatted cells.
///
/// Grids for `splot` need a blank line after each scan line (gnuplot's grid format, docs/landscape.md:
/// Z[row = y index][col = x index]); CSV readers such as pandas skip blank lines, so the file stays valid CSV.
public struct DataTable: Equatable, Sendable {
    public var header: [String]
    public var rows: [[String]]
    /// Row indices after which a blank line is written.
    public var blankLineAfter: Set<Int>

    public init(header: [String], rows: [[String]], blankLineAfter: Set<Int> = []) {
        for (index, row) in rows.enumerated() {
            precondition(row.count == header.count,
                         "DataTable row \(index) has \(row.count) cells, header has \(header.count): \(header)")
        }
        self.header = header
        self.rows = rows
        self.blankLineAfter = blankLineAfter
    }

    /// RFC 4180 text: cells containing a comma, quote or line break are quoted, quotes doubled.
    /// Name columns are always last in our tables, so gnuplot's column numbers never depend on quoting.
    public var csv: String {
        func cell(_ text: String) -> String {
            guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
            return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        var text = header.map(cell).joined(separator: ",") + "\n"
        for (index, row) in rows.enumerated() {
            text += row.map(cell).joined(separator: ",") + "\n"
            if blankLineAfter.contains(index) { text += "\n" }
        }
        return text
    }
}

/// A file a plot reads: where it goes and what it holds.
public struct DataFile: Equatable, Sendable {
    public var path: String
    public var contents: String
    public init(path: String, contents: String) { self.path = path; self.contents = contents }
}

// MARK: - Panels and specs

/// One plot inside a figure: gnuplot commands (from `set title` to the `plot`/`splot` line) and the tables
/// they read. Commands name table `k` through `Panel.data(k)`, replaced by the quoted CSV path when the
/// script is assembled.
public struct Panel: Equatable, Sendable {
    public var commands: [String]
    public var tables: [DataTable]
    /// The Swift-drawn view for text terminals, for kinds gnuplot's `dumb` terminal cannot fill (pm3d,
    /// filled boxes). Nil for line plots, which `dumb` draws well.
    public var terminalHeatmap: TerminalHeatmap?

    public init(commands: [String], tables: [DataTable], terminalHeatmap: TerminalHeatmap? = nil) {
        self.commands = commands
        self.tables = tables
        self.terminalHeatmap = terminalHeatmap
    }

    /// The placeholder for table `index` inside `commands`. It holds a NUL, which `gnuplotString` never
    /// emits, so user text can never be mistaken for it.
    public static func data(_ index: Int) -> String { "\u{0}data\(index)\u{0}" }
}

/// Width and height of an image in pixels.
public struct PixelSize: Equatable, Sendable {
    public var width: Int
    public var height: Int
    public init(width: Int, height: Int) {
        precondition(width > 0 && height > 0, "PixelSize needs positive sides, got \(width)x\(height)")
        self.width = width; self.height = height
    }
}

/// A figure kind. Most kinds are one panel; small multiples (`GradientComparisonPlot`) and `Figure` are
/// several panels in a `rows` x `columns` gnuplot multiplot layout.
public protocol PlotSpec {
    /// The figure title (the multiplot title when there are several panels).
    var title: String { get }
    /// The panels, in layout order (left to right, top to bottom).
    func panels() -> [Panel]
    /// Rows and columns of the multiplot layout; (1, 1) draws a single plot without multiplot.
    var layout: (rows: Int, columns: Int) { get }
    /// A size at which the figure reads well in a paper (each panel about 560x400 px).
    var suggestedSize: PixelSize { get }
}

extension PlotSpec {
    public var layout: (rows: Int, columns: Int) { (1, 1) }
    public var suggestedSize: PixelSize {
        let (rows, columns) = layout
        if rows == 1 && columns == 1 { return PixelSize(width: 800, height: 560) }
        return PixelSize(width: min(560 * columns, 2400), height: min(420 * rows + 40, 2400))
    }
}

// MARK: - Targets

/// Whether and how text output may use colour.
public enum TerminalColorMode: String, Equatable, Sendable, CaseIterable {
    /// Plain text: gnuplot `dumb mono`, the ASCII shade ramp for heatmaps.
    case none
    /// xterm 256-colour palette escapes.
    case ansi256
    /// 24-bit escapes (`COLORTERM=truecolor`).
    case truecolor
}

/// Where a figure goes.
public enum PlotTarget: Equatable, Sendable {
    /// A PNG through cairo (anti-aliased, UTF-8 labels). `font` is gnuplot's "face,size"; a nil size
    /// takes the spec's `suggestedSize`.
    case png(path: String, size: PixelSize? = nil, font: String = "Sans,11")
    /// An SVG file (vector; for papers).
    case svg(path: String, size: PixelSize? = nil, font: String = "Sans,11")
    /// Text for a terminal of `columns` x `lines`: gnuplot's `dumb` terminal for line plots, the Swift
    /// heatmap (`TerminalHeatmap`) for surfaces and heatmaps. The text lands in `PlotResult.terminalOutput`.
    case text(columns: Int, lines: Int, color: TerminalColorMode)
    /// A sixel image stream (gnuplot `sixelgd`) for terminals that show sixels (see `SixelSupport`).
    /// The escape stream lands in `PlotResult.terminalOutput`.
    case sixel(size: PixelSize? = nil, font: String = "Sans,11")

    /// The image file this target writes, if any.
    public var outputPath: String? {
        switch self {
        case .png(let path, _, _), .svg(let path, _, _): return path
        case .text, .sixel: return nil
        }
    }

    /// The default stem for data files: the image path without its extension (`runs/fig.png` ->
    /// `runs/fig`, so the data is `runs/fig.csv`). Nil for terminal targets, which have no file.
    public var defaultDataStem: String? {
        guard let path = outputPath else { return nil }
        let url = URL(fileURLWithPath: path)
        let extensionLength = url.pathExtension.isEmpty ? 0 : url.pathExtension.count + 1
        return String(path.dropLast(extensionLength))
    }

    /// The `set terminal` (and `set output`) lines; `suggested` stands in for a nil size.
    func terminalCommands(suggested: PixelSize) -> [String] {
        switch self {
        case .png(let path, let size, let font):
            let size = size ?? suggested
            return ["set terminal pngcairo size \(size.width),\(size.height) font \(gnuplotString(font)) noenhanced",
                    "set output \(gnuplotString(path))"]
        case .svg(let path, let size, let font):
            let size = size ?? suggested
            return ["set terminal svg size \(size.width),\(size.height) font \(gnuplotString(font)) noenhanced background \"white\"",
                    "set output \(gnuplotString(path))"]
        case .text(let columns, let lines, let color):
            let mode: String
            switch color {
            case .none: mode = "mono"
            case .ansi256: mode = "ansi256"
            case .truecolor: mode = "ansirgb"
            }
            return ["set terminal dumb size \(max(columns, 20)),\(max(lines, 8)) noenhanced \(mode)", "unset output"]
        case .sixel(let size, let font):
            let size = size ?? suggested
            return ["set terminal sixelgd size \(size.width),\(size.height) font \(gnuplotString(font)) noenhanced truecolor",
                    "unset output"]
        }
    }
}

// MARK: - Scripts

/// A complete gnuplot script and the data files it reads.
public struct PlotScript: Equatable, Sendable {
    public var text: String
    public var dataFiles: [DataFile]
    public init(text: String, dataFiles: [DataFile]) { self.text = text; self.dataFiles = dataFiles }
}

extension PlotSpec {
    /// The gnuplot script drawing this spec on `target`, with its data files.
    ///
    /// Data files are `<dataStem>.csv` when the figure has one table, else `<dataStem>-<n>.csv` (n from 1,
    /// in panel order). Every script starts with `reset` and every multiplot panel after the first starts
    /// with `reset` too (gnuplot keeps terminal, output and the multiplot layout across `reset`), so no
    /// setting leaks from one plot into the next.
    public func script(target: PlotTarget, dataStem: String) -> PlotScript {
        let panels = self.panels()
        precondition(!panels.isEmpty, "PlotSpec \(type(of: self)) produced no panels")
        let (paths, files) = dataFiles(panels: panels, dataStem: dataStem)
        let (rows, columns) = layout
        precondition(panels.count <= rows * columns,
                     "\(type(of: self)) has \(panels.count) panels for a \(rows)x\(columns) layout")
        let text = assembleScript(title: title, panels: panels, paths: paths,
                                  multiplot: panels.count > 1 || rows * columns > 1 ? (rows, columns) : nil,
                                  target: target, size: suggestedSize)
        return PlotScript(text: text, dataFiles: files)
    }
}

/// The CSV path of each table of each panel, and the files.
func dataFiles(panels: [Panel], dataStem: String) -> (paths: [[String]], files: [DataFile]) {
    let tableCount = panels.reduce(0) { $0 + $1.tables.count }
    var files: [DataFile] = []
    var paths: [[String]] = []
    for panel in panels {
        var panelPaths: [String] = []
        for table in panel.tables {
            let path = tableCount == 1 ? "\(dataStem).csv" : "\(dataStem)-\(files.count + 1).csv"
            files.append(DataFile(path: path, contents: table.csv))
            panelPaths.append(path)
        }
        paths.append(panelPaths)
    }
    return (paths, files)
}

/// Terminal and output lines, then the panels (inside `set multiplot layout` when `multiplot` is set).
func assembleScript(title: String, panels: [Panel], paths: [[String]], multiplot: (rows: Int, columns: Int)?,
                    target: PlotTarget, size: PixelSize) -> String {
    var lines = ["# \(commentText(title))",
                 "# gnuplot script written by fqat-shell; data: \(paths.joined().joined(separator: ", "))",
                 "reset",
                 "set encoding utf8"]
    lines += target.terminalCommands(suggested: size)
    if let multiplot {
        lines.append("set multiplot layout \(multiplot.rows),\(multiplot.columns) title \(gnuplotString(title)) font \",13\"")
    }
    for (panelIndex, panel) in panels.enumerated() {
        if multiplot != nil && panelIndex > 0 { lines.append("reset") }
        lines.append("set datafile separator comma")
        lines.append("set datafile columnheaders")
        for command in panel.commands {
            var line = command
            for (index, path) in paths[panelIndex].enumerated() {
                line = line.replacingOccurrences(of: Panel.data(index), with: gnuplotString(path))
            }
            precondition(!line.contains("\u{0}"), "Panel command names a table it does not have: \(command)")
            lines.append(line)
        }
    }
    if multiplot != nil { lines.append("unset multiplot") }
    lines.append("unset output")
    return lines.joined(separator: "\n") + "\n"
}

// MARK: - Figures of several specs

/// Several specs side by side as one figure (gnuplot `set multiplot layout rows,columns`), e.g. LSQ+SAGM
/// vs FQAT loss surfaces per held-out domain (FQAT paper Fig. 7). Panels fill the layout in order; a spec
/// with several panels takes that many consecutive cells.
public struct Figure: PlotSpec {
    public var title: String
    public var rows: Int
    public var columns: Int
    public var specs: [any PlotSpec]

    public init(title: String, rows: Int, columns: Int, specs: [any PlotSpec]) {
        precondition(rows > 0 && columns > 0, "Figure layout must be positive, got \(rows)x\(columns)")
        self.title = title
        self.rows = rows
        self.columns = columns
        self.specs = specs
    }

    /// A layout with `columns` columns and as many rows as the panels need.
    public init(title: String, columns: Int, specs: [any PlotSpec]) {
        let count = specs.reduce(0) { $0 + $1.panels().count }
        self.init(title: title, rows: max(1, (count + columns - 1) / columns), columns: columns, specs: specs)
    }

    public var layout: (rows: Int, columns: Int) { (rows, columns) }
    public func panels() -> [Panel] { specs.flatMap { $0.panels() } }
}
