// Heatmaps drawn as text in Swift. gnuplot's `dumb` terminal cannot fill pm3d surfaces or solid boxes
// (ARCHITECTURE.md, "Facts checked"), so surfaces, heatmaps, contours' underlying grids and the
// disorder/frozen maps are shown in a terminal as coloured background blocks (ANSI 256 or 24-bit) with
// a colour bar, or, without colour, as a plain ASCII shade ramp.
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A grid of values ready to draw as text, rows in display order (row 0 is the top line).
public struct TerminalHeatmap: Equatable, Sendable {
    /// How row labels are shown: every shown row (scale-factor names) or top, middle and bottom only
    /// (numeric y values).
    public enum RowAxis: Equatable, Sendable { case categorical, numeric }

    public var title: String
    public var rows: [[Double]]
    public var rowLabels: [String]
    public var rowAxis: RowAxis
    /// Labels under the left and right edge of the plot area.
    public var xFirst: String
    public var xLast: String
    public var xLabel: String
    public var yLabel: String
    public var zRange: ClosedRange<Double>
    public var zLabel: String
    public var palette: Palette

    /// The shade ramp for plain text, lightest (lowest value) first. Ten levels.
    public static let shadeRamp: [Character] = [" ", ".", ":", "-", "=", "+", "*", "#", "%", "@"]
    /// Longest row label shown; longer names keep their end ("..yer4.2.conv1"), which tells layers apart.
    public static let maxLabelWidth = 24

    public init(title: String, rows: [[Double]], rowLabels: [String], rowAxis: RowAxis, xFirst: String,
                xLast: String, xLabel: String, yLabel: String, zRange: ClosedRange<Double>, zLabel: String,
                palette: Palette) {
        precondition(rowLabels.count == rows.count, "TerminalHeatmap: \(rowLabels.count) labels for \(rows.count) rows")
        let width = rows.first?.count ?? 0
        for (index, row) in rows.enumerated() {
            precondition(row.count == width, "TerminalHeatmap: row \(index) has \(row.count) values, row 0 has \(width)")
        }
        self.title = title; self.rows = rows; self.rowLabels = rowLabels; self.rowAxis = rowAxis
        self.xFirst = xFirst; self.xLast = xLast; self.xLabel = xLabel; self.yLabel = yLabel
        self.zRange = zRange; self.zLabel = zLabel; self.palette = palette
    }

    /// The heatmap in at most `columns` x `lines` characters.
    ///
    /// Layout: the title; one text line per shown row (`label |cells|`); the x axis; the first and last x
    /// values; the axis names; the colour bar `low [ramp] high  name`. Each value takes two columns when
    /// the grid fits (terminal cells are about twice as tall as wide, so the cells come out square),
    /// otherwise rows and columns are sampled at the nearest grid index, both edges included. Values outside `zRange` take the
    /// end colours; NaN shows as `?`.
    public func render(columns: Int, lines: Int, color: TerminalColorMode) -> String {
        let gridRows = rows.count
        let gridColumns = rows.first?.count ?? 0
        var output = [title]
        guard gridRows > 0, gridColumns > 0 else {
            output.append("(no data)")
            return output.joined(separator: "\n") + "\n"
        }
        // Shown rows: sample the grid when it has more rows than fit (5 lines go to title, axis, labels, bar).
        let shownRows = max(1, min(gridRows, lines - 5))
        let rowSource = Self.sample(gridRows, into: shownRows)
        var labels = Array(repeating: "", count: shownRows)
        for (shown, source) in rowSource.enumerated() {
            let keep: Bool
            switch rowAxis {
            case .categorical: keep = true
            case .numeric: keep = shown == 0 || shown == shownRows - 1 || (shownRows >= 5 && shown == shownRows / 2)
            }
            if keep { labels[shown] = Self.clip(rowLabels[source], to: Self.maxLabelWidth) }
        }
        let labelWidth = max(labels.map(\.count).max() ?? 0, 1)
        // Plot area: two text columns per value if they fit, else sampled to the space left of the frame.
        let available = max(columns - labelWidth - 3, 4)
        let areaWidth = min(2 * gridColumns, available)
        let columnSource = areaWidth == 2 * gridColumns ? (0..<areaWidth).map { $0 / 2 }
            : Self.sample(gridColumns, into: areaWidth)

        for (shown, source) in rowSource.enumerated() {
            let cells = columnSource.map { cell(rows[source][$0], color: color) }.joined()
            let reset = color == .none ? "" : "\u{1B}[0m"
            output.append(Self.padLeft(labels[shown], labelWidth) + " |" + cells + reset + "|")
        }
        let indent = String(repeating: " ", count: labelWidth + 1)
        output.append(indent + "+" + String(repeating: "-", count: areaWidth) + "+")
        let gap = max(1, areaWidth - xFirst.count - xLast.count)
        output.append(indent + " " + xFirst + String(repeating: " ", count: gap) + xLast)
        output.append(indent + " x: " + xLabel + "   y: " + yLabel)
        // Colour bar: up to 20 cells spanning zRange, sampled at the cell centres.
        let barWidth = max(min(areaWidth, 20), 2)
        let span = zRange.upperBound - zRange.lowerBound
        let bar = (0..<barWidth).map { k -> String in
            cell(zRange.lowerBound + (Double(k) + 0.5) / Double(barWidth) * span, color: color, width: 1)
        }.joined() + (color == .none ? "" : "\u{1B}[0m")
        output.append(indent + " " + axisLabel(zRange.lowerBound) + " [" + bar + "] " + axisLabel(zRange.upperBound)
                      + "  " + zLabel)
        return output.map { Self.trimTrailingSpaces($0) }.joined(separator: "\n") + "\n"
    }

