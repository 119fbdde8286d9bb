// Batch normalisation over (N, H, W) per channel, as torch.nn.BatchNorm2d (eps 1e-5, momentum 0.1).
//
// Modes (chosen per forward call):
//   batch statistics  ctx.training && !frozen: μ, σ² (biased) over the batch; running stats updated
//                     with r ← (1 − m)·r + m·stat using the UNBIASED variance σ²·M/(M−1), as PyTorch,
//                     unless ctx.updateRunningStats is false (SAGM's second pass).
//   running statistics otherwise (eval, or frozen BN as in DomainBed/SAGM `freeze_bn`): μ, σ² are the
//                     running buffers; γ and β still receive gradients.
// y = γ·x̂ + β with x̂ = (x − μ)·ρ, ρ = 1/√(σ² + eps).
//
// Backward, batch statistics (Ioffe & Szegedy 2015, eq. after Alg. 1; M = N·H·W per channel):
//   dβ = Σ dy, dγ = Σ dy·x̂, dx = γ·ρ·(dy − dβ/M − x̂·dγ/M)
// which we apply as dx = a·dy + b·x + c with a = γρ, b = −γρ²·dγ/M, c = −γρ·dβ/M + γρ²·μ·dγ/M.
// Backward, running statistics (μ, ρ are constants): dx = γρ·dy, same dγ, dβ.
import TensorCore

public final class BatchNorm2d: Module, DescribedModule, LayoutAwareModule {
    public let name: String
    public let channels: Int
    public let eps: Float
    public let momentum: Float
    /// γ, (C), initialised to 1
    public let weight: Parameter
    /// β, (C), initialised to 0
    public let bias: Parameter
    /// (C), "\(name).running_mean"
    public let runningMean: Buffer
    /// (C), "\(name).running_var"
    public let runningVar: Buffer
    /// Always normalise with the running statistics, even in training (γ, β still train).
    public var frozen: Bool = false

    /// μ, ρ per channel, (C).
    private var cache: NormalizationCache?

    public init(name: String, channels: Int, eps: Float = 1e-5, momentum: Float = 0.1) {
        precondition(channels > 0, "BatchNorm2d \(name): channels must be positive")
        self.name = name
        self.channels = channels
        self.eps = eps
        self.momentum = momentum
        (weight, bias) = normalizationAffine(name, channels: channels)
        runningMean = Buffer(name: name + ".running_mean", value: Tensor.zeros([channels]))
        runningVar = Buffer(name: name + ".running_var", value: Tensor(shape: [channels], repeating: 1))
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) -> Tensor {
        forward(x, ctx, layout: .plain).0
    }

    func accepts(_ layout: ActivationLayout) -> Bool { layout.holds(channels: channels) }
    var startsBlockedRun: Bool { false }

    func forward(_ x: Tensor, _ ctx: ForwardContext, layout: ActivationLayout) -> (Tensor, ActivationLayout) {
        (forward(x, ctx, layout: layout, epilogue: .none), layout)
    }

