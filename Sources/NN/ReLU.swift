// Rectified linear unit y = max(x, 0); backward dx = dy·[y > 0] (the subgradient at 0 is 0, as PyTorch).
// The cache is the output, which the next layer usually keeps as its input anyway, so no extra memory.
import TensorCore

public final class ReLU: Module, DescribedModule, LayoutAwareModule {
    struct Cache {
        /// y, any shape
        var output: Tensor
    }
    private var cache: Cache?

    public init() {}

    public func forward(_ x: Tensor, _ ctx: ForwardContext) -> Tensor {
        var y = Tensor(uninitializedShape: x.shape)
        x.data.withUnsafeBufferPointer { px in
        y.data.withUnsafeMutableBufferPointer { py in
            Parallel.forEach(px.count, costPerItem: 1, minimumWork: 1 << 18) { range in
                reluForward(px.baseAddress! + range.lowerBound, py.baseAddress! + range.lowerBound, count: range.count)
            }
        }}
        cache = ctx.needsBackward ? Cache(output: y) : nil
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let c = takeCache(&cache, layer: "ReLU")
        return maskedByPositive(dy, output: c.output)
    }

    /// Elementwise: any layout, unchanged.
    func accepts(_ layout: ActivationLayout) -> Bool { true }
    var startsBlockedRun: Bool { false }
    func forward(_ x: Tensor, _ ctx: ForwardContext, layout: ActivationLayout) -> (Tensor, ActivationLayout) {
        (forward(x, ctx), layout)
    }

    public func clearCache() { cache = nil }
    public var typeName: String { "ReLU" }
    public var detail: String { "" }
    public func outputShape(for s: [Int]) -> [Int] { s }
}
