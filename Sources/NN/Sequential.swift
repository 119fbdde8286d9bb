// An ordered list of named children applied one after the other; backward runs them in reverse.
//
// Layouts (docs/backends.md, "Blocked activations"): on the oneDNN backend a run of children that
// can take oneDNN's blocked layout (LayoutAwareModule) is handed blocked tensors from one to the next.
// A run starts at a convolution or a residual stage (never at a lone BatchNorm or ReLU, which would
// cost two reorders and save none; a stem convolution takes the plain image and writes blocked) and
// ends at a child that cannot take the layout, or at global average pooling, whose (N, C) output is
// plain. The tensor is reordered where a run is entered from or left to plain (never, in the ResNets);
// backward replays the same layouts from the trace the forward recorded.
import TensorCore

public final class Sequential: Module, DescribedModule, LayoutAwareModule {
    /// (local name, module) in application order.
    public private(set) var layers: [(String, Module)]

    /// The layouts of the last forward: each child's input and output, this module's own input, the
    /// last child's output, and the layout handed to the caller.
    private struct LayoutTrace {
        var children: [(input: ActivationLayout, output: ActivationLayout)] = []
        var input: ActivationLayout = .plain
        var lastOutput: ActivationLayout = .plain
        var returned: ActivationLayout = .plain
    }
    private var trace = LayoutTrace()

    public init(_ layers: [(String, Module)]) {
        self.layers = layers
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) -> Tensor {
        let y = run(x, ctx, input: .plain, target: Backend.activationLayout, pinned: false)
        trace.returned = .plain
        return y.reordered(from: trace.lastOutput, to: .plain)
    }

    func accepts(_ layout: ActivationLayout) -> Bool {
        (layers.first?.1 as? LayoutAwareModule)?.accepts(layout) ?? false
    }
    func inputLayout(for layout: ActivationLayout) -> ActivationLayout {
        (layers.first?.1 as? LayoutAwareModule)?.inputLayout(for: layout) ?? layout
    }
    var startsBlockedRun: Bool { (layers.first?.1 as? LayoutAwareModule)?.startsBlockedRun ?? false }

    /// x in `inputLayout(for: layout)`; the children choose as in `forward(_:_:)`, aiming at `layout`
    /// when it is blocked.
    func forward(_ x: Tensor, _ ctx: ForwardContext, layout: ActivationLayout) -> (Tensor, ActivationLayout) {
        let y = run(x, ctx, input: inputLayout(for: layout), target: layout != .plain ? layout : Backend.activationLayout,
                    pinned: false)
        trace.returned = trace.lastOutput
        return (y, trace.lastOutput)
    }

    /// x and the result in `layout`, and every child that can take it runs in it (a residual block's
    /// projection shortcut, whose layout the block fixes).
    func forwardPinned(_ x: Tensor, _ ctx: ForwardContext, layout: ActivationLayout) -> Tensor {
        let y = run(x, ctx, input: layout, target: layout, pinned: true)
        trace.returned = layout
        return y.reordered(from: trace.lastOutput, to: layout)
    }

    private func run(_ x: Tensor, _ ctx: ForwardContext, input: ActivationLayout, target: ActivationLayout,
                     pinned: Bool) -> Tensor {
        var h = x, current = input
        var t = LayoutTrace(input: input)
        for (_, layer) in layers {
            if target != .plain, h.rank == 4, let m = layer as? LayoutAwareModule, m.accepts(target),
               pinned || current == target || m.startsBlockedRun {
                let wanted = m.inputLayout(for: target)
                h = h.reordered(from: current, to: wanted)
                let (y, out) = m.forward(h, ctx, layout: target)
                t.children.append((wanted, out))
                h = y; current = out
            } else {
                h = h.reordered(from: current, to: .plain)
                h = layer.forward(h, ctx)
                t.children.append((.plain, .plain))
                current = .plain
            }
        }
        t.lastOutput = current
        trace = t
        return h
    }

    public func backward(_ dy: Tensor) -> Tensor {
        precondition(trace.children.count == layers.count, "Sequential: backward called without a forward pass")
        var g = dy.reordered(from: trace.returned, to: trace.lastOutput)
        var current = trace.lastOutput
        for (i, (_, layer)) in layers.enumerated().reversed() {
            g = g.reordered(from: current, to: trace.children[i].output)
            g = layer.backward(g)
            current = trace.children[i].input
        }
        return g.reordered(from: current, to: trace.input)
    }

    public var parameters: [Parameter] { layers.flatMap { $0.1.parameters } }
    public var buffers: [Buffer] { layers.flatMap { $0.1.buffers } }
    public var children: [(String, Module)] { layers }
    public func clearCache() { for (_, l) in layers { l.clearCache() } }

    /// The child with this local name.
    public subscript(name: String) -> Module? { layers.first { $0.0 == name }?.1 }

    public var typeName: String { "Sequential" }
    public var detail: String { "\(layers.count) layers" }
    public func outputShape(for s: [Int]) -> [Int] { childInputShapes(for: s).last.map { shape in
        (layers.last!.1 as? DescribedModule)?.outputShape(for: shape) ?? shape } ?? s }
    public func childInputShapes(for s: [Int]) -> [[Int]] {
        var shapes: [[Int]] = []
        var cur = s
        for (_, l) in layers {
            shapes.append(cur)
            cur = (l as? DescribedModule)?.outputShape(for: cur) ?? cur
        }
        return shapes
    }
}