    /// Position of `value` in the colour range, clamped to [0, 1]; a flat range maps to the middle.
    func fraction(_ value: Double) -> Double {
        let span = zRange.upperBound - zRange.lowerBound
        guard span > 0 else { return 0.5 }
        return min(max((value - zRange.lowerBound) / span, 0), 1)
    }

    /// One value drawn `width` text columns wide (the plot area draws each column separately).
    func cell(_ value: Double, color: TerminalColorMode, width: Int = 1) -> String {
        if value.isNaN {
            return (color == .none ? "" : "\u{1B}[0m") + String(repeating: "?", count: width)
        }
        let t = fraction(value)
        switch color {
        case .none:
            let index = min(Int(t * Double(Self.shadeRamp.count)), Self.shadeRamp.count - 1)
            return String(repeating: Self.shadeRamp[index], count: width)
        case .ansi256:
            let rgb = palette.color(at: t)
            func level(_ c: UInt8) -> Int { Int((Double(c) / 255 * 5).rounded()) }
            let index = 16 + 36 * level(rgb.red) + 6 * level(rgb.green) + level(rgb.blue)
            return "\u{1B}[48;5;\(index)m" + String(repeating: " ", count: width)
        case .truecolor:
            let rgb = palette.color(at: t)
            return "\u{1B}[48;2;\(rgb.red);\(rgb.green);\(rgb.blue)m" + String(repeating: " ", count: width)
        }
    }

    /// `shown` indices into `count` values, nearest neighbour, first and last always included (so the
    /// edge labels name the values drawn there).
    static func sample(_ count: Int, into shown: Int) -> [Int] {
        guard shown > 1, count > 1 else { return Array(repeating: 0, count: shown) }
        return (0..<shown).map { Int((Double($0) * Double(count - 1) / Double(shown - 1)).rounded()) }
    }

    static func clip(_ label: String, to width: Int) -> String {
        label.count <= width ? label : ".." + String(label.suffix(width - 2))
    }

    static func padLeft(_ text: String, _ width: Int) -> String {
        String(repeating: " ", count: max(0, width - text.count)) + text
    }

    static func trimTrailingSpaces(_ line: String) -> String {
        var line = line
        while line.last == " " { line.removeLast() }
        return line
    }
}

// MARK: - Laying text blocks side by side

/// Text with ANSI escape sequences removed: CSI (`ESC [ ... final`), OSC (`ESC ] ... BEL|ST`) and DCS
/// (`ESC P ... ST`, which carries sixel images).
public func strippingTerminalEscapes(_ text: String) -> String {
    var result = String.UnicodeScalarView()
    var scalars = Array(text.unicodeScalars)[...]
    while let scalar = scalars.popFirst() {
        guard scalar == "\u{1B}", let kind = scalars.first else {
            result.append(scalar)
            continue
        }
        scalars.removeFirst()
        switch kind {
        case "[":
            // Parameters and intermediates, then one final byte in 0x40...0x7E.
            while let next = scalars.popFirst(), !(0x40...0x7E).contains(next.value) {}
        case "]", "P", "_", "^":
            // String until BEL or ESC \.
            while let next = scalars.popFirst() {
                if next == "\u{07}" { break }
                if next == "\u{1B}" { if scalars.first == "\\" { scalars.removeFirst() }; break }
            }
        default:
            break  // A two-character escape: dropped.
        }
    }
    return String(result)
}

