// Residual blocks: the two-conv BasicBlock (He et al. 2016, CIFAR and torchvision ResNet-18/34) and
// the 1×1-3×3-1×1 Bottleneck (torchvision ResNet-50, stride on the 3×3 conv: "ResNet v1.5").
//
// out = relu(main(x) + shortcut(x)); backward splits dL/d(sum) between the two branches and adds
// their input gradients. Every ReLU, and the residual add, runs inside the pass of the BatchNorm
// before it (BatchNorm2d's epilogue): the same roundings as separate layers, fewer passes over
// memory. Shortcuts:
//   identity      when shape is unchanged
//   zero padding  He et al. 2016 §4.2 option A: x[:, :, ::s, ::s] with zero channels added,
//                 (Cout − Cin)/2 before and the rest after (as the widely used CIFAR reimplementations);
//                 no parameters. Its adjoint picks the same positions back out.
//   projection    option B / torchvision: 1×1 conv (stride s, no bias) + BatchNorm, named
//                 "downsample.0" and "downsample.1".
import TensorCore

/// How a residual block matches shapes when its output differs from its input.
public enum ResidualShortcut: String, Sendable, CaseIterable {
    /// Option A: strided subsampling plus zero channels (parameter-free).
    case zeroPadding = "A"
    /// Option B: 1×1 convolution + BatchNorm.
    case projection = "B"
}

/// The parameter-free option-A shortcut: (N, Cin, H, W) -> (N, Cout, ⌈H/s⌉, ⌈W/s⌉).
public final class ZeroPadShortcut: Module, DescribedModule, LayoutAwareModule {
    public let inChannels: Int
    public let outChannels: Int
    public let stride: Int
    /// Zero channels placed before the copied ones.
    public let padBefore: Int

    struct Cache {
        var inputShape: [Int]
        var layout: ActivationLayout
    }
    private var cache: Cache?

    public init(inChannels: Int, outChannels: Int, stride: Int) {
        precondition(outChannels >= inChannels && stride >= 1,
                     "ZeroPadShortcut: cannot map \(inChannels) to \(outChannels) channels with stride \(stride)")
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.stride = stride
        self.padBefore = (outChannels - inChannels) / 2
    }

    public func outputShape(for s: [Int]) -> [Int] {
        [s[0], outChannels, (s[2] - 1) / stride + 1, (s[3] - 1) / stride + 1]
    }

    func accepts(_ layout: ActivationLayout) -> Bool { layout.holds(channels: inChannels) && layout.holds(channels: outChannels) }
    var startsBlockedRun: Bool { false }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) -> Tensor { forward(x, ctx, layout: .plain).0 }

    /// y[i, padBefore + c, a, b] = x[i, c, a·s, b·s], plane by plane through the layout's addressing
    /// (a plain plane is contiguous; a blocked one is every b-th float of its block's slab).
    func forward(_ x: Tensor, _ ctx: ForwardContext, layout: ActivationLayout) -> (Tensor, ActivationLayout) {
        precondition(x.rank == 4 && x.shape[1] == inChannels, "ZeroPadShortcut expects (N, \(inChannels), H, W), got \(x.shape)")
        var y = Tensor.zeros(outputShape(for: x.shape))
        cache = ctx.needsBackward ? Cache(inputShape: x.shape, layout: layout) : nil
        x.data.withUnsafeBufferPointer { px in
        y.data.withUnsafeMutableBufferPointer { py in
            forEachCopiedPair(narrowShape: x.shape, wideShape: y.shape, layout: layout) { n, o in py[o] = px[n] }
        }}
        return (y, layout)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let cc = takeCache(&cache, layer: "ZeroPadShortcut")
        var dx = Tensor.zeros(cc.inputShape)
        dy.data.withUnsafeBufferPointer { pdy in
        dx.data.withUnsafeMutableBufferPointer { pdx in
            forEachCopiedPair(narrowShape: cc.inputShape, wideShape: dy.shape, layout: cc.layout) { n, o in pdx[n] = pdy[o] }
        }}
        return dx
    }

    /// Calls `body(n, o)` for every copied element: n indexes the narrow tensor's pixel (a·s, b·s) of
    /// channel c, o the wide tensor's pixel (a, b) of channel padBefore + c (forward copies n to o,
    /// backward, the adjoint, o to n).
    @inline(__always)
    private func forEachCopiedPair(narrowShape: [Int], wideShape: [Int], layout: ActivationLayout,
                                   _ body: (Int, Int) -> Void) {
        let w = narrowShape[3], oh = wideShape[2], ow = wideShape[3], s = stride
        for i in 0..<narrowShape[0] { for c in 0..<inChannels {
            let (nb, step) = layout.plane(in: narrowShape, i, c)
            let wb = layout.plane(in: wideShape, i, padBefore + c).base
            for a in 0..<oh { for b in 0..<ow { body(nb + ((a * s) * w + b * s) * step, wb + (a * ow + b) * step) } }
        } }
    }

    public func clearCache() { cache = nil }
    public var typeName: String { "ZeroPadShortcut" }
    public var detail: String { "\(inChannels) -> \(outChannels), stride \(stride) (option A)" }
}

