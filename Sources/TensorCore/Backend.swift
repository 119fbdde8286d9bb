// The compute backend of the engine's convolutions and the Linear layer's product: OpenBLAS (im2col +
// sgemm, the reference and the fallback) or oneDNN (its JIT convolution kernels, in the blocked
// layouts it chooses, and its sgemm).
//
// oneDNN is loaded at run time (Sources/CDNNL): when libdnnl.so.2 is missing, or a primitive cannot
// be created for some shape, convolutions run on OpenBLAS. Primitives are created once per
// (shape, thread count, activation layout) and cached. Tensors are NCHW outside the engine's modules;
// on oneDNN the residual stages keep their activations in oneDNN's channel-blocked layout between
// layers (`Backend.activationLayout`), and any other layout a primitive prefers is reordered to and
// from inside the convolution. See docs/backends.md.
import CDNNL
import Foundation
import Synchronization

/// Which library computes convolutions.
public enum ComputeBackend: String, CaseIterable, Sendable {
    /// im2col + OpenBLAS sgemm (TensorCore/Convolution.swift): the reference and the fallback.
    case openblas
    /// oneDNN's convolution primitives (forward, backward data, backward weights).
    case onednn
}

/// Why a backend cannot be selected.
public struct BackendUnavailable: Error, CustomStringConvertible {
    public let backend: ComputeBackend
    public let reason: String
    public var description: String { "backend \(backend.rawValue) is not available: \(reason)" }
}

public enum Backend {
    /// OpenMP wait policy set before oneDNN's OpenMP runtime loads, unless OMP_WAIT_POLICY is set:
    /// passive threads sleep instead of spinning between parallel regions, so the engine keeps its
    /// speed when another process shares the cores (docs/backends.md has the measurements).
    public static let defaultWaitPolicy = "passive"

    private static let loaded: (ok: Bool, reason: String) = {
        var buffer = [CChar](repeating: 0, count: 512)
        let ok = fqdnnl_load(defaultWaitPolicy, &buffer, buffer.count) != 0
        return (ok, ok ? "" : cString(buffer))
    }()

    /// Whether oneDNN loaded (libdnnl.so.2 present, OpenMP build, CPU engine created).
    public static var oneDNNAvailable: Bool { loaded.ok }
    /// Why oneDNN is unavailable, nil when it is available.
    public static var oneDNNUnavailableReason: String? { loaded.ok ? nil : loaded.reason }
    /// "oneDNN 2.6.3", or nil when it is unavailable.
    public static var oneDNNVersion: String? { loaded.ok ? String(cString: fqdnnl_version()) : nil }
    /// OMP_WAIT_POLICY as the OpenMP runtime saw it when it loaded ("" when unset).
    public static var waitPolicy: String { _ = loaded; return String(cString: fqdnnl_wait_policy()) }

    /// The selected backend (nil until first asked) and the FQAT_BACKEND note, under one lock.
    private static let selection = Mutex<(backend: ComputeBackend?, note: String?)>((nil, nil))
    /// A note about the FQAT_BACKEND or FQAT_ACTIVATIONS environment variable when it could not be
    /// honoured.
    public static var environmentNote: String? {
        _ = current
        let notes = [selection.withLock { $0.note }, layoutSetting.note].compactMap { $0 }
        return notes.isEmpty ? nil : notes.joined(separator: "; ")
    }

    /// The channel block oneDNN prefers for activations on this CPU (16 with AVX-512, 8 with AVX2),
    /// 0 when it prefers none or is not loaded. Probed once.
    public static let oneDNNPreferredBlock: Int = loaded.ok ? Int(fqdnnl_preferred_block()) : 0

    /// Whether the residual stages may keep activations blocked on oneDNN: FQAT_ACTIVATIONS=plain
    /// turns it off at start (to measure or rule out the blocked path), `keepActivationsBlocked`
    /// switches it at run time.
    private static let layoutSetting: (blocked: Bool, note: String?) = {
        let raw = ProcessInfo.processInfo.environment["FQAT_ACTIVATIONS"] ?? ""
        switch raw.lowercased() {
        case "", "blocked": return (true, nil)
        case "plain": return (false, nil)
        default: return (true, "FQAT_ACTIVATIONS=\(raw) is not a layout (blocked or plain); using blocked")
        }
    }()
    /// The run-time choice, nil until set (then FQAT_ACTIVATIONS decides).
    private static let layoutChoice = Mutex<Bool?>(nil)

