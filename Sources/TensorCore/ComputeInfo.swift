// What the engine computes on: the BLAS library, the kernel core it chose, the CPU's instruction
// sets (from cpuid, independently of the library), and the thread counts. Printed by `fqat-bench`,
// `show system` and `fqat-shell --version`, stored in every record's provenance, and used to warn
// when OpenBLAS falls back to a generic core on a CPU with wide vector units (docs/benchmarks.md,
// "Which kernels run").
import COpenBLAS
import CCPUInfo
import Foundation

/// The CPU as cpuid describes it. Flags are true only when the CPU offers the instructions and the
/// operating system saves the register state they need.
public struct CPUFeatures: Equatable, Sendable {
    public var isX86: Bool
    public var vendor: String
    public var brand: String
    public var family: Int
    public var model: Int
    public var stepping: Int
    public var avx: Bool
    public var fma: Bool
    public var avx2: Bool
    public var avx512f: Bool
    public var avx512bw: Bool
    public var avx512dq: Bool
    public var avx512vl: Bool
    public var avx512vnni: Bool
    public var avx512bf16: Bool
    public var amx: Bool

    public init(isX86: Bool = true, vendor: String = "", brand: String = "", family: Int = 0, model: Int = 0,
                stepping: Int = 0, avx: Bool = false, fma: Bool = false, avx2: Bool = false,
                avx512f: Bool = false, avx512bw: Bool = false, avx512dq: Bool = false,
                avx512vl: Bool = false, avx512vnni: Bool = false, avx512bf16: Bool = false, amx: Bool = false) {
        self.isX86 = isX86; self.vendor = vendor; self.brand = brand
        self.family = family; self.model = model; self.stepping = stepping
        self.avx = avx; self.fma = fma; self.avx2 = avx2; self.avx512f = avx512f
        self.avx512bw = avx512bw; self.avx512dq = avx512dq; self.avx512vl = avx512vl
        self.avx512vnni = avx512vnni; self.avx512bf16 = avx512bf16; self.amx = amx
    }

    /// Reads this CPU through cpuid/xgetbv (x86-64); on other architectures every flag is false.
    public static func detect() -> CPUFeatures {
        var raw = fqat_cpu_info()
        fqat_cpu_identify(&raw)
        func text<T>(_ tuple: T) -> String {
            withUnsafeBytes(of: tuple) { bytes in
                let chars = bytes.prefix { $0 != 0 }
                return String(decoding: chars, as: UTF8.self).trimmingCharacters(in: .whitespaces)
            }
        }
        return CPUFeatures(isX86: raw.is_x86 != 0, vendor: text(raw.vendor), brand: text(raw.brand),
                           family: Int(raw.family), model: Int(raw.model), stepping: Int(raw.stepping),
                           avx: raw.avx != 0, fma: raw.fma != 0, avx2: raw.avx2 != 0, avx512f: raw.avx512f != 0,
                           avx512bw: raw.avx512bw != 0, avx512dq: raw.avx512dq != 0, avx512vl: raw.avx512vl != 0,
                           avx512vnni: raw.avx512vnni != 0, avx512bf16: raw.avx512bf16 != 0, amx: raw.amx_tile != 0)
    }

    /// The instruction sets that decide GEMM speed, widest last: "SSE3 AVX FMA AVX2 AVX-512F …".
    public var isaSummary: String {
        guard isX86 else { return "not x86-64" }
        var names = ["SSE3"]
        if avx { names.append("AVX") }
        if fma { names.append("FMA") }
        if avx2 { names.append("AVX2") }
        if avx512f { names.append("AVX-512F") }
        if avx512bw { names.append("AVX-512BW") }
        if avx512vnni { names.append("AVX-512VNNI") }
        if avx512bf16 { names.append("AVX-512BF16") }
        if amx { names.append("AMX") }
        return names.joined(separator: " ")
    }

    /// The vector width the CPU offers to float32 kernels: 512, 256 or 128 bits.
    public var vectorBits: Int { avx512f ? 512 : (avx ? 256 : 128) }
}

