// The α / β axes of a landscape: numpy-style linspace, as the original scripts' `--x=xmin:xmax:num`
// (docs/landscape.md). Points are evaluated in the original's flat order: k runs over
// meshgrid(x, y).ravel(), so x varies fastest and k ↦ z[k / nx][k % nx] (row = y index).
import Foundation

/// One axis of a landscape grid: `count` evenly spaced values from `minimum` to `maximum` inclusive.
public struct GridAxis: Codable, Hashable, Sendable, CustomStringConvertible {
    public var minimum: Double
    public var maximum: Double
    public var count: Int

    /// Throws `LandscapeError.invalidGrid` unless both ends are finite, minimum ≤ maximum and count ≥ 1
    /// (count 1 needs minimum == maximum).
    /// Most points on one axis (a plane holds at most `maxCount`² points; the papers use 51).
    public static let maxCount = 1001

    public init(_ minimum: Double, _ maximum: Double, count: Int) throws {
        guard minimum.isFinite, maximum.isFinite else {
            throw LandscapeError.invalidGrid("axis ends must be finite numbers, got \(minimum):\(maximum)")
        }
        guard minimum <= maximum else {
            throw LandscapeError.invalidGrid("axis minimum \(minimum) is above its maximum \(maximum); write min:max:count")
        }
        guard count >= 1 else {
            throw LandscapeError.invalidGrid("an axis needs at least 1 point, got \(count)")
        }
        guard count <= GridAxis.maxCount else {
            throw LandscapeError.invalidGrid("an axis has at most \(GridAxis.maxCount) points, got \(count); each point is a full evaluation (51 is the papers' grid)")
        }
        guard count > 1 || minimum == maximum else {
            throw LandscapeError.invalidGrid("an axis of 1 point needs minimum == maximum, got \(minimum):\(maximum); use at least 2 points")
        }
        self.minimum = minimum
        self.maximum = maximum
        self.count = count
    }

    /// Parses the original scripts' "min:max:count" form, e.g. "-1:1:51".
    public init(parsing text: String) throws {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count == 3, let lo = Double(parts[0]), let hi = Double(parts[1]), let n = Int(parts[2]) else {
            throw LandscapeError.invalidGrid("cannot read axis '\(text)'; write min:max:count, e.g. -1:1:51")
        }
        try self.init(lo, hi, count: n)
    }

    /// The values, as numpy.linspace(minimum, maximum, count): minimum + i·step with the last value
    /// set to exactly `maximum`.
    public var values: [Double] {
        if count == 1 { return [minimum] }
        let step = (maximum - minimum) / Double(count - 1)
        var v = (0..<count).map { minimum + Double($0) * step }
        v[count - 1] = maximum
        return v
    }

    public var description: String { "\(minimum):\(maximum):\(count)" }
}