    /// See `layoutSetting`; true by default.
    public static var keepActivationsBlocked: Bool {
        get { layoutChoice.withLock { $0 } ?? layoutSetting.blocked }
        set { layoutChoice.withLock { $0 = newValue } }
    }

    /// The layout residual stages keep their activations in between layers: oneDNN's blocked layout
    /// (nChw16c on AVX-512 machines) on the oneDNN backend, plain NCHW on OpenBLAS, when oneDNN
    /// prefers no blocked layout, or when `keepActivationsBlocked` is off.
    public static var activationLayout: ActivationLayout {
        guard current == .onednn, oneDNNPreferredBlock > 0, keepActivationsBlocked else { return .plain }
        return .blocked(oneDNNPreferredBlock)
    }

    /// The starting backend: FQAT_BACKEND (openblas | onednn) when set, else oneDNN when it loads
    /// (measured faster on every workload, docs/benchmarks.md), else OpenBLAS; with a note when the
    /// variable could not be honoured.
    private static func initial() -> (ComputeBackend, String?) {
        let fallback: ComputeBackend = oneDNNAvailable ? .onednn : .openblas
        guard let raw = ProcessInfo.processInfo.environment["FQAT_BACKEND"], !raw.isEmpty else { return (fallback, nil) }
        guard let wanted = ComputeBackend(rawValue: raw.lowercased()) else {
            return (fallback, "FQAT_BACKEND=\(raw) is not a backend (openblas or onednn); using \(fallback.rawValue)")
        }
        if wanted == .onednn && !oneDNNAvailable {
            return (.openblas, "FQAT_BACKEND=onednn: \(loaded.reason); using openblas")
        }
        return (wanted, nil)
    }

    /// The backend convolutions use now.
    public static var current: ComputeBackend {
        selection.withLock { state in
            if let s = state.backend { return s }
            let (s, note) = initial()
            state = (s, note)
            return s
        }
    }

    /// Switches the backend; oneDNN only when it is available.
    public static func select(_ backend: ComputeBackend) throws {
        if backend == .onednn && !oneDNNAvailable {
            throw BackendUnavailable(backend: .onednn, reason: loaded.reason)
        }
        _ = current  // the FQAT_BACKEND note is read before the first choice replaces it
        selection.withLock { $0.backend = backend }
    }

    /// Runs `body` with `backend` selected (restored afterwards), for tests and benchmarks.
    public static func with<R>(_ backend: ComputeBackend, _ body: () throws -> R) throws -> R {
        let saved = current
        try select(backend)
        defer { selection.withLock { $0.backend = saved } }
        return try body()
    }

    /// Convolution shapes oneDNN has run on blocked activations so far (tests check the blocked path ran).
    public static var blockedConvolutionShapes: Int { OneDNNConvolution.blockedHandles }

    /// oneDNN's entries of the compute provenance (ComputeInfo.backendDetails): empty on OpenBLAS.
    public static var details: [String: String] {
        guard current == .onednn else { return [:] }
        var d = ["onednn": oneDNNVersion ?? "oneDNN", "onednn_impl": OneDNNConvolution.implementations.joined(separator: "/"),
                 "omp_wait_policy": waitPolicy.isEmpty ? "unset" : waitPolicy,
                 "activations": activationLayout.description]
        if let f = OneDNNConvolution.lastFallback { d["onednn_fallback"] = f }
        return d
    }

    /// The backend with oneDNN's version, kernels, activation layout and wait policy, as in the compute
    /// line: "openblas" or "onednn (oneDNN 2.6.3, conv jit:avx512_core, activations nChw16c,
    /// OMP_WAIT_POLICY=passive)".
    public static var summary: String { ComputeInfo.describeBackend(current.rawValue, details) }
}

/// The cache of oneDNN convolution handles and the calls into them.
enum OneDNNConvolution {
    struct Key: Hashable {
        var batch, cin, height, width, cout, kernel, stride, padding, threads: Int
        /// The layouts of the caller's x and dx (`inputBlock`) and of y and dy (`outputBlock`): 0
        /// plain, else the channel block.
        var inputBlock: Int
        var outputBlock: Int
    }
    /// Owns one oneDNN primitive set; lives only inside `Cache`, so only under its lock.
    private final class Handle {
        let pointer: OpaquePointer
        init(_ p: OpaquePointer) { pointer = p }
        deinit { fqdnnl_conv_destroy(pointer) }
    }
    private struct Cache {
        var handles: [Key: Handle] = [:]
        /// Shapes oneDNN refused, with the reason (they run on OpenBLAS).
        var refused: [Key: String] = [:]
        var impls: [String] = []
        var lastFallback: String? = nil
        /// Tests only: primitive creation fails as if oneDNN refused the shape.
        var simulateCreationFailure = false
    }
    /// Handles hold per-call state and share one arena for their blocked buffers, so every call into
    /// oneDNN runs under this lock.
    private static let cache = Mutex(Cache())

