// CSV files written next to each landscape plot:
//   1-D: alpha,loss,accuracy            one line per α
//   2-D: alpha,beta,loss,accuracy       flat order (β outer, α inner: meshgrid(x, y).ravel())
// Points not evaluated yet (a stopped surface) are written as "nan" so the file always holds the full
// grid. Numbers use Swift's shortest round-trip form ("0.04", "1e-05", "inf").
import Foundation

extension LandscapeSurface {
    /// The CSV text. `blankLineBetweenRows` puts an empty line after each β row (gnuplot's grid format
    /// for `splot ... with pm3d`; plain CSV readers may not want it).
    public func csv(blankLineBetweenRows: Bool = false) -> String {
        var out = betas == nil ? "alpha,loss,accuracy\n" : "alpha,beta,loss,accuracy\n"
        let nx = alphas.count
        for k in 0..<totalPoints {
            let p = point(k)
            let l = loss[p.row][p.column], a = accuracy[p.row][p.column]
            if betas == nil {
                out += "\(p.alpha),\(l),\(a)\n"
            } else {
                out += "\(p.alpha),\(p.beta),\(l),\(a)\n"
                if blankLineBetweenRows && k % nx == nx - 1 && k < totalPoints - 1 { out += "\n" }
            }
        }
        return out
    }

    /// Writes `csv()` to `url` atomically.
    public func writeCSV(to url: URL, blankLineBetweenRows: Bool = false) throws {
        do {
            try Data(csv(blankLineBetweenRows: blankLineBetweenRows).utf8).write(to: url, options: .atomic)
        } catch {
            throw LandscapeError.fileError(path: url.path, reason: "cannot write the landscape CSV (\(error.localizedDescription))")
        }
    }
}
