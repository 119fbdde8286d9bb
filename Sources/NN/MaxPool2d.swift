// Max pooling over square windows with implicit −∞ padding, as torch.nn.MaxPool2d (ceil_mode false).
// Shapes: x (N, C, H, W) -> y (N, C, OH, OW), OH = (H + 2p − k)/s + 1.
// Backward routes each dy to the input position that won its window (the first maximum in
// row-major window order on ties); windows that overlap accumulate.
import TensorCore

public final class MaxPool2d: Module, DescribedModule {
    public let kernelSize: Int
    public let stride: Int
    public let padding: Int

    struct Cache {
        /// input shape (N, C, H, W)
        var inputShape: [Int]
        /// per output element, the flat index inside its (H·W) plane of the winning input, (N·C·OH·OW)
        var argmax: [Int32]
    }
    private var cache: Cache?

    public init(kernel: Int, stride: Int? = nil, padding: Int = 0) {
        precondition(kernel > 0 && (stride ?? kernel) > 0 && padding >= 0 && padding * 2 <= kernel,
                     "MaxPool2d: invalid kernel \(kernel), stride \(stride ?? kernel), padding \(padding) (padding must be at most half the kernel)")
        self.kernelSize = kernel
        self.stride = stride ?? kernel
        self.padding = padding
    }

    public func outputShape(for s: [Int]) -> [Int] {
        [s[0], s[1], (s[2] + 2 * padding - kernelSize) / stride + 1, (s[3] + 2 * padding - kernelSize) / stride + 1]
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) -> Tensor {
        precondition(x.rank == 4, "MaxPool2d expects (N, C, H, W), got \(x.shape)")
        let outShape = outputShape(for: x.shape)
        precondition(outShape[2] > 0 && outShape[3] > 0, "MaxPool2d: input \(x.shape) too small for kernel \(kernelSize)")
        let planes = x.shape[0] * x.shape[1], h = x.shape[2], w = x.shape[3]
        let oh = outShape[2], ow = outShape[3]
        var y = Tensor(uninitializedShape: outShape)
        var argmax = [Int32](repeating: 0, count: ctx.needsBackward ? y.count : 0)
        let keep = ctx.needsBackward
        let k = kernelSize, s = stride, p = padding
        x.data.withUnsafeBufferPointer { px in
        y.data.withUnsafeMutableBufferPointer { py in
        argmax.withUnsafeMutableBufferPointer { pa in
            Parallel.forEach(planes, costPerItem: oh * ow * k * k) { range in
                for plane in range {
                    let src = px.baseAddress! + plane * h * w
                    for a in 0..<oh {
                        let h0 = max(0, a * s - p), h1 = min(h, a * s - p + k)
                        for b in 0..<ow {
                            let w0 = max(0, b * s - p), w1 = min(w, b * s - p + k)
                            var best = -Float.infinity, where_ = h0 * w + w0
                            for i in h0..<h1 { for j in w0..<w1 {
                                let v = src[i * w + j]
                                if v > best || v.isNaN { best = v; where_ = i * w + j }
                            } }
                            let o = (plane * oh + a) * ow + b
                            py[o] = best
                            if keep { pa[o] = Int32(where_) }
                        }
                    }
                }
            }
        }}}
        cache = keep ? Cache(inputShape: x.shape, argmax: argmax) : nil
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let c = takeCache(&cache, layer: "MaxPool2d")
        let planes = c.inputShape[0] * c.inputShape[1], hw = c.inputShape[2] * c.inputShape[3]
        let per = dy.count / max(1, planes)
        precondition(dy.count == c.argmax.count, "MaxPool2d: dy \(dy.shape) does not match the forward output")
        var dx = Tensor.zeros(c.inputShape)
        dy.data.withUnsafeBufferPointer { pdy in
        dx.data.withUnsafeMutableBufferPointer { pdx in
        c.argmax.withUnsafeBufferPointer { pa in
            Parallel.forEach(planes, costPerItem: per * 2) { range in
                for plane in range {
                    let d = pdx.baseAddress! + plane * hw
                    for o in (plane * per)..<((plane + 1) * per) { d[Int(pa[o])] += pdy[o] }
                }
            }
        }}}
        return dx
    }

    public func clearCache() { cache = nil }
    public var typeName: String { "MaxPool2d" }
    public var detail: String { "kernel \(kernelSize), stride \(stride), padding \(padding)" }
}
