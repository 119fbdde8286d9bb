// The LSQ / EWGS fake quantizer (docs/quantization.md §1): one class for both methods, plugged
// into a Conv2d's `weightQuantizer` or `inputQuantizer` slot. Forward and backward share
// `QuantizerCache` (one Float per element: the rounding residual, or a sentinel outside the range).
// The fused kernels live in QuantizerKernels.swift.
import NN
import TensorCore

public final class Quantizer: TensorQuantizer {
    public static let supportedBits = 2...8
    /// Smallest step size used in the forward pass (QC `_tensorize_min_max` keeps ranges ≥ 1e-8).
    public static let minimumScale: Float = 1e-8

    /// Module path of the layer this quantizer belongs to, e.g. `layer3.0.conv1`.
    public let layerName: String
    public let role: QuantizerRole
    public private(set) var bits: Int
    public private(set) var range: QuantizationRange
    public let granularity: ScaleGranularity
    /// Learned step sizes: shape [1] (per tensor) or [C] (per output channel), kind `.scale`,
    /// named `<layer>.w.s` / `<layer>.a.s` (the paper's Table 3 notation).
    public let scale: Parameter
    public var method: QuantizationMethod
    /// EWGS δ in the original EWGS units (the residual measured on the [0, 1]-normalised range);
    /// the backward uses δ' = δ/(Qp − Qn) because residuals here are in integer units (§2.2).
    public var ewgsDelta: Float = 1e-3
    /// Off: forward is the identity and s receives no gradient (full-precision comparisons).
    public var quantizationEnabled = true
    /// Activation quantizers: calibration picks signed (observed min < 0) or unsigned.
    public var rangeFromData: Bool
    /// True once a range initialisation (or a loaded export/checkpoint) has set the step size.
    public var isInitialized = false
    /// The weight this quantizer quantizes (weight role only), for range initialisation and export.
    public let weight: Parameter?
    /// Called with (input, fake-quantized output) on every forward, both plain NCHW whatever layout the
    /// layer ran in; used by reports and the export's reference codes.
    public var observer: ((Tensor, Tensor) -> Void)?

    var cache: QuantizerCache?
    private(set) var calibration: CalibrationState?
    var probe: HessianProbe?

    public init(layerName: String, role: QuantizerRole, bits: Int, range: QuantizationRange,
                granularity: ScaleGranularity = .perTensor, channels: Int = 1,
                method: QuantizationMethod = .lsq, initialScale: Float = 1,
                weight: Parameter? = nil, rangeFromData: Bool = false) {
        precondition(Quantizer.supportedBits.contains(bits), "Quantizer \(layerName): \(bits) bits outside 2...8")
        precondition(granularity == .perTensor || role == .weight,
                     "Quantizer \(layerName): per-channel step sizes are for weights (axis 0) only")
        let count = granularity == .perTensor ? 1 : channels
        precondition(count > 0, "Quantizer \(layerName): \(channels) channels")
        if let w = weight, granularity == .perChannel {
            precondition(w.shape.first == channels, "Quantizer \(layerName): weight \(w.shape) has not \(channels) output channels")
        }
        self.layerName = layerName
        self.role = role
        self.bits = bits
        self.range = range
        self.granularity = granularity
        self.method = method
        self.weight = weight
        self.rangeFromData = rangeFromData
        self.scale = Parameter(name: "\(layerName).\(role.suffix).s", kind: .scale,
                               value: Tensor(shape: [count], repeating: initialScale))
    }

    /// `<layer>.w` or `<layer>.a`.
    public var name: String { "\(layerName).\(role.suffix)" }
    public var parameters: [Parameter] { [scale] }
    /// Number of step sizes (1 per tensor, C per channel).
    public var channels: Int { scale.count }
    /// Qn, the lowest integer code.
    public var lowest: Int { range.integerBounds(bits: bits).lowest }
    /// Qp, the highest integer code.
    public var highest: Int { range.integerBounds(bits: bits).highest }
    /// Number of steps across the range, L − 1 = Qp − Qn (EWGS normalisation).
    public var steps: Int { highest - lowest }

    /// Changes the bit width (and optionally the range); the step size is kept, so re-initialise it.
    public func setBits(_ newBits: Int, range newRange: QuantizationRange? = nil) throws {
        guard Quantizer.supportedBits.contains(newBits) else {
            throw QuantizationError.unsupportedBits(newBits, context: name)
        }
        bits = newBits
        if let r = newRange { range = r }
        cache = nil
    }

