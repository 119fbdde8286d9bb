import Foundation
import TensorCore

/// One measurement, printed as a table row or a JSON object.
struct Measurement {
    var workload: String
    var detail: String = ""
    var batch: Int = 0
    var threads: Int = 1
    var imagesPerSecond: Double? = nil
    var gflops: Double? = nil
    var seconds: Double? = nil
    var extra: [String: Double] = [:]

    func json() -> String {
        var fields: [String] = ["\"workload\": \"\(workload)\"", "\"detail\": \"\(detail)\"",
                                "\"batch\": \(batch)", "\"threads\": \(threads)"]
        fields.append("\"images_per_second\": \(imagesPerSecond.map { String(format: "%.2f", $0) } ?? "null")")
        fields.append("\"gflops\": \(gflops.map { String(format: "%.3f", $0) } ?? "null")")
        if let s = seconds { fields.append("\"seconds\": \(String(format: "%.6f", s))") }
        for (k, v) in extra.sorted(by: { $0.key < $1.key }) { fields.append("\"\(k)\": \(String(format: "%.4f", v))") }
        return "{" + fields.joined(separator: ", ") + "}"
    }
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Median wall time of `repeats` runs of `body` after `warmup` runs.
func medianTime(repeats: Int, warmup: Int = 1, _ body: () -> Void) -> Double {
    for _ in 0..<warmup { body() }
    var ts: [Double] = []
    for _ in 0..<repeats {
        let t0 = now(); body(); ts.append(now() - t0)
    }
    ts.sort()
    return ts[ts.count / 2]
}

/// Peak resident set size of this process so far, in MiB (VmHWM from /proc/self/status).
func peakResidentMiB() -> Double {
    guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in s.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let kb = line.split(separator: " ").compactMap { Double($0) }.first ?? 0
        return kb / 1024
    }
    return 0
}

final class Bench {
    let json: Bool
    let quick: Bool
    let only: Set<String>?
    var results: [Measurement] = []

    init(arguments: [String]) {
        json = arguments.contains("--json")
        quick = arguments.contains("--quick")
        if let i = arguments.firstIndex(of: "--only"), i + 1 < arguments.count {
            only = Set(arguments[i + 1].split(separator: ",").map(String.init))
        } else { only = nil }
        if arguments.contains("--help") || arguments.contains("-h") {
            print("""
            usage: fqat-bench [--json] [--quick] [--only WORKLOAD[,WORKLOAD...]]
              workloads: sgemm, conv, erm, lsq, fqat, eval, data, landscape
              --json   one JSON object per measurement (workload, batch, threads, images_per_second, gflops, ...)
              --quick  fewer repeats (for smoke runs)
            """)
            exit(0)
        }
    }

    func wants(_ w: String) -> Bool { only == nil || only!.contains(w) }

    func emit(_ m: Measurement) {
        results.append(m)
        if json { print(m.json()); fflush(stdout); return }
        var line = m.workload.padding(toLength: 10, withPad: " ", startingAt: 0)
        line += m.detail.padding(toLength: 34, withPad: " ", startingAt: 0)
        line += String(format: " batch %4d  threads %d", m.batch, m.threads)
        if let ips = m.imagesPerSecond { line += String(format: "  %9.1f img/s", ips) }
        if let g = m.gflops { line += String(format: "  %7.1f GFLOP/s", g) }
        if let s = m.seconds { line += String(format: "  %9.3f ms", s * 1000) }
        for (k, v) in m.extra.sorted(by: { $0.key < $1.key }) { line += String(format: "  %@=%.3g", k, v) }
        print(line); fflush(stdout)
    }

    func run() {
        if !json {
            print("fqat-bench — OPENBLAS_CORETYPE=\(ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] ?? "unset"), cores \(ProcessInfo.processInfo.activeProcessorCount)")
        }
        var sgemmPeak: [Int: Double] = [:]
        if wants("sgemm") {
            for threads in [1, 2] {
                BLAS.setThreads(threads)
                let n = quick ? 512 : 1024
                var rng = RNG(seed: 1)
                let a = rng.normalTensor([n, n]), b = rng.normalTensor([n, n])
                let t = medianTime(repeats: quick ? 3 : 5) { _ = Tensor.matmul(a, b) }
                let g = 2.0 * Double(n * n * n) / t / 1e9
                sgemmPeak[threads] = g
                emit(Measurement(workload: "sgemm", detail: "\(n)x\(n)x\(n)", batch: 0, threads: threads, gflops: g, seconds: t))
            }
        }
        runModelWorkloads(sgemmPeak: sgemmPeak)
        if !json {
            print(String(format: "peak resident memory: %.1f MiB", peakResidentMiB()))
        } else {
            print("{\"workload\": \"memory\", \"batch\": 0, \"threads\": 0, \"images_per_second\": null, \"gflops\": null, \"peak_resident_mib\": \(String(format: "%.1f", peakResidentMiB()))}")
        }
    }
}
