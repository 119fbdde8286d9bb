// Fully connected layer y = x·Wᵀ + b with the same quantizer slots as Conv2d.
//
// Shapes: x (N, in), W (out, in), b (out), y (N, out).
// Backward: dW' = dyᵀ·x' (out, in), db = Σ_n dy, dx' = dy·W' (N, in); then through the quantizers
// exactly as in Conv2d.
import TensorCore

public final class Linear: Module, DescribedModule, QuantizerSlots {
    /// Module path, e.g. "fc".
    public let name: String
    public let inFeatures: Int
    public let outFeatures: Int
    /// (out, in)
    public let weight: Parameter
    /// (out)
    public let bias: Parameter?
    public var weightQuantizer: TensorQuantizer?
    public var inputQuantizer: TensorQuantizer?

    /// x' (N, in) and w' (out, in), kept for backward.
    public let operandCache = OperandCache()

    public init(name: String, inFeatures: Int, outFeatures: Int, bias: Bool = true,
                initialization: WeightInitialization = .pytorchDefault, rng: inout RNG) {
        precondition(inFeatures > 0 && outFeatures > 0, "Linear \(name): invalid sizes \(inFeatures) -> \(outFeatures)")
        self.name = name
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        (self.weight, self.bias) = initialization.parameters(name: name, shape: [outFeatures, inFeatures],
                                                             fanIn: inFeatures, fanOut: outFeatures, bias: bias, rng: &rng)
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) -> Tensor {
        precondition(x.rank == 2 && x.shape[1] == inFeatures, "Linear \(name) expects (N, \(inFeatures)), got \(x.shape)")
        let q = quantizedOperands(x, ctx)
        var y = Tensor.matmul(q.input, q.weight, transB: true)
        if let b = bias?.value {
            let n = x.shape[0], m = outFeatures
            y.data.withUnsafeMutableBufferPointer { py in
                b.data.withUnsafeBufferPointer { pb in
                    for i in 0..<n { for j in 0..<m { py[i * m + j] += pb[j] } }
                }
            }
        }
        operandCache.operands = ctx.needsBackward ? q : nil
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let c = takeCache(&operandCache.operands, layer: "Linear \(name)")
        precondition(dy.shape == [c.input.shape[0], outFeatures], "Linear \(name): dy \(dy.shape) vs output \([c.input.shape[0], outFeatures])")
        let dw = Tensor.matmul(dy, c.input, transA: true)         // (out, in)
        if let b = bias {
            let n = dy.shape[0], m = outFeatures
            var db = [Double](repeating: 0, count: m)
            for i in 0..<n { for j in 0..<m { db[j] += Double(dy.data[i * m + j]) } }
            b.grad.add(Tensor(shape: [m], data: db.map { Float($0) }))
        }
        let dxq = Tensor.matmul(dy, c.weight)                     // (N, in)
        return backwardThroughQuantizers(weightGradient: dw, inputGradient: dxq)
    }

    public var typeName: String { "Linear" }
    public var detail: String {
        "\(inFeatures) -> \(outFeatures)" + slotDetail
    }
    public func outputShape(for s: [Int]) -> [Int] { [s[0], outFeatures] }
}