    /// LSQ gradient scale g = 1/sqrt(Qp·N), N = elements of the whole tensor (docs/quantization.md §1, LSQF).
    public func gradientScale(elementCount: Int) -> Float {
        Float(1.0 / (Double(highest) * Double(elementCount)).squareRoot())
    }

    /// The step sizes used by forward: the learned values floored at `minimumScale`, so an
    /// optimizer that drives s to ≤ 0 cannot produce a division by zero or a sign flip.
    public var effectiveScales: [Float] { scale.value.data.map { max($0, Quantizer.minimumScale) } }

    private func checkShape(_ x: Tensor) {
        if granularity == .perChannel {
            precondition(x.rank >= 1 && x.shape[0] == channels,
                         "Quantizer \(name): input \(x.shape) does not have \(channels) channels on axis 0")
        }
    }

    // MARK: - Forward / backward

    /// Hands (input, output), held in `layout`, to the observer in plain NCHW order.
    private func notifyObserver(_ x: Tensor, _ y: Tensor, _ layout: ActivationLayout) {
        guard let observer else { return }
        observer(x.reordered(from: layout, to: .plain), y.reordered(from: layout, to: .plain))
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) -> Tensor { forward(x, ctx, layout: .plain) }

    /// On an input in `layout`: the same elementwise arithmetic; the observer gets plain tensors.
    public func forward(_ x: Tensor, _ ctx: ForwardContext, layout: ActivationLayout) -> Tensor {
        if calibration != nil { observeForCalibration(x) }
        if probe != nil { return probeForward(x, ctx) }
        guard quantizationEnabled else {
            cache = ctx.needsBackward ? QuantizerCache(identityWithShape: x.shape) : nil
            notifyObserver(x, x, layout)
            return x
        }
        checkShape(x)
        let scales = effectiveScales
        let qn = Float(lowest), qp = Float(highest)
        // The kernel writes every element of y and of the residual (its work units tile 0..<count),
        // so both skip the zero fill: one pass over an activation less per call.
        var y = Tensor(uninitializedShape: x.shape)
        if ctx.needsBackward {
            var residual = [Float](unsafeUninitializedCapacity: x.count) { _, n in n = x.count }
            x.data.withUnsafeBufferPointer { xp in
                y.data.withUnsafeMutableBufferPointer { yp in
                    residual.withUnsafeMutableBufferPointer { rp in
                        QuantizerKernels.forward(x: xp.baseAddress!, y: yp.baseAddress!, residual: rp.baseAddress!,
                                                 count: x.count, scales: scales, lowest: qn, highest: qp)
                    }
                }
            }
            cache = QuantizerCache(shape: x.shape, residual: residual, identity: false, lowest: qn, highest: qp,
                                   blocks: scales.count, gradientScale: gradientScale(elementCount: x.count),
                                   ewgsFactor: method == .ewgs ? ewgsDelta / Float(steps) : 0)
        } else {
            cache = nil
            x.data.withUnsafeBufferPointer { xp in
                y.data.withUnsafeMutableBufferPointer { yp in
                    QuantizerKernels.forward(x: xp.baseAddress!, y: yp.baseAddress!, residual: nil,
                                             count: x.count, scales: scales, lowest: qn, highest: qp)
                }
            }
        }
        notifyObserver(x, y, layout)
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let c = cache else {
            preconditionFailure("Quantizer \(name): backward without a forward that kept its cache (needsBackward)")
        }
        cache = nil
        precondition(dy.shape == c.shape, "Quantizer \(name): gradient \(dy.shape) for output \(c.shape)")
        if probe != nil { return probeBackward(dy, c) }
        if c.identity { return dy }
        var dx = Tensor(uninitializedShape: dy.shape)   // written in full by the kernel
        let sums = dy.data.withUnsafeBufferPointer { gp in
            c.residual.withUnsafeBufferPointer { rp in
                dx.data.withUnsafeMutableBufferPointer { dp in
                    QuantizerKernels.backward(dy: gp.baseAddress!, residual: rp.baseAddress!, dx: dp.baseAddress!,
                                              count: dy.count, blocks: c.blocks, lowest: c.lowest, highest: c.highest,
                                              ewgsFactor: c.ewgsFactor)
                }
            }
        }
        let g = Double(c.gradientScale)
        for b in 0..<c.blocks { scale.grad.data[b] += Float(g * sums[b]) }
        return dx
    }

    public func clearCache() { cache = nil }

