// User-facing errors of the Datasets module. Each message says what is wrong, names the file or
// name involved, and says what to do. Programmer errors (bad shapes, out-of-range indices passed
// by engine code) are preconditions instead.
import Foundation

public enum DatasetError: Error, Equatable, CustomStringConvertible, LocalizedError {
    /// A packaged or user data set is not where it was looked for.
    case datasetMissing(dataset: String, path: String, remedy: String)
    /// A file could not be opened or read.
    case unreadableFile(path: String, reason: String)
    /// A gzip stream inside `path` is corrupt or truncated.
    case corruptCompressedFile(path: String, reason: String)
    /// The IDX header does not start with the magic 0x00 0x00 <type> <rank>.
    case badIDXMagic(path: String, found: [UInt8])
    /// The IDX header or body is inconsistent (unsupported type, zero/huge dimension, wrong length).
    case malformedIDX(path: String, reason: String)
    /// Images and labels files disagree on the number of examples or the label range.
    case mismatchedIDXFiles(images: String, labels: String, reason: String)
    /// stb could not decode an image file.
    case undecodableImage(path: String, reason: String)
    /// A folder that must hold domains, classes or images holds none.
    case emptyFolder(path: String, expected: String)
    /// Domains of a folder data set do not share the same class folders.
    case inconsistentClasses(domain: String, expected: [String], found: [String])
    /// A domain name that the data set does not have.
    case unknownDomain(name: String, available: [String])
    /// A built-in benchmark or style name that does not exist.
    case unknownName(kind: String, name: String, available: [String])
    /// An option value outside its allowed range.
    case invalidOption(name: String, value: String, expected: String)
    /// A results line that is not a DomainBed-shaped record.
    case malformedRecord(line: Int, reason: String)
    /// A saved sampler state that does not fit the data it is resumed on.
    case samplerMismatch(reason: String)

    public var description: String {
        switch self {
        case let .datasetMissing(dataset, path, remedy):
            return "\(dataset) not found at \(path): \(remedy)"
        case let .unreadableFile(path, reason):
            return "cannot read \(path): \(reason)"
        case let .corruptCompressedFile(path, reason):
            return "\(path) is not a valid gzip file (\(reason)); the file is corrupt or truncated, download or reinstall it"
        case let .badIDXMagic(path, found):
            let hex = found.map { String(format: "%02x", $0) }.joined(separator: " ")
            return "\(path) is not an IDX file: the header starts with [\(hex)], expected 00 00 08 <rank>"
        case let .malformedIDX(path, reason):
            return "\(path) is a malformed IDX file: \(reason)"
        case let .mismatchedIDXFiles(images, labels, reason):
            return "\(images) and \(labels) do not belong together: \(reason)"
        case let .undecodableImage(path, reason):
            return "cannot decode image \(path): \(reason); remove or replace the file"
        case let .emptyFolder(path, expected):
            return "\(path) holds no \(expected)"
        case let .inconsistentClasses(domain, expected, found):
            let missing = expected.filter { !found.contains($0) }
            let extra = found.filter { !expected.contains($0) }
            var parts: [String] = []
            if !missing.isEmpty { parts.append("missing \(missing.joined(separator: ", "))") }
            if !extra.isEmpty { parts.append("extra \(extra.joined(separator: ", "))") }
            return "domain \(domain) has different class folders from the first domain (\(parts.joined(separator: "; "))); every domain needs the same classes"
        case let .unknownDomain(name, available):
            return "unknown domain \"\(name)\"; the domains are \(available.map { "\"\($0)\"" }.joined(separator: ", "))"
        case let .unknownName(kind, name, available):
            return "unknown \(kind) \"\(name)\"; choose one of \(available.joined(separator: ", "))"
        case let .invalidOption(name, value, expected):
            return "\(name)=\(value) is not allowed: \(expected)"
        case let .malformedRecord(line, reason):
            return "results line \(line) is not a DomainBed record: \(reason)"
        case let .samplerMismatch(reason):
            return "the saved sampler state does not fit this data: \(reason); resume with the same data set, seed and split"
        }
    }

    public var errorDescription: String? { description }
}
