import Foundation
import TensorCore

/// One measurement, printed as a table row or a JSON object.
struct Measurement {
    var workload: String
    var detail: String = ""
    var batch: Int = 0
    var threads: Int = 1
    /// Compute backend of the convolutions (TensorCore.Backend); "" for backend-independent rows.
    var backend: String = ""
    var imagesPerSecond: Double? = nil
    var gflops: Double? = nil
    var seconds: Double? = nil
    var extra: [String: Double] = [:]

    func json() -> String {
        var fields: [String] = ["\"workload\": \"\(workload)\"", "\"detail\": \"\(detail)\"",
                                "\"batch\": \(batch)", "\"threads\": \(threads)"]
        if !backend.isEmpty { fields.append("\"backend\": \"\(backend)\"") }
        fields.append("\"images_per_second\": \(imagesPerSecond.flatMap { $0.isFinite ? String(format: "%.2f", $0) : nil } ?? "null")")
        fields.append("\"gflops\": \(gflops.flatMap { $0.isFinite ? String(format: "%.3f", $0) : nil } ?? "null")")
        if let s = seconds, s.isFinite { fields.append("\"seconds\": \(String(format: "%.6f", s))") }
        // JSON has no NaN or infinity: a measurement that could not be made is null.
        for (k, v) in extra.sorted(by: { $0.key < $1.key }) {
            fields.append("\"\(k)\": \(v.isFinite ? String(format: "%.6g", v) : "null")")
        }
        return "{" + fields.joined(separator: ", ") + "}"
    }
}

/// A JSON string literal, escaped by Foundation's encoder.
func jsonString(_ s: String) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = .withoutEscapingSlashes
    return (try? encoder.encode(s)).map { String(decoding: $0, as: UTF8.self) } ?? "null"
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// CPU seconds used by every thread of this process so far (CLOCK_PROCESS_CPUTIME_ID). Less
/// sensitive than wall time to other processes on a shared machine, but it counts spinning threads.
func processCPUTime() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
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

