// Surfaces cached on disk by content key (ContentHash.swift): `<directory>/landscape-<key>.json`.
// A file is used only when its key and its request both equal the ones asked for, so a changed
// weight, scale, buffer, option, grid or evaluation descriptor never reuses a stale surface.
// Partial surfaces (stopped, failed, or checkpointed mid-run) are cached too and resumed.
// Writes go to a temporary file that is renamed over the target (Data.write(options: .atomic)), so a
// crash never leaves a half-written cache file.
import Foundation

public struct LandscapeCache: Sendable {
    public let directory: URL
    /// While computing, the partial surface is written at most this often (seconds).
    public var checkpointInterval: Double

    public init(directory: URL, checkpointInterval: Double = 60) {
        self.directory = directory
        self.checkpointInterval = checkpointInterval
    }

    public func fileURL(for key: LandscapeKey) -> URL {
        directory.appendingPathComponent("landscape-\(key.hex).json")
    }

    /// The cached surface for `key`, or nil if absent, unreadable, of another format version, or made
    /// for a different request (a hash collision or a hand-edited file).
    public func load(key: LandscapeKey, request: LandscapeRequest) -> LandscapeSurface? {
        guard let data = try? Data(contentsOf: fileURL(for: key)),
              let s = try? Self.decoder.decode(LandscapeSurface.self, from: data) else { return nil }
        guard s.formatVersion == LandscapeSurface.currentFormatVersion, s.key == key, s.request == request,
              s.alphas == request.x.values, s.betas == request.y?.values,
              s.loss.count == (s.betas?.count ?? 1), s.loss.allSatisfy({ $0.count == s.alphas.count }),
              s.accuracy.count == s.loss.count, s.accuracy.allSatisfy({ $0.count == s.alphas.count }),
              s.completedPoints >= 0, s.completedPoints <= s.totalPoints else { return nil }
        return s
    }

    /// Writes `surface` atomically, creating the directory if needed.
    public func store(_ surface: LandscapeSurface) throws {
        let url = fileURL(for: surface.key)
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try Self.encoder.encode(surface).write(to: url, options: .atomic)
        } catch {
            throw LandscapeError.fileError(path: url.path, reason: "cannot write the landscape cache (\(error.localizedDescription)); check the directory is writable")
        }
    }

    /// Deletes the cached surface for `key` (to force recomputation); no error if absent.
    public func remove(key: LandscapeKey) {
        try? FileManager.default.removeItem(at: fileURL(for: key))
    }

    /// Reads a surface JSON file (e.g. one the shell saved), without checking it against a request.
    public static func read(_ url: URL) throws -> LandscapeSurface {
        do {
            return try decoder.decode(LandscapeSurface.self, from: Data(contentsOf: url))
        } catch {
            throw LandscapeError.fileError(path: url.path, reason: "not a landscape surface file (\(error.localizedDescription))")
        }
    }

    /// Writes a surface JSON file atomically.
    public static func write(_ surface: LandscapeSurface, to url: URL) throws {
        do {
            try encoder.encode(surface).write(to: url, options: .atomic)
        } catch {
            throw LandscapeError.fileError(path: url.path, reason: "cannot write (\(error.localizedDescription))")
        }
    }

    // Losses can be NaN (not yet evaluated) or infinite (a diverged point): JSON has no such numbers.
    static var encoder: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return e
    }

    static var decoder: JSONDecoder {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return d
    }
}