/// conv3×3(stride) - BN - ReLU - conv3×3 - BN, plus shortcut, then ReLU.
public final class BasicBlock: Module, DescribedModule, LayoutAwareModule {
    public let name: String
    public let conv1: Conv2d
    public let bn1: BatchNorm2d
    public let conv2: Conv2d
    public let bn2: BatchNorm2d
    /// Projection shortcut ("downsample"), option B / torchvision.
    public let downsample: Sequential?
    /// Zero-padding shortcut, option A.
    public let zeroPad: ZeroPadShortcut?

    /// `name` is the block path, e.g. "layer2.0"; a shortcut is built when stride ≠ 1 or channels change.
    public init(name: String, inChannels: Int, outChannels: Int, stride: Int, shortcut: ResidualShortcut,
                rng: inout RNG) {
        self.name = name
        conv1 = Conv2d(name: name + ".conv1", inChannels: inChannels, outChannels: outChannels, kernel: 3,
                       stride: stride, padding: 1, rng: &rng)
        bn1 = BatchNorm2d(name: name + ".bn1", channels: outChannels)
        conv2 = Conv2d(name: name + ".conv2", inChannels: outChannels, outChannels: outChannels, kernel: 3,
                       stride: 1, padding: 1, rng: &rng)
        bn2 = BatchNorm2d(name: name + ".bn2", channels: outChannels)
        let needsShortcut = stride != 1 || inChannels != outChannels
        if needsShortcut && shortcut == .projection {
            downsample = Sequential([
                ("0", Conv2d(name: name + ".downsample.0", inChannels: inChannels, outChannels: outChannels,
                             kernel: 1, stride: stride, padding: 0, rng: &rng)),
                ("1", BatchNorm2d(name: name + ".downsample.1", channels: outChannels)),
            ])
            zeroPad = nil
        } else if needsShortcut {
            downsample = nil
            zeroPad = ZeroPadShortcut(inChannels: inChannels, outChannels: outChannels, stride: stride)
        } else {
            downsample = nil
            zeroPad = nil
        }
    }

    private var shortcutModule: Module? { downsample ?? zeroPad }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) -> Tensor { forward(x, ctx, layout: .plain).0 }

    func accepts(_ layout: ActivationLayout) -> Bool {
        layout.holds(channels: conv1.inChannels) && conv1.accepts(layout) && conv2.accepts(layout)
            && (downsample.map { projectionAccepts($0, layout) } ?? true)
    }
    var startsBlockedRun: Bool { true }

    /// Every tensor of the block in `layout`: the convolutions, BatchNorms, ReLUs, the shortcut and the
    /// add (elementwise) all run on it; backward follows the layouts each layer recorded. The ReLUs,
    /// and the residual add before the last one, run in the BatchNorms' affine pass.
    func forward(_ x: Tensor, _ ctx: ForwardContext, layout: ActivationLayout) -> (Tensor, ActivationLayout) {
        let h = bn1.forward(conv1.forward(x, ctx, layout: layout).0, ctx, layout: layout, epilogue: .relu)
        let s = shortcut(x, ctx, layout: layout, projection: downsample, zeroPad: zeroPad)
        return (bn2.forward(conv2.forward(h, ctx, layout: layout).0, ctx, layout: layout, epilogue: .addRelu(s)), layout)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        // g: the gradient at the sum (before the last ReLU), shared by both branches.
        let (main, g) = bn2.backwardThroughEpilogue(dy)
        var dx = conv1.backward(bn1.backward(conv2.backward(main)))
        dx.add(shortcutModule?.backward(g) ?? g)
        return dx
    }

    public var children: [(String, Module)] {
        var c: [(String, Module)] = [("conv1", conv1), ("bn1", bn1), ("conv2", conv2), ("bn2", bn2)]
        if let d = downsample { c.append(("downsample", d)) }
        if let z = zeroPad { c.append(("shortcut", z)) }
        return c
    }
    public var typeName: String { "BasicBlock" }
    public var detail: String {
        "\(conv1.inChannels) -> \(conv2.outChannels), stride \(conv1.stride)"
            + (downsample != nil ? ", projection shortcut" : zeroPad != nil ? ", zero-padding shortcut" : "")
    }
    public func outputShape(for s: [Int]) -> [Int] { conv1.outputShape(for: s).enumerated().map { $0.offset == 1 ? conv2.outChannels : $0.element } }
    public func childInputShapes(for s: [Int]) -> [[Int]] {
        let mid = conv1.outputShape(for: s)
        return [s, mid, mid, mid] + (shortcutModule != nil ? [s] : [])
    }
}