    /// Distinct implementation names of the primitives created so far (forward, backward data,
    /// backward weights), e.g. ["jit:avx512_core", "gemm:jit"].
    static var implementations: [String] { cache.withLock { $0.impls } }

    /// Why the last shape fell back to OpenBLAS, nil when none did.
    static var lastFallback: String? { cache.withLock { $0.lastFallback } }

    /// Tests only: primitive creation fails as if oneDNN refused the shape.
    static var simulateCreationFailure: Bool {
        get { cache.withLock { $0.simulateCreationFailure } }
        set { cache.withLock { $0.simulateCreationFailure = newValue } }
    }

    /// Number of cached handles (one per shape and thread count).
    static var cachedHandles: Int { cache.withLock { $0.handles.count } }

    /// Cached handles whose activations are blocked (the blocked-layout path ran for their shapes).
    static var blockedHandles: Int {
        cache.withLock { $0.handles.keys.filter { $0.inputBlock != 0 || $0.outputBlock != 0 }.count }
    }

    /// Bytes of the arena all handles share for their blocked-layout buffers (the largest call's).
    static var arenaBytes: Int { cache.withLock { _ in Int(fqdnnl_arena_bytes()) } }

    /// Releases every cached primitive and buffer.
    static func clearCache() {
        cache.withLock { c in
            c.handles = [:]; c.refused = [:]; c.impls = []; c.lastFallback = nil
        }
    }

    static func key(_ x: Tensor, _ weight: Tensor, _ options: Convolution2dOptions, _ layout: ActivationLayout,
                    _ outputLayout: ActivationLayout) -> Key {
        Key(batch: x.shape[0], cin: x.shape[1], height: x.shape[2], width: x.shape[3], cout: weight.shape[0],
            kernel: weight.shape[2], stride: options.stride, padding: options.padding, threads: max(1, Parallel.threads),
            inputBlock: layout.block, outputBlock: outputLayout.block)
    }

    /// Runs `body` with the handle for `key` under the lock (handles hold per-call state and share
    /// one arena for their blocked buffers), or
    /// returns nil when oneDNN cannot do this shape.
    static func withHandle<R: Sendable>(_ key: Key, _ body: @Sendable (OpaquePointer) -> R?) -> R? {
        cache.withLock { c -> R? in
            if c.refused[key] != nil { return nil }
            let handle: Handle
            if let h = c.handles[key] {
                handle = h
            } else {
                var error = [CChar](repeating: 0, count: 256)
                if c.simulateCreationFailure {
                    c.refused[key] = "simulated failure"
                    c.lastFallback = "\(key.cin)→\(key.cout) k\(key.kernel) s\(key.stride) at \(key.height)×\(key.width): simulated failure"
                    return nil
                }
                guard let p = fqdnnl_conv_create(Int32(key.batch), Int32(key.cin), Int32(key.height), Int32(key.width),
                                                 Int32(key.cout), Int32(key.kernel), Int32(key.stride), Int32(key.padding),
                                                 Int32(key.threads), Int32(key.inputBlock), Int32(key.outputBlock),
                                                 &error, error.count) else {
                    let reason = cString(error)
                    c.refused[key] = reason
                    c.lastFallback = "\(key.cin)→\(key.cout) k\(key.kernel) s\(key.stride) at \(key.height)×\(key.width): \(reason)"
                    return nil
                }
                handle = Handle(p)
                c.handles[key] = handle
                for which in 0..<3 {
                    let name = String(cString: fqdnnl_conv_impl(p, Int32(which)))
                    if !c.impls.contains(name) { c.impls.append(name) }
                }
            }
            let result = body(handle.pointer)
            if result == nil { c.lastFallback = "a oneDNN call failed for \(key.cin)→\(key.cout) at \(key.height)×\(key.width)" }
            return result
        }
    }