/// Medians of wall and process-CPU seconds of `repeats` runs of `body` after `warmup` runs.
func medianTimes(repeats: Int, warmup: Int = 1, _ body: () -> Void) -> (wall: Double, cpu: Double) {
    for _ in 0..<warmup { body() }
    var wall: [Double] = [], cpu: [Double] = []
    for _ in 0..<repeats {
        let t0 = now(), c0 = processCPUTime()
        body()
        wall.append(now() - t0); cpu.append(processCPUTime() - c0)
    }
    wall.sort(); cpu.sort()
    return (wall[wall.count / 2], cpu[cpu.count / 2])
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
    /// Every workload name `--only` accepts, in the order they run.
    static let workloads = ["sgemm", "conv", "erm", "lsq", "fqat", "eval", "ops", "data", "landscape", "memory",
                            "bookkeeping", "landscape-overhead"]
    let json: Bool
    let quick: Bool
    let only: Set<String>?
    var results: [Measurement] = []
    /// PyTorch results by (workload, batch, threads), from `--compare FILE`.
    var reference: [String: Double] = [:]
    /// Highest VmHWM seen before a workload reset the counter (see `resetPeakResident`).
    var processPeakMiB: Double = 0
    /// Sum over ResNet-20's convolutions of forward+backward CPU seconds at the conv batch, by threads.
    var convolutionCPUSeconds: [Int: Double] = [:]
    /// Mean training-step CPU seconds by referenceKey(workload, batch, threads), for shares in `ops`.
    /// Shares are ratios of CPU times: unlike wall times measured minutes apart on a shared machine,
    /// they do not move when another process takes the core for a while.
    var stepCPUSeconds: [String: Double] = [:]
    /// Thread counts every workload runs at (`--threads 1,2`).
    var threadCounts: [Int]
    /// OpenBLAS runs a generic core on a CPU with AVX2/AVX-512: every measurement carries the flag.
    var genericCore = false
    /// Backends the model workloads run on, one after the other (`--backend`; default both when
    /// oneDNN loads).
    var backends: [ComputeBackend]
    /// The backend of the workloads running now ("" while sgemm runs).
    var runningBackend = ""
    /// `--batch N[,N...]`: training and evaluation batches instead of the defaults.
    var batches: [Int]? = nil

    init(options: BenchOptions) {
        json = options.json
        quick = options.quick
        only = options.only
        threadCounts = options.threads
        // Tuning experiments on the convolution fast path (TensorCore.Convolution); defaults untouched otherwise.
        if let strategy = options.convStrategy { Convolution.strategy = strategy }
        if let n = options.convBudget {
            // Column-matrix floats: per worker chunk (parallelChunks) or per call (batched).
            if Convolution.strategy == .batched { Convolution.columnBudget = n } else { Convolution.chunkBudget = n }
        }
        backends = options.backends
        batches = options.batch
        if let path = options.compare { reference = loadReference(path: path) }
    }

    func wants(_ w: String) -> Bool {
        // The 224-px models take minutes: they run only when named.
        if Bench.largeModels.contains(w) { return only?.contains(w) ?? false }
        return only.map { $0.contains(w) } ?? true
    }

    func emit(_ measurement: Measurement) {
        var m = measurement
        if genericCore { m.extra["generic_blas_core"] = 1 }
        if m.backend.isEmpty { m.backend = runningBackend }
        if let ips = m.imagesPerSecond, let torch = reference[referenceKey(m.workload, m.batch, m.threads)],
           !m.detail.contains("lsq-4bit") || m.workload != "eval" {
            m.extra["pytorch_images_per_second"] = torch
            m.extra["ratio_to_pytorch"] = ips / torch
        }
        results.append(m)
        if json { print(m.json()); fflush(nil); return }
        var line = m.workload.padding(toLength: max(10, m.workload.count + 1), withPad: " ", startingAt: 0)
        line += m.detail.padding(toLength: 34, withPad: " ", startingAt: 0)
        line += String(format: " batch %4d  threads %d", m.batch, m.threads)
        if !m.backend.isEmpty { line += "  " + m.backend.padding(toLength: 8, withPad: " ", startingAt: 0) }
        if let ips = m.imagesPerSecond { line += String(format: "  %9.1f img/s", ips) }
        if let g = m.gflops { line += String(format: "  %7.1f GFLOP/s", g) }
        if let s = m.seconds { line += String(format: "  %9.3f ms", s * 1000) }
        for (k, v) in m.extra.sorted(by: { $0.key < $1.key }) { line += String(format: "  %@=%.3g", k, v) }
        print(line); fflush(nil)
    }

    func run() {
        // The compute path first: every number below is only meaningful with it.
        let compute = ComputeInfo.current()
        if !json {
            print("fqat-bench — \(compute.line)")
            if let warning = compute.genericCoreWarning {
                print("FLAGGED: every number below ran on OpenBLAS's generic '\(compute.blas.core)' kernels, not this CPU's wide ones.")
                print(warning)
            }
        } else {
            var fields = compute.recordFields.sorted { $0.key < $1.key }.map { "\(jsonString($0.key)): \(jsonString($0.value))" }
            fields.append("\"generic_blas_core_on_wide_cpu\": \(compute.genericCoreOnWideCPU)")
            print("{\"workload\": \"compute\", " + fields.joined(separator: ", ") + "}")
        }
        genericCore = compute.genericCoreOnWideCPU
        var sgemmPeak: [Int: Double] = [:]
        if wants("sgemm") {
            for threads in threadCounts {
                let n = quick ? 512 : 1024
                let (g, cpu) = measureSgemm(threads: threads)
                sgemmPeak[threads] = g
                emit(Measurement(workload: "sgemm", detail: "\(n)x\(n)x\(n)", batch: 0, threads: threads, gflops: g,
                                 seconds: 2.0 * Double(n * n * n) / g / 1e9, extra: ["cpu_gflops": cpu]))
            }
        }
        // Backend-independent: no convolution runs.
        if wants("bookkeeping") { runBookkeeping() }
        for backend in backends {
            do { try Backend.select(backend) } catch {
                FileHandle.standardError.write("fqat-bench: \(error)\n".data(using: .utf8)!)
                continue
            }
            runningBackend = backend.rawValue
            if !json { print("backend: \(Backend.summary)") }
            runModelWorkloads(sgemmPeak: sgemmPeak)
            if !json { print("backend after the workloads: \(Backend.summary)") }
            runningBackend = ""
        }
        let peak = max(processPeakMiB, peakResidentMiB())
        if !json {
            print(String(format: "peak resident memory: %.1f MiB", peak))
        } else {
            print("{\"workload\": \"memory\", \"batch\": 0, \"threads\": 0, \"images_per_second\": null, \"gflops\": null, \"peak_resident_mib\": \(String(format: "%.1f", peak))}")
        }
    }
}
