// Flatten: (N, d1, d2, ...) -> (N, d1·d2·...); backward reshapes back.
import TensorCore

public final class Flatten: Module, DescribedModule {
    /// The input's shape, kept for backward.
    private var inputShape: [Int]?

    public init() {}

    public func forward(_ x: Tensor, _ ctx: ForwardContext) -> Tensor {
        precondition(x.rank >= 1, "Flatten needs a batch dimension, got \(x.shape)")
        inputShape = ctx.needsBackward ? x.shape : nil
        return x.reshaped(outputShape(for: x.shape))
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let shape = takeCache(&inputShape, layer: "Flatten")
        return dy.reshaped(shape)
    }

    public func clearCache() { inputShape = nil }
    public var typeName: String { "Flatten" }
    public var detail: String { "" }
    public func outputShape(for s: [Int]) -> [Int] { [s[0], s.dropFirst().reduce(1, *)] }
}
