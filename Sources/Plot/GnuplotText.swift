// Text helpers shared by every plot kind: gnuplot string literals, numbers, colour palettes.
// Foundation only: the Plot module takes plain arrays of Double/String and knows nothing of tensors.
import Foundation
import TextEscaping

/// Quotes `text` as a gnuplot string expression that gnuplot shows literally and never executes.
///
/// gnuplot runs backquoted text inside double-quoted strings as a shell command (command-line substitution
/// happens on the whole input line before parsing; only single-quoted strings are exempt). So the text is
/// written as a single-quoted string, where a quote is doubled (`''`) and nothing else is special — no
/// backslash escapes, no backquote substitution, no `@` macros. Newlines and tabs, which a single-quoted
/// string cannot hold, are joined in as `."\n".` / `."\t".` (gnuplot's string concatenation); other control
/// characters (which gnuplot cannot show and which would end a script line) are dropped. Terminals are set
/// `noenhanced`, so `_`, `^`, `{`, `}`, `@` and `&` in layer names such as `layer1.0.conv_1` print literally.
public func gnuplotString(_ text: String) -> String {
    "'" + escaped(text, replacing: ["'": "''", "\n": "'.\"\\n\".'", "\t": "'.\"\\t\".'"],
                  dropping: { $0.value < 0x20 || $0.value == 0x7F }) + "'"
}

/// A number as gnuplot and CSV readers parse it: integers without a fraction, otherwise the shortest
/// round-trip decimal; `NaN`, `Inf`, `-Inf` for the special values (gnuplot and pandas read all three).
public func plotNumber(_ value: Double) -> String {
    if value.isNaN { return "NaN" }
    if value.isInfinite { return value > 0 ? "Inf" : "-Inf" }
    if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
    return "\(value)"
}

/// One line of text safe inside a `#` comment (no line breaks).
func commentText(_ text: String) -> String {
    String(text.unicodeScalars.map { $0.value < 0x20 ? " " : Character($0) })
}

/// A colour as 8-bit red, green, blue.
public struct RGB: Equatable, Hashable, Sendable {
    public var red: UInt8
    public var green: UInt8
    public var blue: UInt8
    public init(_ red: UInt8, _ green: UInt8, _ blue: UInt8) {
        self.red = red; self.green = green; self.blue = blue
    }
    /// `#rrggbb`, as gnuplot's `rgb "..."` and HTML take it.
    public var hex: String { String(format: "#%02x%02x%02x", red, green, blue) }
}

/// A colour map: stops at positions in [0, 1], linearly interpolated. The same stops drive gnuplot's
/// `set palette defined` and the Swift terminal heatmap, so a terminal view matches the PNG.
public struct Palette: Equatable, Sendable {
    public struct Stop: Equatable, Sendable {
        public var position: Double
        public var color: RGB
        public init(_ position: Double, _ color: RGB) { self.position = position; self.color = color }
    }
    public var name: String
    public var stops: [Stop]

    public init(name: String, stops: [Stop]) {
        precondition(stops.count >= 2, "Palette \(name) needs at least 2 stops, got \(stops.count)")
        self.name = name
        self.stops = stops.sorted { $0.position < $1.position }
    }

    /// matplotlib's viridis (9 samples of the published table): the seaborn heatmap of Li et al. 2018 and
    /// the disorder map (perceptually uniform, still ordered when printed in grey).
    public static let viridis = Palette(name: "viridis", stops: [
        Stop(0.000, RGB(68, 1, 84)), Stop(0.125, RGB(71, 44, 122)), Stop(0.250, RGB(59, 81, 139)),
        Stop(0.375, RGB(44, 113, 142)), Stop(0.500, RGB(33, 144, 141)), Stop(0.625, RGB(39, 173, 129)),
        Stop(0.750, RGB(92, 200, 99)), Stop(0.875, RGB(170, 220, 50)), Stop(1.000, RGB(253, 231, 37)),
    ])
    /// matplotlib's "summer" (green to yellow): the contour colour map of Li et al. `plot_2D.py`.
    public static let summer = Palette(name: "summer", stops: [
        Stop(0.0, RGB(0, 128, 102)), Stop(1.0, RGB(255, 255, 102)),
    ])
    /// matplotlib's "coolwarm" (blue, grey, red): the 3-D surface colour map of Li et al. `plot_2D.py`.
    public static let coolwarm = Palette(name: "coolwarm", stops: [
        Stop(0.0, RGB(59, 76, 192)), Stop(0.25, RGB(141, 176, 254)), Stop(0.5, RGB(221, 221, 221)),
        Stop(0.75, RGB(244, 154, 123)), Stop(1.0, RGB(180, 4, 38)),
    ])
    /// Two colours for binary maps: 0 = active (light grey), 1 = frozen (dark blue).
    public static let frozen = Palette(name: "frozen", stops: [
        Stop(0.0, RGB(235, 235, 235)), Stop(1.0, RGB(31, 70, 144)),
    ])

    /// The colour at `fraction` in [0, 1] (clamped; NaN maps to 0), linearly interpolated between stops.
    public func color(at fraction: Double) -> RGB {
        let t = fraction.isNaN ? 0 : min(max(fraction, 0), 1)
        for (index, stop) in stops.enumerated() where stop.position >= t {
            let lower = stops[max(index - 1, 0)]
            let span = stop.position - lower.position
            let w = span > 0 ? (t - lower.position) / span : 0
            func mix(_ a: UInt8, _ b: UInt8) -> UInt8 {
                UInt8((Double(a) + (Double(b) - Double(a)) * w).rounded())
            }
            return RGB(mix(lower.color.red, stop.color.red), mix(lower.color.green, stop.color.green),
                       mix(lower.color.blue, stop.color.blue))
        }
        return stops[stops.count - 1].color
    }

    /// `set palette defined (0 "#440154", ...)`.
    var gnuplotCommand: String {
        let entries = stops.map { "\(plotNumber($0.position)) \"\($0.color.hex)\"" }.joined(separator: ", ")
        return "set palette defined (\(entries))"
    }
}

/// The default cycle of series colours (matplotlib's tab10), so figures look like the papers' figures.
public let seriesColors: [RGB] = [
    RGB(31, 119, 180), RGB(255, 127, 14), RGB(44, 160, 44), RGB(214, 39, 40), RGB(148, 103, 189),
    RGB(140, 86, 75), RGB(227, 119, 194), RGB(127, 127, 127), RGB(188, 189, 34), RGB(23, 190, 207),
]
