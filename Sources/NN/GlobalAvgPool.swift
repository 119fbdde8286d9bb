// Global average pooling with flattening: (N, C, H, W) -> (N, C), y[n, c] = mean_hw x[n, c, :, :]
// (torchvision's AdaptiveAvgPool2d(1) followed by flatten). Backward spreads dy/(H·W) evenly.
import TensorCore

public final class GlobalAvgPool: Module, DescribedModule, LayoutAwareModule {
    /// The input's shape (N, C, H, W), kept for backward.
    private var inputShape: [Int]?
    /// The input's layout (dx is returned in it); the output (N, C) is always plain.
    private var inputLayout: ActivationLayout = .plain

    public init() {}

    /// Any layout in (a blocked run ends here: the output is plain).
    func accepts(_ layout: ActivationLayout) -> Bool { true }
    var startsBlockedRun: Bool { false }
    func forward(_ x: Tensor, _ ctx: ForwardContext, layout: ActivationLayout) -> (Tensor, ActivationLayout) {
        guard layout != .plain else { return (forward(x, ctx), .plain) }
        let y = BlockedChannels.spatialMeans(x, BlockedGeometry(x.shape, layout))
        inputShape = ctx.needsBackward ? x.shape : nil
        inputLayout = layout
        return (y, .plain)
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) -> Tensor {
        precondition(x.rank == 4, "GlobalAvgPool expects (N, C, H, W), got \(x.shape)")
        inputLayout = .plain
        let planes = x.shape[0] * x.shape[1], hw = x.shape[2] * x.shape[3]
        var y = Tensor(uninitializedShape: [x.shape[0], x.shape[1]])
        x.data.withUnsafeBufferPointer { px in
        y.data.withUnsafeMutableBufferPointer { py in
            for r in 0..<planes { py[r] = runSum(px.baseAddress! + r * hw, hw) / Float(hw) }
        }}
        inputShape = ctx.needsBackward ? x.shape : nil
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let shape = takeCache(&inputShape, layer: "GlobalAvgPool")
        let planes = shape[0] * shape[1], hw = shape[2] * shape[3]
        precondition(dy.count == planes, "GlobalAvgPool: dy \(dy.shape) vs (N, C) = \(shape.prefix(2))")
        if inputLayout != .plain { return BlockedChannels.spreadMeans(dy, BlockedGeometry(shape, inputLayout), shape: shape) }
        var dx = Tensor(uninitializedShape: shape)
        dy.data.withUnsafeBufferPointer { pdy in
        dx.data.withUnsafeMutableBufferPointer { pdx in
            for r in 0..<planes {
                let v = pdy[r] / Float(hw)
                let d = pdx.baseAddress! + r * hw
                for j in 0..<hw { d[j] = v }
            }
        }}
        return dx
    }

    public func clearCache() { inputShape = nil }
    public var typeName: String { "GlobalAvgPool" }
    public var detail: String { "mean over H, W, flattened" }
    public func outputShape(for s: [Int]) -> [Int] { [s[0], s[1]] }
}
