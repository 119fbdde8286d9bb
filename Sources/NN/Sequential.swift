// An ordered list of named children applied one after the other; backward runs them in reverse.
import TensorCore

public final class Sequential: Module, DescribedModule {
    /// (local name, module) in application order.
    public private(set) var layers: [(String, Module)]

    public init(_ layers: [(String, Module)]) {
        self.layers = layers
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) -> Tensor {
        var h = x
        for (_, layer) in layers { h = layer.forward(h, ctx) }
        return h
    }

    public func backward(_ dy: Tensor) -> Tensor {
        var g = dy
        for (_, layer) in layers.reversed() { g = layer.backward(g) }
        return g
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
