// Flatness numbers of a surface, so two training methods can be compared in a table rather than by
// eye. All are measured from the centre c — the grid point nearest the origin (α, β) = (0, 0), i.e.
// the trained model itself when the axes contain 0 (use an odd count on a symmetric range):
//   centre loss L(c) and accuracy A(c);
//   for each radius r (in the units of α and β, i.e. multiples of the filter-normalised directions),
//   over the evaluated grid points p ≠ c with ‖p − c‖₂ ≤ r:
//     maximum loss increase   max_p (L(p) − L(c))
//     mean loss increase      mean_p (L(p) − L(c))
//     accuracy retention      share of those p with |A(p) − A(c)| ≤ tolerance (1 point by default)
// For 1-D surfaces the same along the line (‖p − c‖ = |α − α_c|). A NaN loss (diverged forward
// pass) counts as +∞, and its accuracy as not retained.
import Foundation

public struct FlatnessReport: Codable, Sendable {
    public struct Radius: Codable, Sendable {
        public var radius: Double
        /// Evaluated points within the radius, centre excluded.
        public var points: Int
        /// NaN when `points` is 0 (the grid is coarser than the radius).
        public var maximumLossIncrease: Double
        public var meanLossIncrease: Double
        /// In [0, 1]; NaN when `points` is 0.
        public var accuracyRetention: Double
    }

    public var dimension: Int
    public var centreAlpha: Double
    public var centreBeta: Double
    public var centreLoss: Double
    public var centreAccuracy: Double
    public var accuracyTolerance: Double
    public var radii: [Radius]

    /// A plain-text table with one row per labelled report (columns from the first report's radii),
    /// e.g. LSQ+SAGM vs FQAT on one domain.
    public static func table(_ rows: [(label: String, report: FlatnessReport)]) -> String {
        guard let first = rows.first?.report else { return "" }
        var header = ["surface", "centre loss", "centre acc"]
        for r in first.radii {
            let rs = format(r.radius)
            header += ["max ΔL r=\(rs)", "mean ΔL r=\(rs)", "acc kept r=\(rs)"]
        }
        var lines: [[String]] = [header]
        for (label, report) in rows {
            var cells = [label, format(report.centreLoss), format(report.centreAccuracy)]
            for r in first.radii {
                if let m = report.radii.first(where: { $0.radius == r.radius }), m.points > 0 {
                    cells += [format(m.maximumLossIncrease), format(m.meanLossIncrease),
                              String(format: "%.1f%%", m.accuracyRetention * 100)]
                } else {
                    cells += ["–", "–", "–"]
                }
            }
            lines.append(cells)
        }
        let widths = header.indices.map { c in lines.map { $0[c].count }.max() ?? 0 }
        func render(_ cells: [String]) -> String {
            cells.enumerated().map { c, s in
                c == 0 ? s + String(repeating: " ", count: widths[c] - s.count)
                       : String(repeating: " ", count: widths[c] - s.count) + s
            }.joined(separator: "  ")
        }
        var out = render(lines[0]) + "\n"
        out += widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ") + "\n"
        for l in lines.dropFirst() { out += render(l) + "\n" }
        return out
    }

    /// One line for a figure panel: the centre's loss and accuracy, then the largest loss increase
    /// within each radius, e.g. `centre 0.589, 78.3% | max ΔL r=0.25 1.13, r=0.5 2.97, r=1 6.71`
    /// (`–` for a radius the grid has no point within).
    public var caption: String {
        var text = "centre \(Self.format(centreLoss)), \(String(format: "%.1f", centreAccuracy))%"
        guard !radii.isEmpty else { return text }
        let parts = radii.map { r in
            "r=\(Self.format(r.radius)) " + (r.points > 0 ? String(format: "%.3g", r.maximumLossIncrease) : "–")
        }
        text += " | max ΔL " + parts.joined(separator: ", ")
        return text
    }

    static func format(_ v: Double) -> String {
        if v.isNaN { return "nan" }
        if v.isInfinite { return v > 0 ? "inf" : "-inf" }
        return String(format: "%.4g", v)
    }
}

extension LandscapeSurface {
    /// The grid point nearest the origin (ties: the first in flat order).
    public var centre: (alpha: Double, beta: Double, row: Int, column: Int) {
        func nearest(_ v: [Double]) -> Int { v.indices.min { abs(v[$0]) < abs(v[$1]) } ?? 0 }
        let column = nearest(alphas)
        let row = betas.map(nearest) ?? 0
        return (alphas[column], betas?[row] ?? 0, row, column)
    }

    /// Flatness numbers for each radius (see the file comment). `accuracyTolerance` is in the units of
    /// the accuracy values (1 = one percentage point when accuracy is in percent). Throws if the centre
    /// has not been evaluated yet or a radius is not positive.
    public func flatness(radii: [Double] = [0.25, 0.5, 1.0], accuracyTolerance: Double = 1) throws -> FlatnessReport {
        for r in radii where !(r > 0 && r.isFinite) { throw LandscapeError.invalidRadius(r) }
        let c = centre
        let nx = alphas.count
        guard c.row * nx + c.column < completedPoints else {
            throw LandscapeError.centreNotEvaluated(alpha: c.alpha, beta: c.beta)
        }
        let l0 = loss[c.row][c.column], a0 = accuracy[c.row][c.column]
        var report = FlatnessReport(dimension: dimension, centreAlpha: c.alpha, centreBeta: c.beta, centreLoss: l0,
                                    centreAccuracy: a0, accuracyTolerance: accuracyTolerance, radii: [])
        for r in radii {
            // Points on the circle count: linspace values carry rounding of a few ulps.
            let limit = r * (1 + 1e-9) + 1e-12
            var count = 0, retained = 0
            var maximum = -Double.infinity, sum = 0.0
            for k in 0..<completedPoints {
                let p = point(k)
                if p.row == c.row && p.column == c.column { continue }
                let da = p.alpha - c.alpha, db = p.beta - c.beta
                guard (da * da + db * db).squareRoot() <= limit else { continue }
                let l = loss[p.row][p.column]
                let increase = l.isNaN ? Double.infinity : l - l0
                count += 1
                maximum = max(maximum, increase)
                sum += increase
                let a = accuracy[p.row][p.column]
                if !a.isNaN && abs(a - a0) <= accuracyTolerance { retained += 1 }
            }
            report.radii.append(.init(radius: r, points: count,
                                      maximumLossIncrease: count > 0 ? maximum : .nan,
                                      meanLossIncrease: count > 0 ? sum / Double(count) : .nan,
                                      accuracyRetention: count > 0 ? Double(retained) / Double(count) : .nan))
        }
        return report
    }
}
