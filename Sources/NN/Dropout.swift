// Inverted dropout (Srivastava et al. 2014; torch.nn.Dropout): in training each element is zeroed
// with probability p and the survivors are scaled by 1/(1 − p); in evaluation it is the identity.
// The mask is drawn from ctx.rng, so a seeded run is reproducible. Backward multiplies by the mask.
import TensorCore

public final class Dropout: Module, DescribedModule {
    public let probability: Float

    struct Cache {
        /// 0 or 1/(1 − p) per element; nil when the forward pass was the identity.
        var mask: [Float]?
    }
    private var cache: Cache?

    public init(_ p: Float) {
        precondition(p >= 0 && p < 1, "Dropout probability must be in [0, 1), got \(p)")
        self.probability = p
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) -> Tensor {
        guard ctx.training && probability > 0 else {
            cache = ctx.needsBackward ? Cache(mask: nil) : nil
            return x
        }
        guard let box = ctx.rng else {
            preconditionFailure("Dropout(\(probability)) in training needs ForwardContext.rng")
        }
        let keep = 1 / (1 - probability)
        var mask = [Float](repeating: 0, count: x.count)
        for i in 0..<mask.count where box.rng.uniform() >= probability { mask[i] = keep }
        var y = x
        for i in 0..<y.count { y.data[i] *= mask[i] }
        cache = ctx.needsBackward ? Cache(mask: mask) : nil
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let c = takeCache(&cache, layer: "Dropout")
        guard let mask = c.mask else { return dy }
        var dx = dy
        for i in 0..<dx.count { dx.data[i] *= mask[i] }
        return dx
    }

    public func clearCache() { cache = nil }
    public var typeName: String { "Dropout" }
    public var detail: String { "p \(probability)" }
    public func outputShape(for s: [Int]) -> [Int] { s }
}
