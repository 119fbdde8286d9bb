// Max pooling over square windows with implicit −∞ padding, as torch.nn.MaxPool2d (ceil_mode false).
// Shapes: x (N, C, H, W) -> y (N, C, OH, OW), OH = (H + 2p − k)/s + 1.
// Backward routes each dy to the input position that won its window (the first maximum in
// row-major window order on ties); windows that overlap accumulate. Runs on plain or blocked
// activations (docs/backends.md, "Blocked activations"): a plane (image, channel) is then every b-th
// float of its channel block's slab.
import TensorCore

public final class MaxPool2d: Module, DescribedModule, LayoutAwareModule {
    public let kernelSize: Int
    public let stride: Int
    public let padding: Int

    struct Cache {
        /// input shape (N, C, H, W)
        var inputShape: [Int]
        /// per output element (in the layout's order), the pixel index inside its (H·W) plane of the
        /// winning input, (N·C·OH·OW)
        var argmax: [Int32]
        var layout: ActivationLayout
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

    /// Any layout (a blocked run continues through; the channel count is the input's).
    func accepts(_ layout: ActivationLayout) -> Bool { true }
    var startsBlockedRun: Bool { false }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) -> Tensor { forward(x, ctx, layout: .plain).0 }

    func forward(_ x: Tensor, _ ctx: ForwardContext, layout: ActivationLayout) -> (Tensor, ActivationLayout) {
        precondition(x.rank == 4, "MaxPool2d expects (N, C, H, W), got \(x.shape)")
        let outShape = outputShape(for: x.shape)
        precondition(outShape[2] > 0 && outShape[3] > 0, "MaxPool2d: input \(x.shape) too small for kernel \(kernelSize)")
        let channels = x.shape[1], planes = x.shape[0] * channels, h = x.shape[2], w = x.shape[3]
        let oh = outShape[2], ow = outShape[3]
        let inShape = x.shape
        var y = Tensor(uninitializedShape: outShape)
        var argmax = [Int32](repeating: 0, count: ctx.needsBackward ? y.count : 0)
        let keep = ctx.needsBackward
        let k = kernelSize, s = stride, p = padding
        x.data.withUnsafeBufferPointer { px in
        y.data.withUnsafeMutableBufferPointer { py in
        argmax.withUnsafeMutableBufferPointer { pa in
            Parallel.forEach(planes, costPerItem: oh * ow * k * k) { range in
                for plane in range {
                    let (inBase, step) = layout.plane(in: inShape, plane / channels, plane % channels)
                    let outBase = layout.plane(in: outShape, plane / channels, plane % channels).base
                    let src = px.baseAddress! + inBase
                    for a in 0..<oh {
                        let h0 = max(0, a * s - p), h1 = min(h, a * s - p + k)
                        for b in 0..<ow {
                            let w0 = max(0, b * s - p), w1 = min(w, b * s - p + k)
                            var best = -Float.infinity, where_ = h0 * w + w0
                            for i in h0..<h1 { for j in w0..<w1 {
                                let v = src[(i * w + j) * step]
                                if v > best || v.isNaN { best = v; where_ = i * w + j }
                            } }
                            let o = outBase + (a * ow + b) * step
                            py[o] = best
                            if keep { pa[o] = Int32(where_) }
                        }
                    }
                }
            }
        }}}
        cache = keep ? Cache(inputShape: x.shape, argmax: argmax, layout: layout) : nil
        return (y, layout)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let c = takeCache(&cache, layer: "MaxPool2d")
        let channels = c.inputShape[1], planes = c.inputShape[0] * channels
        let per = dy.count / max(1, planes)
        precondition(dy.count == c.argmax.count, "MaxPool2d: dy \(dy.shape) does not match the forward output")
        var dx = Tensor.zeros(c.inputShape)
        let outShape = dy.shape, layout = c.layout
        dy.data.withUnsafeBufferPointer { pdy in
        dx.data.withUnsafeMutableBufferPointer { pdx in
        c.argmax.withUnsafeBufferPointer { pa in
            // A plane's elements are disjoint from every other plane's in either layout, so planes
            // can be split across threads.
            Parallel.forEach(planes, costPerItem: per * 2) { range in
                for plane in range {
                    let (inBase, step) = layout.plane(in: c.inputShape, plane / channels, plane % channels)
                    let outBase = layout.plane(in: outShape, plane / channels, plane % channels).base
                    let d = pdx.baseAddress! + inBase
                    for j in 0..<per {
                        let o = outBase + j * step
                        d[Int(pa[o]) * step] += pdy[o]
                    }
                }
            }
        }}}
        return dx
    }

    public func clearCache() { cache = nil }
    public var typeName: String { "MaxPool2d" }
    public var detail: String { "kernel \(kernelSize), stride \(stride), padding \(padding)" }
}