/// The BLAS library and how it was set up in this process.
public struct BLASInfo: Equatable, Sendable {
    public var library: String
    /// OpenBLAS's build description, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64".
    public var config: String
    /// The kernel core OpenBLAS runs (its `openblas_get_corename()`), e.g. "Haswell", "Prescott".
    public var core: String
    /// OPENBLAS_CORETYPE as the user's environment set it (nil: unset; OpenBLAS detected the core).
    public var coretypeOverride: String?

    public init(library: String, config: String, core: String, coretypeOverride: String?) {
        self.library = library; self.config = config; self.core = core; self.coretypeOverride = coretypeOverride
    }

    public static func detect(environment: [String: String] = ProcessInfo.processInfo.environment) -> BLASInfo {
        let config = openblas_get_config().map { String(cString: $0) } ?? "OpenBLAS (no configuration string)"
        let core = openblas_get_corename().map { String(cString: $0) } ?? "unknown"
        let override = environment["OPENBLAS_CORETYPE"].flatMap { $0.isEmpty ? nil : $0 }
        return BLASInfo(library: "OpenBLAS", config: config, core: core, coretypeOverride: override)
    }

    /// "0.3.21", read from the configuration string ("OpenBLAS 0.3.21 …").
    public var version: String {
        let words = config.split(separator: " ")
        if words.count >= 2, words[0] == "OpenBLAS" { return String(words[1]) }
        return "unknown"
    }

    /// OpenBLAS's x86 cores whose SGEMM kernels use 256- or 512-bit FMA (AVX2 or AVX-512).
    /// Every other x86 core name (Prescott, Core2, Nehalem, Sandybridge, Barcelona, Bulldozer, …)
    /// is a generic or older path: correct, but a fraction of the speed on a modern CPU.
    public static let wideCores: Set<String> = ["haswell", "zen", "skylakex", "cooperlake", "sapphirerapids", "excavator"]

    public var coreUsesWideVectors: Bool { BLASInfo.wideCores.contains(core.lowercased()) }
}

/// One description of the compute path: what a benchmark number or a record was measured on.
public struct ComputeInfo: Equatable, Sendable {
    /// The convolution backend (TensorCore.Backend): "openblas" or "onednn".
    public var backend: String
    /// With oneDNN: its version, the kernels (impl strings) of the primitives created so far and the
    /// OpenMP wait policy, e.g. ["onednn": "oneDNN 2.6.3", "onednn_impl": "jit:avx512_core",
    /// "omp_wait_policy": "passive"]; empty for OpenBLAS.
    public var backendDetails: [String: String]
    public var blas: BLASInfo
    public var cpu: CPUFeatures
    /// Threads of the engine's own loops (`Parallel.threads`) and of OpenBLAS inside one GEMM.
    public var engineThreads: Int
    public var blasThreads: Int
    public var cores: Int

    public init(backend: String = "openblas", backendDetails: [String: String] = [:], blas: BLASInfo, cpu: CPUFeatures,
                engineThreads: Int, blasThreads: Int, cores: Int) {
        self.backend = backend; self.backendDetails = backendDetails; self.blas = blas; self.cpu = cpu
        self.engineThreads = engineThreads; self.blasThreads = blasThreads; self.cores = cores
    }

    /// The compute path of this process now.
    public static func current() -> ComputeInfo {
        ComputeInfo(backend: Backend.current.rawValue, backendDetails: Backend.details,
                    blas: cachedBLAS, cpu: cachedCPU, engineThreads: Parallel.threads, blasThreads: BLAS.threads,
                    cores: ProcessInfo.processInfo.activeProcessorCount)
    }

    // Neither changes while the process runs (OpenBLAS picks its core once, at load).
    private static let cachedCPU = CPUFeatures.detect()
    private static let cachedBLAS = BLASInfo.detect()

    public var cpuName: String {
        let name = cpu.brand.isEmpty ? (cpu.vendor.isEmpty ? "unknown CPU" : cpu.vendor) : cpu.brand
        return cpu.isX86 ? "\(name) (family \(cpu.family) model \(cpu.model))" : name
    }