    /// y = conv(x, weight) + bias through oneDNN, x and y in `layout`, or nil when it cannot (the
    /// caller falls back).
    static func forward(_ x: Tensor, weight: Tensor, bias: Tensor?, options: Convolution2dOptions, outputShape: [Int],
                        layout: ActivationLayout, outputLayout: ActivationLayout) -> Tensor? {
        guard Backend.oneDNNAvailable else { return nil }
        let key = key(x, weight, options, layout, outputLayout)
        return withHandle(key) { h -> Tensor? in
            var y = Tensor(uninitializedShape: outputShape)
            let status: Int32 = x.data.withUnsafeBufferPointer { px in
                weight.data.withUnsafeBufferPointer { pw in
                    y.data.withUnsafeMutableBufferPointer { py in
                        if let bias {
                            return bias.data.withUnsafeBufferPointer { pb in
                                fqdnnl_conv_forward(h, px.baseAddress, pw.baseAddress, pb.baseAddress, py.baseAddress)
                            }
                        }
                        return fqdnnl_conv_forward(h, px.baseAddress, pw.baseAddress, nil, py.baseAddress)
                    }
                }
            }
            return status == 0 ? y : nil
        }
    }

    /// Gradients through oneDNN (x and dx in `layout`, dy in `outputLayout`), or nil when it cannot
    /// (the caller falls back).
    static func backward(_ x: Tensor, weight: Tensor, outputGradient dy: Tensor, options: Convolution2dOptions,
                         computeInputGradient: Bool, layout: ActivationLayout,
                         outputLayout: ActivationLayout) -> Convolution2dGradients? {
        guard Backend.oneDNNAvailable else { return nil }
        let key = key(x, weight, options, layout, outputLayout)
        return withHandle(key) { h -> Convolution2dGradients? in
            var dW = Tensor(uninitializedShape: weight.shape)
            var dB = Tensor(uninitializedShape: [weight.shape[0]])
            var dX: Tensor? = computeInputGradient ? Tensor(uninitializedShape: x.shape) : nil
            let status: Int32 = x.data.withUnsafeBufferPointer { px in
                weight.data.withUnsafeBufferPointer { pw in
                    dy.data.withUnsafeBufferPointer { pdy in
                        dW.data.withUnsafeMutableBufferPointer { pdw in
                            dB.data.withUnsafeMutableBufferPointer { pdb in
                                if dX != nil {
                                    return dX!.data.withUnsafeMutableBufferPointer { pdx in
                                        fqdnnl_conv_backward(h, px.baseAddress, pw.baseAddress, pdy.baseAddress,
                                                             pdx.baseAddress, pdw.baseAddress, pdb.baseAddress)
                                    }
                                }
                                return fqdnnl_conv_backward(h, px.baseAddress, pw.baseAddress, pdy.baseAddress,
                                                            nil, pdw.baseAddress, pdb.baseAddress)
                            }
                        }
                    }
                }
            }
            return status == 0 ? Convolution2dGradients(input: dX, weight: dW, bias: dB) : nil
        }
    }
}

/// The Linear layer's matrix product on oneDNN (`dnnl_sgemm`: JIT kernels chosen from the CPU's ISA
/// flags, like its convolutions). Plain row-major buffers, no reorders; at a fixed thread count the
/// result is the same run to run (OneDNNMatmulTests).
enum OneDNNMatmul {
    /// Products oneDNN computed so far (tests check that the oneDNN path really ran).
    static let completed = Atomic<Int>(0)

    /// c = op(a) · op(b); false when oneDNN is unavailable or the call failed (c is then untouched
    /// or overwritten by the caller's fallback).
    static func multiply(_ a: Tensor, _ b: Tensor, transA: Bool, transB: Bool, m: Int, n: Int, k: Int, into c: inout Tensor) -> Bool {
        guard Backend.oneDNNAvailable, m > 0, n > 0, k > 0 else { return false }
        let threads = Int32(max(1, Parallel.threads))
        let status: Int32 = a.data.withUnsafeBufferPointer { pa in
            b.data.withUnsafeBufferPointer { pb in
                c.data.withUnsafeMutableBufferPointer { pc in
                    fqdnnl_sgemm(transA ? 1 : 0, transB ? 1 : 0, m, n, k, 1, pa.baseAddress, a.shape[1],
                                 pb.baseAddress, b.shape[1], 0, pc.baseAddress, n, threads)
                }
            }
        }
        if status == 0 { completed.add(1, ordering: .relaxed) }
        return status == 0
    }
}

/// The text of a NUL-terminated C buffer filled by a C call.
func cString(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