    /// x and y in `layout` (a blocked layout runs BlockedChannels' kernels), with `epilogue` applied in
    /// the same pass as the affine map.
    func forward(_ x: Tensor, _ ctx: ForwardContext, layout: ActivationLayout, epilogue: NormalizationEpilogue) -> Tensor {
        precondition(x.rank == 4 && x.shape[1] == channels, "BatchNorm2d \(name) expects (N, \(channels), H, W), got \(x.shape)")
        let n = x.shape[0], c = channels, hw = x.shape[2] * x.shape[3]
        let m = n * hw
        let useBatch = ctx.training && !frozen
        var mean = [Float](repeating: 0, count: c)
        var invStd = [Float](repeating: 0, count: c)
        var y: Tensor
        if useBatch {
            precondition(m > 1, "BatchNorm2d \(name): batch statistics need more than one value per channel, input \(x.shape)")
            var variance = [Float](repeating: 0, count: c)
            if layout != .plain {
                let g = BlockedGeometry(x.shape, layout)
                let sums = BlockedChannels.sums(x, g, center: nil)
                for ch in 0..<c { mean[ch] = Float(sums[ch] / Double(m)) }
                let squares = BlockedChannels.sums(x, g, center: mean)
                for ch in 0..<c { variance[ch] = Float(squares[ch] / Double(m)) }
            } else {
            x.data.withUnsafeBufferPointer { px in
            mean.withUnsafeMutableBufferPointer { pm in
            variance.withUnsafeMutableBufferPointer { pv in
                // px is (N, C, HW): channel ch is N runs of HW floats at (i·C + ch)·HW.
                Parallel.forEach(c, costPerItem: 3 * m) { range in
                    for ch in range {
                        var s = 0.0
                        for i in 0..<n { s += Double(runSum(px.baseAddress! + (i * c + ch) * hw, hw)) }
                        let mu = Float(s / Double(m))
                        var q = 0.0
                        for i in 0..<n { q += Double(runSquaredDeviation(px.baseAddress! + (i * c + ch) * hw, hw, mu)) }
                        pm[ch] = mu
                        pv[ch] = Float(q / Double(m))
                    }
                }
            }}}
            }
            for ch in 0..<c { invStd[ch] = 1 / (variance[ch] + eps).squareRoot() }
            if ctx.updateRunningStats {
                let unbiased = Float(m) / Float(m - 1)
                for ch in 0..<c {
                    runningMean.value.data[ch] = (1 - momentum) * runningMean.value.data[ch] + momentum * mean[ch]
                    runningVar.value.data[ch] = (1 - momentum) * runningVar.value.data[ch] + momentum * variance[ch] * unbiased
                }
            }
        } else {
            for ch in 0..<c {
                mean[ch] = runningMean.value.data[ch]
                invStd[ch] = 1 / (runningVar.value.data[ch] + eps).squareRoot()
            }
        }
        // y = a·x + b per channel with a = γρ, b = β − μγρ
        let gamma = weight.value.data, beta = bias.value.data
        var scale = [Float](repeating: 0, count: c), shift = [Float](repeating: 0, count: c)
        for ch in 0..<c {
            scale[ch] = gamma[ch] * invStd[ch]
            shift[ch] = beta[ch] - mean[ch] * scale[ch]
        }
        let residual: Tensor?
        switch epilogue {
        case .none, .relu: residual = nil
        case .addRelu(let r):
            precondition(r.shape == x.shape, "BatchNorm2d \(name): residual \(r.shape) vs input \(x.shape)")
            residual = r
        }
        let relu = epilogue.hasReLU
        if layout != .plain {
            y = BlockedChannels.affine(x, BlockedGeometry(x.shape, layout), scale: scale, shift: shift,
                                       residual: residual, relu: relu)
        } else {
            y = Tensor(uninitializedShape: x.shape)
            applyAffine(x, &y, scale, shift, n: n, c: c, hw: hw, residual: residual, relu: relu)
        }
        cache = ctx.needsBackward ? NormalizationCache(input: x, mean: mean, invStd: invStd, batchStatistics: useBatch,
                                                       layout: layout, output: relu ? y : nil) : nil
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor { backwardThroughEpilogue(dy).input }

    /// Backward through the epilogue and the normalisation: dL/dx and, after a ReLU epilogue, the
    /// gradient at the ReLU's input dy·[y > 0] (for `.addRelu`, the residual's gradient); without an
    /// epilogue that is dy itself.
    func backwardThroughEpilogue(_ dyOut: Tensor) -> (input: Tensor, beforeReLU: Tensor) {
        let (cc, n, hw) = NormalizationCache.take(&cache, for: dyOut, layer: "BatchNorm2d \(name)")
        let dy = cc.output.map { maskedByPositive(dyOut, output: $0) } ?? dyOut
        let x = cc.input, c = channels, m = n * hw
        // Per channel: dβ = Σ dy, Σ dy·(x − μ) (then dγ = ρ·Σ dy·(x − μ))
        var sumDy = [Float](repeating: 0, count: c)
        var sumDyXhat = [Float](repeating: 0, count: c)
        let blocked = cc.layout != .plain ? BlockedGeometry(x.shape, cc.layout) : nil
        if let g = blocked {
            let sums = BlockedChannels.gradientSums(dy, x, g, mean: cc.mean)
            for ch in 0..<c {
                sumDy[ch] = Float(sums.dy[ch])
                sumDyXhat[ch] = Float(sums.dyCentered[ch]) * cc.invStd[ch]
            }
        } else {
        x.data.withUnsafeBufferPointer { px in
        dy.data.withUnsafeBufferPointer { pdy in
        sumDy.withUnsafeMutableBufferPointer { psd in
        sumDyXhat.withUnsafeMutableBufferPointer { psx in
            Parallel.forEach(c, costPerItem: 3 * m) { range in
                for ch in range {
                    var s = 0.0, sx = 0.0
                    for i in 0..<n {
                        let off = (i * c + ch) * hw
                        let (a, b) = runSumAndCenteredDot(pdy.baseAddress! + off, px.baseAddress! + off, hw, cc.mean[ch])
                        s += Double(a); sx += Double(b)
                    }
                    psd[ch] = Float(s)
                    psx[ch] = Float(sx) * cc.invStd[ch]
                }
            }
        }}}}
        }
        for ch in 0..<c {
            weight.grad.data[ch] += sumDyXhat[ch]
            bias.grad.data[ch] += sumDy[ch]
        }
        let gamma = weight.value.data
        var a = [Float](repeating: 0, count: c), b = [Float](repeating: 0, count: c), k = [Float](repeating: 0, count: c)
        for ch in 0..<c {
            let gr = gamma[ch] * cc.invStd[ch]
            a[ch] = gr
            if cc.batchStatistics {
                let gr2m = gr * cc.invStd[ch] * sumDyXhat[ch] / Float(m)
                b[ch] = -gr2m
                k[ch] = -gr * sumDy[ch] / Float(m) + gr2m * cc.mean[ch]
            }
        }
        if let g = blocked { return (BlockedChannels.inputGradient(dy, x, g, a: a, b: b, k: k), dy) }
        return (normalizationInputGradient(dy, x, n: n, c: c, hw: hw) { _, ch in (a[ch], b[ch], k[ch]) }, dy)
    }

    public var parameters: [Parameter] { [weight, bias] }
    public var buffers: [Buffer] { [runningMean, runningVar] }
    public func clearCache() { cache = nil }

    public var typeName: String { "BatchNorm2d" }
    public var detail: String { "\(channels) channels, eps \(eps), momentum \(momentum)" + (frozen ? ", frozen" : "") }
    public func outputShape(for s: [Int]) -> [Int] { s }
}

// MARK: - Shared with GroupNorm

/// What a normalisation layer's forward keeps for its backward.
struct NormalizationCache {
    /// x, (N, C, H, W)
    var input: Tensor
    /// μ of each normalised set (BatchNorm2d: a channel; GroupNorm: one sample's group)
    var mean: [Float]
    /// ρ = 1/√(σ² + eps) of each normalised set
    var invStd: [Float]
    /// Whether μ, ρ came from the input (their gradient flows) or are constants (BatchNorm2d's running
    /// buffers); always true for GroupNorm.
    var batchStatistics: Bool
    /// The layout of x (and of y, dy, dx); GroupNorm's is always plain.
    var layout: ActivationLayout = .plain
    /// y, kept when a ReLU epilogue ran (its backward masks dy by y > 0).
    var output: Tensor? = nil

