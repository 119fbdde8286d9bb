// Printing a model layer by layer: each layer says what it is, its hyperparameters and the
// shape it produces; containers say what shape each child receives so shapes propagate.
import TensorCore

/// One printed row of a model summary.
public struct LayerDescription: Equatable, Sendable {
    /// Dotted module path ("layer1.0.conv1"); "" for the root.
    public var name: String
    /// Layer type ("Conv2d", "BatchNorm2d", "BasicBlock", ...).
    public var type: String
    /// Hyperparameters in words ("16 -> 32, kernel 3, stride 2, padding 1, no bias").
    public var detail: String
    /// Output shape for one sample (batch dimension dropped), when an input shape was given.
    public var outputShape: [Int]?
    /// Parameters of this module and everything below it (quantizer scales included).
    public var parameterCount: Int
    /// Nesting depth, 0 for the root.
    public var depth: Int

    public init(name: String, type: String, detail: String, outputShape: [Int]?, parameterCount: Int, depth: Int) {
        self.name = name; self.type = type; self.detail = detail
        self.outputShape = outputShape; self.parameterCount = parameterCount; self.depth = depth
    }
}

/// A module that can describe itself for printing. Every layer in NN conforms.
public protocol DescribedModule: Module {
    /// Short type name, e.g. "Conv2d".
    var typeName: String { get }
    /// Hyperparameters in words.
    var detail: String { get }
    /// Output shape for a full input shape (batch dimension included).
    func outputShape(for inputShape: [Int]) -> [Int]
    /// Input shape each child (in `children` order) receives for the given input shape.
    func childInputShapes(for inputShape: [Int]) -> [[Int]]
}

extension DescribedModule {
    public func childInputShapes(for inputShape: [Int]) -> [[Int]] { [] }
}

extension Module {
    /// Rows for this module and all descendants, depth first. `inputShape` is one sample's shape
    /// without the batch dimension (e.g. [1, 28, 28]); when nil, output shapes are left out.
    public func describeLayers(inputShape: [Int]? = nil, name: String = "", depth: Int = 0) -> [LayerDescription] {
        let full = inputShape.map { [1] + $0 }
        let described = self as? DescribedModule
        let out = full.flatMap { s in described.map { Array($0.outputShape(for: s).dropFirst()) } }
        let count = parameters.reduce(0) { $0 + $1.count }
        var rows = [LayerDescription(name: name, type: described?.typeName ?? String(describing: type(of: self)),
                                     detail: described?.detail ?? "", outputShape: out,
                                     parameterCount: count, depth: depth)]
        let kids = children
        let shapes = full.flatMap { s in described?.childInputShapes(for: s) }
        for (i, (childName, child)) in kids.enumerated() {
            let path = name.isEmpty ? childName : "\(name).\(childName)"
            let childShape = shapes.flatMap { i < $0.count ? Array($0[i].dropFirst()) : nil }
            rows += child.describeLayers(inputShape: childShape, name: path, depth: depth + 1)
        }
        return rows
    }
}

/// Renders rows as an aligned text table (name, type, output shape, parameters, detail).
public func formatLayerTable(_ rows: [LayerDescription]) -> String {
    func shape(_ s: [Int]?) -> String { s.map { "[" + $0.map(String.init).joined(separator: ", ") + "]" } ?? "" }
    let names = rows.map { String(repeating: "  ", count: $0.depth) + ($0.name.isEmpty ? "(model)" : $0.name) }
    let w0 = max(4, names.map(\.count).max() ?? 0)
    let w1 = max(4, rows.map(\.type.count).max() ?? 0)
    let w2 = max(6, rows.map { shape($0.outputShape).count }.max() ?? 0)
    func pad(_ s: String, _ w: Int) -> String { s + String(repeating: " ", count: max(0, w - s.count)) }
    var lines = [pad("name", w0) + "  " + pad("type", w1) + "  " + pad("output", w2) + "  " + pad("params", 10) + "  detail"]
    for (r, n) in zip(rows, names) {
        lines.append(pad(n, w0) + "  " + pad(r.type, w1) + "  " + pad(shape(r.outputShape), w2) + "  "
                     + pad(String(r.parameterCount), 10) + "  " + r.detail)
    }
    return lines.joined(separator: "\n")
}

extension Network {
    /// Floats one image occupies while it passes through the network: every layer's output (shapes
    /// from `describeLayers`), times 3 for what forward caches for backward, im2col buffers and
    /// gradients. The estimate memory checks (the shell's, fqat-bench's) hold a batch against.
    public func activationFloatsPerImage(imageShape: [Int]) -> Double {
        let leaves: Set<String> = ["Conv2d", "BatchNorm2d", "ReLU", "Linear", "MaxPool2d", "GlobalAvgPool", "GroupNorm", "Dropout", "Flatten"]
        let rows = describeLayers(inputShape: imageShape)
        let floats = rows.filter { leaves.contains($0.type) }.compactMap(\.outputShape).reduce(0.0) { $0 + Double($1.reduce(1, *)) }
        return 3 * floats
    }
}
