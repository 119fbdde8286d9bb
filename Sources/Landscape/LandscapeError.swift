// User errors of the Landscape module: each message says what is wrong and what to do.
import Foundation

public enum LandscapeError: Error, CustomStringConvertible, Equatable {
    /// A grid axis or request that cannot be evaluated.
    case invalidGrid(String)
    /// A request whose parts do not fit together (e.g. a plane without a y axis).
    case invalidRequest(String)
    /// The direction options move no parameter of this model.
    case emptyDirection(String)
    /// The interpolation endpoint lacks tensors the direction needs, or has them in other shapes.
    case endpointMismatch(missing: [String], shapeMismatch: [String])
    /// Flatness needs the centre point (nearest the origin), which a stopped surface may not have yet.
    case centreNotEvaluated(alpha: Double, beta: Double)
    /// Flatness radii must be positive.
    case invalidRadius(Double)
    /// Reading or writing a cache or CSV file failed.
    case fileError(path: String, reason: String)

    public var description: String {
        switch self {
        case let .invalidGrid(m), let .invalidRequest(m):
            return m
        case let .emptyDirection(m):
            return "empty landscape direction: " + m
        case let .endpointMismatch(missing, mismatched):
            func list(_ xs: [String]) -> String {
                xs.count <= 6 ? xs.joined(separator: ", ") : xs.prefix(6).joined(separator: ", ") + ", … (\(xs.count) in all)"
            }
            var parts: [String] = []
            if !missing.isEmpty { parts.append("missing \(list(missing))") }
            if !mismatched.isEmpty { parts.append("shape mismatch \(list(mismatched))") }
            return "the interpolation endpoint does not match the model: " + parts.joined(separator: "; ")
                + ". Save both models from the same architecture and quantizer setup, or interpolate target weights only."
        case let .centreNotEvaluated(a, b):
            return "the surface has no value yet at its centre (α \(a), β \(b)); finish the surface (it resumes from the cache) before asking for flatness"
        case let .invalidRadius(r):
            return "flatness radius must be a positive number, got \(r)"
        case let .fileError(path, reason):
            return "\(path): \(reason)"
        }
    }
}

/// Thrown by a landscape's evaluation closure to stop inside a point (e.g. between batches on Ctrl-C):
/// `Landscape.compute` drops that point, keeps (and caches) the points before it and returns the partial
/// surface, exactly as when `shouldStop` answers true between points.
public struct LandscapeStopRequested: Error, Sendable {
    public init() {}
}