    /// The last forward's cache (taken: a second backward traps), checked against the incoming
    /// gradient, with N and H·W of the input.
    static func take(_ cache: inout NormalizationCache?, for dy: Tensor, layer: @autoclosure () -> String) -> (cache: NormalizationCache, n: Int, hw: Int) {
        let cc = takeCache(&cache, layer: layer())
        let x = cc.input
        precondition(dy.shape == x.shape, "\(layer()): dy \(dy.shape) vs input \(x.shape)")
        return (cc, x.shape[0], x.shape[2] * x.shape[3])
    }
}

/// The affine parameters of a normalisation over `channels` channels: γ = 1 ("NAME.weight") and
/// β = 0 ("NAME.bias"), as PyTorch's BatchNorm2d and GroupNorm start.
func normalizationAffine(_ name: String, channels: Int) -> (weight: Parameter, bias: Parameter) {
    (Parameter(name: name + ".weight", kind: .normWeight, value: Tensor(shape: [channels], repeating: 1)),
     Parameter(name: name + ".bias", kind: .normBias, value: Tensor.zeros([channels])))
}

/// dx = a·dy + b·x + k over each run (sample i, channel ch) of (N, C, HW), with (a, b, k) =
/// `coefficients(i, ch)`: the last step of both normalisations' backward.
func normalizationInputGradient(_ dy: Tensor, _ x: Tensor, n: Int, c: Int, hw: Int,
                                coefficients: (_ sample: Int, _ channel: Int) -> (Float, Float, Float)) -> Tensor {
    var dx = Tensor(uninitializedShape: x.shape)
    x.data.withUnsafeBufferPointer { px in
    dy.data.withUnsafeBufferPointer { pdy in
    dx.data.withUnsafeMutableBufferPointer { pdx in
        Parallel.forEach(n * c, costPerItem: 3 * hw) { range in
            for r in range {
                let (a, b, k) = coefficients(r / c, r % c)
                let s = pdy.baseAddress! + r * hw, xs = px.baseAddress! + r * hw, d = pdx.baseAddress! + r * hw
                for j in 0..<hw { d[j] = a * s[j] + b * xs[j] + k }
            }
        }
    }}}
    return dx
}

// MARK: - Shared per-run kernels (also used by GroupNorm)

/// Σ p[0..<n], in 8 float lanes.
@inline(__always)
func runSum(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = SIMD8<Float>()
    var j = 0
    while j + 8 <= n { acc += UnsafeRawPointer(p + j).loadUnaligned(as: SIMD8<Float>.self); j += 8 }
    var s = acc.sum()
    while j < n { s += p[j]; j += 1 }
    return s
}

/// Σ (p[j] − mu)², in 8 float lanes.
@inline(__always)
func runSquaredDeviation(_ p: UnsafePointer<Float>, _ n: Int, _ mu: Float) -> Float {
    var acc = SIMD8<Float>()
    let m8 = SIMD8<Float>(repeating: mu)
    var j = 0
    while j + 8 <= n {
        let d = UnsafeRawPointer(p + j).loadUnaligned(as: SIMD8<Float>.self) - m8
        acc += d * d
        j += 8
    }
    var s = acc.sum()
    while j < n { let d = p[j] - mu; s += d * d; j += 1 }
    return s
}

/// (Σ dy, Σ dy·(x − mu)) over a run, in 8 float lanes.
@inline(__always)
func runSumAndCenteredDot(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int, _ mu: Float) -> (Float, Float) {
    var a = SIMD8<Float>(), b = SIMD8<Float>()
    let m8 = SIMD8<Float>(repeating: mu)
    var j = 0
    while j + 8 <= n {
        let d = UnsafeRawPointer(dy + j).loadUnaligned(as: SIMD8<Float>.self)
        let v = UnsafeRawPointer(x + j).loadUnaligned(as: SIMD8<Float>.self) - m8
        a += d
        b += d * v
        j += 8
    }
    var s = a.sum(), t = b.sum()
    while j < n { s += dy[j]; t += dy[j] * (x[j] - mu); j += 1 }
    return (s, t)
}

/// y[i, ch, :] = scale[ch]·x[i, ch, :] + shift[ch] over (N, C, HW), then + residual and max(·, 0)
/// when asked (a residual block's epilogue, in the same pass; the same roundings as separate passes).
func applyAffine(_ x: Tensor, _ y: inout Tensor, _ scale: [Float], _ shift: [Float], n: Int, c: Int, hw: Int,
                 residual: Tensor? = nil, relu: Bool = false) {
    let empty: [Float] = []
    x.data.withUnsafeBufferPointer { px in
    (residual?.data ?? empty).withUnsafeBufferPointer { pr in
    y.data.withUnsafeMutableBufferPointer { py in
        Parallel.forEach(n * c, costPerItem: 2 * hw) { range in
            for r in range {
                let ch = r % c
                let s = px.baseAddress! + r * hw, d = py.baseAddress! + r * hw
                let a = scale[ch], b = shift[ch]
                if residual != nil {
                    let res = pr.baseAddress! + r * hw
                    for j in 0..<hw { d[j] = a * s[j] + b + res[j] }
                } else {
                    for j in 0..<hw { d[j] = a * s[j] + b }
                }
                // The ReLU while the run is in L1, with ReLU's own kernel (NaN passes through).
                if relu || residual != nil { reluForward(UnsafePointer(d), d, count: hw) }
            }
        }
    }}}
}

/// What BatchNorm2d applies after its affine map, in the same pass (the residual blocks' fusions):
/// nothing, max(·, 0), or max(· + residual, 0).
enum NormalizationEpilogue {
    case none
    case relu
    case addRelu(Tensor)

    var hasReLU: Bool {
        if case .none = self { return false }
        return true
    }
}

/// dy·[y > 0]: ReLU's backward (the ReLU layer's, and a ReLU fused into BatchNorm's).
func maskedByPositive(_ dy: Tensor, output y: Tensor) -> Tensor {
    precondition(dy.shape == y.shape, "ReLU: dy \(dy.shape) vs output \(y.shape)")
    var dx = Tensor(uninitializedShape: dy.shape)
    y.data.withUnsafeBufferPointer { py in
    dy.data.withUnsafeBufferPointer { pdy in
    dx.data.withUnsafeMutableBufferPointer { pdx in
        Parallel.forEach(py.count, costPerItem: 1, minimumWork: 1 << 18) { range in
            reluBackward(output: py.baseAddress! + range.lowerBound, pdy.baseAddress! + range.lowerBound,
                         pdx.baseAddress! + range.lowerBound, count: range.count)
        }
    }}}
    return dx
}
