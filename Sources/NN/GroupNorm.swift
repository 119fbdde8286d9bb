// Group normalisation (Wu & He 2018), as torch.nn.GroupNorm(groups, channels) with eps 1e-5, affine.
//
// Shapes: x (N, C, H, W); the C channels form G groups of C/G consecutive channels. Statistics are
// per (sample, group) over its (C/G)·H·W values, which are contiguous in NCHW. Always batch-free:
// training and evaluation behave the same.
//   x̂ = (x − μ_ng)·ρ_ng, ρ = 1/√(σ²_ng + eps) (biased variance), y = γ_c·x̂ + β_c
// Backward (the LayerNorm-style derivation applied per group, with g = dy·γ_c and M = (C/G)·H·W):
//   dx = ρ·(g − mean_group(g) − x̂·mean_group(g·x̂)),  dγ_c = Σ_{n,hw} dy·x̂,  dβ_c = Σ_{n,hw} dy
import TensorCore

public final class GroupNorm: Module, DescribedModule {
    public let name: String
    public let groups: Int
    public let channels: Int
    public let eps: Float
    /// γ, (C), initialised to 1
    public let weight: Parameter
    /// β, (C), initialised to 0
    public let bias: Parameter

    /// μ, ρ per (n, g), (N·G).
    private var cache: NormalizationCache?

    public init(name: String, groups: Int, channels: Int, eps: Float = 1e-5) {
        precondition(groups > 0 && channels > 0 && channels % groups == 0,
                     "GroupNorm \(name): \(channels) channels cannot be split into \(groups) groups")
        self.name = name
        self.groups = groups
        self.channels = channels
        self.eps = eps
        (weight, bias) = normalizationAffine(name, channels: channels)
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) -> Tensor {
        precondition(x.rank == 4 && x.shape[1] == channels, "GroupNorm \(name) expects (N, \(channels), H, W), got \(x.shape)")
        let n = x.shape[0], hw = x.shape[2] * x.shape[3]
        let cg = channels / groups, m = cg * hw
        var mean = [Float](repeating: 0, count: n * groups)
        var invStd = [Float](repeating: 0, count: n * groups)
        var y = Tensor(uninitializedShape: x.shape)
        let gamma = weight.value.data, beta = bias.value.data
        x.data.withUnsafeBufferPointer { px in
        y.data.withUnsafeMutableBufferPointer { py in
        mean.withUnsafeMutableBufferPointer { pm in
        invStd.withUnsafeMutableBufferPointer { pr in
            // group r = n·G + g covers floats [r·M, (r+1)·M)
            Parallel.forEach(n * groups, costPerItem: 4 * m) { range in
                for r in range {
                    let base = px.baseAddress! + r * m
                    let mu = Float(Double(runSum(base, m)) / Double(m))
                    let variance = runSquaredDeviation(base, m, mu) / Float(m)
                    let rho = 1 / (variance + eps).squareRoot()
                    pm[r] = mu; pr[r] = rho
                    let g = r % groups
                    for k in 0..<cg {
                        let ch = g * cg + k
                        let a = gamma[ch] * rho, b = beta[ch] - mu * gamma[ch] * rho
                        let s = base + k * hw, d = py.baseAddress! + r * m + k * hw
                        for j in 0..<hw { d[j] = a * s[j] + b }
                    }
                }
            }
        }}}}
        cache = ctx.needsBackward ? NormalizationCache(input: x, mean: mean, invStd: invStd, batchStatistics: true) : nil
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let (cc, n, hw) = NormalizationCache.take(&cache, for: dy, layer: "GroupNorm \(name)")
        let x = cc.input, c = channels
        let cg = c / groups, m = cg * hw
        let gamma = weight.value.data
        // Per sample and channel, the two sums dγ and dβ need: (Σ dy·x̂, Σ dy) over hw, (N, C) each;
        // per (n, g), the group means of g and g·x̂.
        var channelDyXhat = [Float](repeating: 0, count: n * c)
        var channelDy = [Float](repeating: 0, count: n * c)
        var groupMeanG = [Float](repeating: 0, count: n * groups)
        var groupMeanGX = [Float](repeating: 0, count: n * groups)
        x.data.withUnsafeBufferPointer { px in
        dy.data.withUnsafeBufferPointer { pdy in
        channelDyXhat.withUnsafeMutableBufferPointer { pcx in
        channelDy.withUnsafeMutableBufferPointer { pcd in
        groupMeanG.withUnsafeMutableBufferPointer { pmg in
        groupMeanGX.withUnsafeMutableBufferPointer { pmgx in
            Parallel.forEach(n * groups, costPerItem: 3 * m) { range in
                for r in range {
                    let g = r % groups, sample = r / groups
                    let mu = cc.mean[r], rho = cc.invStd[r]
                    // Σ g_i = Σ γ_c·dy, Σ g_i·x̂_i = ρ·Σ γ_c·dy·(x − μ)
                    var sumG = 0.0, sumGX = 0.0
                    for k in 0..<cg {
                        let ch = g * cg + k
                        let off = r * m + k * hw
                        let (s, t) = runSumAndCenteredDot(pdy.baseAddress! + off, px.baseAddress! + off, hw, mu)
                        pcd[sample * c + ch] = s
                        pcx[sample * c + ch] = t * rho
                        sumG += Double(gamma[ch]) * Double(s)
                        sumGX += Double(gamma[ch]) * Double(t) * Double(rho)
                    }
                    pmg[r] = Float(sumG / Double(m)); pmgx[r] = Float(sumGX / Double(m))
                }
            }
        }}}}}}
        for sample in 0..<n {
            for ch in 0..<c {
                weight.grad.data[ch] += channelDyXhat[sample * c + ch]
                bias.grad.data[ch] += channelDy[sample * c + ch]
            }
        }
        // dx = ρ·(γ_c·dy − meanG − (x − μ)·ρ·meanGX)
        return normalizationInputGradient(dy, x, n: n, c: c, hw: hw) { sample, ch in
            let r = sample * groups + ch / cg
            let mu = cc.mean[r], rho = cc.invStd[r], meanG = groupMeanG[r], meanGX = groupMeanGX[r]
            return (rho * gamma[ch], -rho * rho * meanGX, -rho * meanG + rho * rho * meanGX * mu)
        }
    }

    public var parameters: [Parameter] { [weight, bias] }
    public func clearCache() { cache = nil }

    public var typeName: String { "GroupNorm" }
    public var detail: String { "\(groups) groups, \(channels) channels, eps \(eps)" }
    public func outputShape(for s: [Int]) -> [Int] { s }
}