/// Joins text blocks side by side, `gap` spaces apart, each padded to its widest visible line.
func sideBySide(_ blocks: [String], gap: Int = 3) -> String {
    let split = blocks.map { $0.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).dropLastEmpty() }
    let widths = split.map { $0.map { strippingTerminalEscapes($0).count }.max() ?? 0 }
    let height = split.map(\.count).max() ?? 0
    var lines: [String] = []
    for row in 0..<height {
        var line = ""
        for (index, block) in split.enumerated() {
            let text = row < block.count ? block[row] : ""
            line += text
            if index < split.count - 1 {
                line += String(repeating: " ", count: widths[index] - strippingTerminalEscapes(text).count + gap)
            }
        }
        lines.append(TerminalHeatmap.trimTrailingSpaces(line))
    }
    return lines.joined(separator: "\n") + "\n"
}

private extension Array where Element == String {
    func dropLastEmpty() -> [String] { last == "" ? Array(dropLast()) : self }
}

// MARK: - Terminal facts

/// Columns and lines of a text terminal.
public struct TerminalSize: Equatable, Sendable {
    public var columns: Int
    public var lines: Int
    public init(columns: Int, lines: Int) { self.columns = columns; self.lines = lines }

    /// The size of the terminal on standard output (TIOCGWINSZ); else `COLUMNS`/`LINES` from the
    /// environment; else 80 x 24.
    public static func current(environment: [String: String] = ProcessInfo.processInfo.environment) -> TerminalSize {
        var size = winsize()
        if ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0, size.ws_row > 0 {
            return TerminalSize(columns: Int(size.ws_col), lines: Int(size.ws_row))
        }
        let columns = environment["COLUMNS"].flatMap(Int.init) ?? 80
        let lines = environment["LINES"].flatMap(Int.init) ?? 24
        return TerminalSize(columns: max(columns, 20), lines: max(lines, 8))
    }
}

extension TerminalColorMode {
    /// The colour mode for output on a terminal: none when `NO_COLOR` is set and not empty
    /// (no-color.org), when the output is not a terminal, or when `TERM=dumb`; 24-bit when `COLORTERM`
    /// says `truecolor` or `24bit`; otherwise the 256-colour palette, which every current terminal has.
    public static func detect(environment: [String: String], isTerminal: Bool) -> TerminalColorMode {
        if let noColor = environment["NO_COLOR"], !noColor.isEmpty { return .none }
        guard isTerminal else { return .none }
        let term = environment["TERM"] ?? ""
        if term == "dumb" || term.isEmpty { return .none }
        let colorTerm = (environment["COLORTERM"] ?? "").lowercased()
        if colorTerm == "truecolor" || colorTerm == "24bit" { return .truecolor }
        return .ansi256
    }

    /// `detect` for this process's standard output.
    public static func current(environment: [String: String] = ProcessInfo.processInfo.environment) -> TerminalColorMode {
        detect(environment: environment, isTerminal: isatty(STDOUT_FILENO) == 1)
    }
}

/// Whether the terminal probably shows sixel images.
public enum SixelSupport {
    /// An explicit setting (`true`/`false`, e.g. from `set sixel on`) wins. Otherwise a guess from the
    /// environment: `TERM` mentioning sixel or naming a terminal known to draw sixels by default (mlterm,
    /// foot, contour, yaft), `TERM_PROGRAM` WezTerm, mlterm or contour, or Konsole 22.04 and later.
    /// Inside tmux or screen it answers false (they pass sixels only when built and set up for it).
    /// A certain answer needs the terminal's reply to a device-attributes query, which needs raw input
    /// mode; that belongs to the REPL, not here.
    public static func guess(environment: [String: String], explicitSetting: Bool? = nil) -> Bool {
        if let explicitSetting { return explicitSetting }
        let term = (environment["TERM"] ?? "").lowercased()
        if environment["TMUX"] != nil || term.hasPrefix("screen") || term.hasPrefix("tmux") { return false }
        if term.contains("sixel") { return true }
        let sixelTerms = ["mlterm", "foot", "foot-extra", "contour", "yaft-256color"]
        if sixelTerms.contains(term) { return true }
        let program = (environment["TERM_PROGRAM"] ?? "").lowercased()
        if ["wezterm", "mlterm", "contour"].contains(program) { return true }
        if let konsole = environment["KONSOLE_VERSION"].flatMap(Int.init), konsole >= 220400 { return true }
        return false
    }
}