    /// Fake-quantizes without touching caches, calibration or observers (reports, export checks).
    public func fakeQuantize(_ x: Tensor) -> Tensor {
        guard quantizationEnabled else { return x }
        checkShape(x)
        var y = Tensor(uninitializedShape: x.shape)
        let scales = effectiveScales
        x.data.withUnsafeBufferPointer { xp in
            y.data.withUnsafeMutableBufferPointer { yp in
                QuantizerKernels.forward(x: xp.baseAddress!, y: yp.baseAddress!, residual: nil, count: x.count,
                                         scales: scales, lowest: Float(lowest), highest: Float(highest))
            }
        }
        return y
    }

    /// Integer codes round½even(clamp(x/s, Qn, Qp)) as exact small-integer Floats: fakeQuantize(x) = codes·s.
    public func integerCodes(_ x: Tensor) -> Tensor {
        checkShape(x)
        var out = Tensor(uninitializedShape: x.shape)
        let scales = effectiveScales
        x.data.withUnsafeBufferPointer { xp in
            out.data.withUnsafeMutableBufferPointer { op in
                QuantizerKernels.codes(x: xp.baseAddress!, codes: op.baseAddress!, count: x.count,
                                       scales: scales, lowest: Float(lowest), highest: Float(highest))
            }
        }
        return out
    }

    // MARK: - Range initialisation and calibration (RangeEstimation.swift holds the estimators)

    /// Sets s from one tensor (a weight, or any sample), docs/quantization.md §2.
    public func initializeScale(from x: Tensor, method initMethod: RangeInitMethod,
                                options: MSESearchOptions = MSESearchOptions()) {
        checkShape(x)
        let estimator = RangeEstimator(method: initMethod, options: options, channels: channels,
                                       lowest: lowest, highest: highest)
        estimator.observe(x)
        scale.value = Tensor(shape: [channels], data: estimator.scales())
        isInitialized = true
    }

    /// Starts observe mode: every following forward feeds its input to a range estimator, sets s to
    /// the estimate so far and then quantizes with it, so later layers see quantized inputs (§1.4).
    public func beginCalibration(method initMethod: RangeInitMethod, options: MSESearchOptions = MSESearchOptions()) {
        calibration = CalibrationState(method: initMethod, options: options)
    }

    /// Leaves observe mode, keeping the estimated s. Returns false if no batch was observed.
    @discardableResult
    public func finishCalibration() -> Bool {
        defer { calibration = nil }
        guard let c = calibration, c.estimator != nil else { return false }
        isInitialized = true
        return true
    }

    private func observeForCalibration(_ x: Tensor) {
        guard let state = calibration else { return }
        checkShape(x)
        var minimum = Float.infinity
        for v in x.data where v < minimum { minimum = v }
        if rangeFromData {
            // Signed when the data has negatives (GroupNorm outputs, a normalised image), else unsigned.
            // A later batch with negatives switches an unsigned quantizer to signed and restarts the
            // estimate, because the one-sided search grid cannot represent them.
            let wanted: QuantizationRange = minimum < 0 ? .signed : .unsigned
            if state.estimator == nil {
                range = wanted
            } else if range == .unsigned && wanted == .signed {
                range = .signed
                state.estimator = nil
                state.restarts += 1
            }
        }
        if state.estimator == nil {
            state.estimator = RangeEstimator(method: state.method, options: state.options, channels: channels,
                                             lowest: lowest, highest: highest)
        }
        state.estimator!.observe(x)
        scale.value = Tensor(shape: [channels], data: state.estimator!.scales())
    }
}

/// What backward needs from forward (see QuantizerKernels.swift for the residual encoding).
struct QuantizerCache {
    var shape: [Int]
    /// round(v) − v inside the range; −1 / +1 below / above it. Empty for the identity.
    var residual: [Float]
    var identity: Bool
    var lowest: Float
    var highest: Float
    var blocks: Int
    var gradientScale: Float
    /// δ' of EWGS (0 for LSQ).
    var ewgsFactor: Float
}

// In an extension, so the memberwise initialiser is still synthesised.
extension QuantizerCache {
    init(identityWithShape shape: [Int]) {
        self.init(shape: shape, residual: [], identity: true, lowest: 0, highest: 0, blocks: 1,
                  gradientScale: 0, ewgsFactor: 0)
    }
}

/// Observe-mode state: the estimator is created at the first batch, once the range is known.
final class CalibrationState {
    let method: RangeInitMethod
    let options: MSESearchOptions
    var estimator: RangeEstimator?
    var restarts = 0
    init(method: RangeInitMethod, options: MSESearchOptions) { self.method = method; self.options = options }
}