/// conv1×1 - BN - ReLU - conv3×3(stride) - BN - ReLU - conv1×1 (×4 channels) - BN, plus shortcut, then ReLU.
public final class Bottleneck: Module, DescribedModule, LayoutAwareModule {
    public static let expansion = 4
    public let name: String
    public let conv1: Conv2d
    public let bn1: BatchNorm2d
    public let conv2: Conv2d
    public let bn2: BatchNorm2d
    public let conv3: Conv2d
    public let bn3: BatchNorm2d
    public let downsample: Sequential?

    /// `planes` is the inner width; the block outputs planes·4 channels.
    public init(name: String, inChannels: Int, planes: Int, stride: Int, rng: inout RNG) {
        self.name = name
        let out = planes * Bottleneck.expansion
        conv1 = Conv2d(name: name + ".conv1", inChannels: inChannels, outChannels: planes, kernel: 1, rng: &rng)
        bn1 = BatchNorm2d(name: name + ".bn1", channels: planes)
        conv2 = Conv2d(name: name + ".conv2", inChannels: planes, outChannels: planes, kernel: 3, stride: stride,
                       padding: 1, rng: &rng)
        bn2 = BatchNorm2d(name: name + ".bn2", channels: planes)
        conv3 = Conv2d(name: name + ".conv3", inChannels: planes, outChannels: out, kernel: 1, rng: &rng)
        bn3 = BatchNorm2d(name: name + ".bn3", channels: out)
        if stride != 1 || inChannels != out {
            downsample = Sequential([
                ("0", Conv2d(name: name + ".downsample.0", inChannels: inChannels, outChannels: out, kernel: 1,
                             stride: stride, rng: &rng)),
                ("1", BatchNorm2d(name: name + ".downsample.1", channels: out)),
            ])
        } else {
            downsample = nil
        }
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) -> Tensor { forward(x, ctx, layout: .plain).0 }

    func accepts(_ layout: ActivationLayout) -> Bool {
        layout.holds(channels: conv1.inChannels) && conv1.accepts(layout) && conv2.accepts(layout)
            && conv3.accepts(layout) && (downsample.map { projectionAccepts($0, layout) } ?? true)
    }
    var startsBlockedRun: Bool { true }

    /// As BasicBlock's: every tensor of the block in `layout`, the ReLUs and the residual add fused
    /// into the BatchNorms' affine passes.
    func forward(_ x: Tensor, _ ctx: ForwardContext, layout: ActivationLayout) -> (Tensor, ActivationLayout) {
        var h = bn1.forward(conv1.forward(x, ctx, layout: layout).0, ctx, layout: layout, epilogue: .relu)
        h = bn2.forward(conv2.forward(h, ctx, layout: layout).0, ctx, layout: layout, epilogue: .relu)
        let s = shortcut(x, ctx, layout: layout, projection: downsample, zeroPad: nil)
        return (bn3.forward(conv3.forward(h, ctx, layout: layout).0, ctx, layout: layout, epilogue: .addRelu(s)), layout)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let (main, g) = bn3.backwardThroughEpilogue(dy)
        var h = conv3.backward(main)
        h = conv2.backward(bn2.backward(h))
        var dx = conv1.backward(bn1.backward(h))
        dx.add(downsample?.backward(g) ?? g)
        return dx
    }

    public var children: [(String, Module)] {
        var c: [(String, Module)] = [("conv1", conv1), ("bn1", bn1), ("conv2", conv2), ("bn2", bn2),
                                     ("conv3", conv3), ("bn3", bn3)]
        if let d = downsample { c.append(("downsample", d)) }
        return c
    }
    public var typeName: String { "Bottleneck" }
    public var detail: String {
        "\(conv1.inChannels) -> \(conv2.outChannels) -> \(conv3.outChannels), stride \(conv2.stride)"
            + (downsample != nil ? ", projection shortcut" : "")
    }
    public func outputShape(for s: [Int]) -> [Int] { conv3.outputShape(for: conv2.outputShape(for: conv1.outputShape(for: s))) }
    public func childInputShapes(for s: [Int]) -> [[Int]] {
        let a = conv1.outputShape(for: s), b = conv2.outputShape(for: a), c = conv3.outputShape(for: b)
        return [s, a, a, b, b, c] + (downsample != nil ? [s] : [])
    }
}

/// Whether a projection shortcut (1×1 conv + BatchNorm, built by the blocks above) takes `layout`.
private func projectionAccepts(_ projection: Sequential, _ layout: ActivationLayout) -> Bool {
    projection.layers.allSatisfy { ($0.1 as? LayoutAwareModule)?.accepts(layout) ?? false }
}

/// A residual block's shortcut branch on x in `layout`: the projection's conv and BatchNorm, the
/// zero-padding shortcut, or x itself, in `layout` (their backward follows the layouts they recorded).
private func shortcut(_ x: Tensor, _ ctx: ForwardContext, layout: ActivationLayout, projection: Sequential?,
                      zeroPad: ZeroPadShortcut?) -> Tensor {
    if let projection { return projection.forwardPinned(x, ctx, layout: layout) }
    if let zeroPad { return zeroPad.forward(x, ctx, layout: layout).0 }
    return x
}
