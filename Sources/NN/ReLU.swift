// Rectified linear unit y = max(x, 0); backward dx = dy·[y > 0] (the subgradient at 0 is 0, as PyTorch).
// The cache is the output, which the next layer usually keeps as its input anyway, so no extra memory.
import TensorCore

public final class ReLU: Module, DescribedModule {
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
                let s = px.baseAddress!, d = py.baseAddress!
                // `v > 0 ? v : 0` vectorises; `max` on Float does not (NaN handling).
                for i in range { let v = s[i]; d[i] = v > 0 ? v : 0 }
            }
        }}
        cache = ctx.needsBackward ? Cache(output: y) : nil
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let c = cache else { preconditionFailure("ReLU: backward called without a forward pass with needsBackward") }
        cache = nil
        precondition(dy.shape == c.output.shape, "ReLU: dy \(dy.shape) vs output \(c.output.shape)")
        var dx = Tensor(uninitializedShape: dy.shape)
        c.output.data.withUnsafeBufferPointer { py in
        dy.data.withUnsafeBufferPointer { pdy in
        dx.data.withUnsafeMutableBufferPointer { pdx in
            Parallel.forEach(py.count, costPerItem: 1, minimumWork: 1 << 18) { range in
                let y = py.baseAddress!, g = pdy.baseAddress!, d = pdx.baseAddress!
                for i in range { d[i] = y[i] > 0 ? g[i] : 0 }
            }
        }}}
        return dx
    }

    public var parameters: [Parameter] { [] }
    public func clearCache() { cache = nil }
    public var typeName: String { "ReLU" }
    public var detail: String { "" }
    public func outputShape(for s: [Int]) -> [Int] { s }
}
