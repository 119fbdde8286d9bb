// `--compare FILE`: PyTorch numbers (scripts/bench_pytorch.py output, one JSON object per line)
// shown beside ours for the same workload, batch and thread count.
import Foundation

func referenceKey(_ workload: String, _ batch: Int, _ threads: Int) -> String { "\(workload)/\(batch)/\(threads)" }

/// Reads JSON lines with keys workload, batch, threads, images_per_second. Lines that are not such
/// objects (comments, warnings) are skipped; a missing file is reported on stderr and ignored, so
/// a comparison never stops the benchmark.
func loadReference(path: String) -> [String: Double] {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
        FileHandle.standardError.write("fqat-bench: cannot read --compare file '\(path)'; continuing without it\n".data(using: .utf8)!)
        return [:]
    }
    var table: [String: Double] = [:]
    for line in text.split(separator: "\n") {
        guard let data = line.data(using: .utf8),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let workload = object["workload"] as? String,
              let batch = (object["batch"] as? NSNumber)?.intValue,
              let threads = (object["threads"] as? NSNumber)?.intValue,
              let ips = (object["images_per_second"] as? NSNumber)?.doubleValue else { continue }
        table[referenceKey(workload, batch, threads)] = ips
    }
    if table.isEmpty {
        FileHandle.standardError.write("fqat-bench: '\(path)' holds no PyTorch measurements (expected JSON lines from scripts/bench_pytorch.py)\n".data(using: .utf8)!)
    }
    return table
}
