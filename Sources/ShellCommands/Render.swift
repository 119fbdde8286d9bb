// Text rendering of engine results: aligned tables, percentages, progress. The engine returns
// numbers; only this module turns them into text.
import Foundation

enum Render {
    /// An aligned table; numeric-looking columns are right-aligned.
    /// One CSV line (RFC 4180): a field holding a comma, a double quote, CR or LF is wrapped in double
    /// quotes, with each double quote inside doubled; lines end in LF, as the rest of our files do.
    static func csvLine(_ fields: [String]) -> String {
        fields.map { f in
            f.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" || $0 == "\r\n" })
                ? "\"" + f.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : f
        }.joined(separator: ",") + "\n"
    }

    static func table(_ header: [String], _ rows: [[String]], indent: String = "") -> String {
        let columns = header.count
        var widths = header.map { $0.count }
        for r in rows { for (i, c) in r.enumerated() where i < columns { widths[i] = max(widths[i], c.count) } }
        func isNumeric(_ col: Int) -> Bool {
            rows.allSatisfy { r in
                guard col < r.count else { return true }
                let s = r[col].trimmingCharacters(in: .whitespaces)
                return s.isEmpty || s == "—" || s == "-" || Double(s.replacingOccurrences(of: "%", with: "").replacingOccurrences(of: "±", with: "").split(separator: " ").first ?? "") != nil
            }
        }
        let numeric = (0..<columns).map(isNumeric)
        func line(_ cells: [String]) -> String {
            var parts: [String] = []
            for i in 0..<columns {
                let c = i < cells.count ? cells[i] : ""
                let pad = String(repeating: " ", count: max(0, widths[i] - c.count))
                parts.append(numeric[i] && i > 0 ? pad + c : c + pad)
            }
            return indent + parts.joined(separator: "  ").replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
        }
        var out = [line(header)]
        out.append(indent + widths.map { String(repeating: "─", count: $0) }.joined(separator: "  "))
        for r in rows { out.append(line(r)) }
        return out.joined(separator: "\n")
    }

    static func percent(_ x: Double, decimals: Int = 1) -> String {
        x.isNaN ? "—" : String(format: "%.\(decimals)f", x * 100)
    }

    static func number(_ x: Double, _ format: String = "%.4g") -> String {
        x.isNaN ? "—" : String(format: format, x)
    }

    static func duration(_ s: Double) -> String {
        if s.isNaN || s.isInfinite { return "—" }
        let t = Int(s.rounded())
        if t < 60 { return String(format: "%.1fs", s) }
        if t < 3600 { return String(format: "%d:%02d", t / 60, t % 60) }
        return String(format: "%d:%02d:%02d", t / 3600, (t / 60) % 60, t % 60)
    }

    static func bar(_ fraction: Double, width: Int = 24) -> String {
        let f = max(0, min(1, fraction))
        let filled = Int((f * Double(width)).rounded(.down))
        return "[" + String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled) + "]"
    }
}

/// Progress of a long command: a redrawn bar on a terminal, plain periodic lines otherwise.
final class Progress {
    enum Mode { case bar, lines, off }
    let mode: Mode
    let total: Int
    let label: String
    let write: (String) -> Void
    let start = Date()
    var lastDraw = Date.distantPast
    var lastLine = 0
    var drewBar = false

    init(mode: Mode, total: Int, label: String, write: @escaping (String) -> Void) {
        self.mode = mode; self.total = total; self.label = label; self.write = write
    }

    static func mode(setting: ProgressSetting) -> Mode {
        switch setting {
        case .bar: return .bar
        case .lines: return .lines
        case .off: return .off
        case .auto:
            let ci = ProcessInfo.processInfo.environment["CI"] != nil
            return isatty(1) != 0 && !ci ? .bar : .lines
        }
    }

    /// Reports `done` of `total` with a status text. Lines mode prints about ten lines per command.
    func update(_ done: Int, _ status: String) {
        let elapsed = Date().timeIntervalSince(start)
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let eta = rate > 0 ? Double(total - done) / rate : .nan
        switch mode {
        case .off: return
        case .bar:
            guard Date().timeIntervalSince(lastDraw) > 0.1 || done == total else { return }
            lastDraw = Date()
            write("\r\u{1B}[K\(label) \(done)/\(total) \(Render.bar(Double(done) / Double(max(total, 1)))) \(status)  \(String(format: "%.1f", rate))/s  ETA \(Render.duration(eta))")
            drewBar = true
        case .lines:
            let every = max(1, total / 10)
            guard done - lastLine >= every || done == total else { return }
            lastLine = done
            write("\(label) \(done)/\(total)  \(status)  \(String(format: "%.1f", rate))/s  elapsed \(Render.duration(elapsed))\n")
        }
    }

    /// Prints a line above the bar (evaluation results) without breaking it.
    func note(_ text: String) {
        if mode == .bar && drewBar { write("\r\u{1B}[K") }
        write(text + "\n")
    }

    func finish() {
        if mode == .bar && drewBar { write("\r\u{1B}[K") }
    }
}