    /// "OpenBLAS 0.3.21, core Haswell (OPENBLAS_CORETYPE=Haswell)" or "… core Cooperlake (detected)".
    public var blasDescription: String {
        let how = blas.coretypeOverride.map { "OPENBLAS_CORETYPE=\($0)" } ?? "detected"
        return "\(blas.library) \(blas.version), core \(blas.core) (\(how))"
    }

    /// The one line printed by `fqat-bench`, `show system` and `--version`.
    public var line: String {
        "compute: backend \(backendDescription); \(blasDescription); CPU \(cpuName), \(cpu.isaSummary); "
            + "threads \(engineThreads) (BLAS \(blasThreads)), cores \(cores)"
    }

    /// "openblas", or "onednn (oneDNN 2.6.3, conv jit:avx512_core, OMP_WAIT_POLICY=passive)".
    public var backendDescription: String { ComputeInfo.describeBackend(backend, backendDetails) }

    static func describeBackend(_ backend: String, _ details: [String: String]) -> String {
        guard let version = details["onednn"] else { return backend }
        var parts = [version]
        if let impl = details["onednn_impl"], !impl.isEmpty { parts.append("conv " + impl) }
        if let layout = details["activations"] { parts.append("activations " + layout) }
        parts.append("OMP_WAIT_POLICY=" + (details["omp_wait_policy"] ?? "unset"))
        if let fallback = details["onednn_fallback"] { parts.append("fell back to openblas for " + fallback) }
        return "\(backend) (" + parts.joined(separator: ", ") + ")"
    }

    /// Stored under `provenance.compute` in every record.
    public var recordFields: [String: String] {
        ["backend": backend, "blas": "\(blas.library) \(blas.version)", "blas_config": blas.config,
         "blas_core": blas.core, "openblas_coretype": blas.coretypeOverride ?? "unset",
         "cpu": cpuName, "isa": cpu.isaSummary, "threads": String(engineThreads), "blas_threads": String(blasThreads)]
            .merging(backendDetails) { a, _ in a }
    }

    /// True when OpenBLAS chose a generic (pre-AVX2) core by itself on a CPU that has AVX2 or
    /// AVX-512: GEMMs then run at a fraction of the machine's speed, silently.
    public var genericCoreOnWideCPU: Bool {
        blas.coretypeOverride == nil && cpu.isX86 && cpu.avx2 && cpu.fma && !blas.coreUsesWideVectors
    }

    /// The start-up warning for `genericCoreOnWideCPU`, or nil. It says what was detected, what it
    /// costs, and what the user can set; fqat-shell never sets OPENBLAS_CORETYPE itself, because on
    /// some CPUs a forced core computes wrong results or crashes.
    public var genericCoreWarning: String? {
        guard genericCoreOnWideCPU else { return nil }
        let suggestion = cpu.avx512f ? (cpu.avx512bf16 ? "Cooperlake or SkylakeX" : "SkylakeX") : "Haswell"
        // With convolutions on oneDNN (which picks its kernels from the CPU's instruction sets), only the
        // products left to OpenBLAS are slow: say so rather than promise a 2× that does not happen.
        let cost = backend == "openblas"
            ? "training steps about 2× slower"
            : "convolutions run on \(backend), which is unaffected; the classifier's products and any run with `set backend=openblas` are slow"
        return """
        warning: OpenBLAS \(blas.version) does not recognise this CPU (\(cpuName), \(cpu.isaSummary)) and runs its \
        generic '\(blas.core)' kernels: matrix products run at a fraction of this CPU's speed (measured on an Intel \
        Xeon with AVX-512: 26 GFLOP/s against 110–130 with OPENBLAS_CORETYPE=Cooperlake or SkylakeX; \(cost)). \
        Results stay correct. To use the wide kernels, export OPENBLAS_CORETYPE=\(suggestion) \
        (or Haswell, the safest AVX2 path) before starting fqat-shell, then check with `fqat-bench --only sgemm` \
        and the test suite; fqat-shell never sets it for you. See docs/benchmarks.md, "Which kernels run".
        """
    }
}
