// Fully connected layer y = x·Wᵀ + b with the same quantizer slots as Conv2d.
//
// Shapes: x (N, in), W (out, in), b (out), y (N, out).
// Backward: dW' = dyᵀ·x' (out, in), db = Σ_n dy, dx' = dy·W' (N, in); then through the quantizers
// exactly as in Conv2d.
import TensorCore

public final class Linear: Module, DescribedModule {
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

    struct Cache {
        /// x' (N, in)
        var input: Tensor
        /// w' (out, in)
        var weight: Tensor
    }
    private var cache: Cache?

    public init(name: String, inFeatures: Int, outFeatures: Int, bias: Bool = true,
                initialization: WeightInitialization = .pytorchDefault, rng: inout RNG) {
        precondition(inFeatures > 0 && outFeatures > 0, "Linear \(name): invalid sizes \(inFeatures) -> \(outFeatures)")
        self.name = name
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        let w = initialization.weight([outFeatures, inFeatures], fanIn: inFeatures, fanOut: outFeatures, rng: &rng)
        self.weight = Parameter(name: name + ".weight", kind: .weight, value: w)
        self.bias = bias ? Parameter(name: name + ".bias", kind: .bias,
                                     value: initialization.bias(outFeatures, fanIn: inFeatures, rng: &rng)) : nil
    }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) -> Tensor {
        precondition(x.rank == 2 && x.shape[1] == inFeatures, "Linear \(name) expects (N, \(inFeatures)), got \(x.shape)")
        let xq = inputQuantizer?.forward(x, ctx) ?? x
        let wq = weightQuantizer?.forward(weight.value, ctx) ?? weight.value
        var y = Tensor.matmul(xq, wq, transB: true)
        if let b = bias?.value {
            let n = x.shape[0], m = outFeatures
            y.data.withUnsafeMutableBufferPointer { py in
                b.data.withUnsafeBufferPointer { pb in
                    for i in 0..<n { for j in 0..<m { py[i * m + j] += pb[j] } }
                }
            }
        }
        cache = ctx.needsBackward ? Cache(input: xq, weight: wq) : nil
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let c = cache else {
            preconditionFailure("Linear \(name): backward called without a forward pass with needsBackward")
        }
        cache = nil
        precondition(dy.shape == [c.input.shape[0], outFeatures], "Linear \(name): dy \(dy.shape) vs output \([c.input.shape[0], outFeatures])")
        let dw = Tensor.matmul(dy, c.input, transA: true)         // (out, in)
        weight.grad.add(weightQuantizer?.backward(dw) ?? dw)
        if let b = bias {
            let n = dy.shape[0], m = outFeatures
            var db = [Double](repeating: 0, count: m)
            for i in 0..<n { for j in 0..<m { db[j] += Double(dy.data[i * m + j]) } }
            b.grad.add(Tensor(shape: [m], data: db.map { Float($0) }))
        }
        let dxq = Tensor.matmul(dy, c.weight)                     // (N, in)
        return inputQuantizer?.backward(dxq) ?? dxq
    }

    public var parameters: [Parameter] {
        [weight] + (bias.map { [$0] } ?? []) + (weightQuantizer?.parameters ?? []) + (inputQuantizer?.parameters ?? [])
    }

    public func clearCache() {
        cache = nil
        weightQuantizer?.clearCache()
        inputQuantizer?.clearCache()
    }

    public var typeName: String { "Linear" }
    public var detail: String {
        var s = "\(inFeatures) -> \(outFeatures)" + (bias == nil ? ", no bias" : ", bias")
        if weightQuantizer != nil { s += ", weight quantized" }
        if inputQuantizer != nil { s += ", input quantized" }
        return s
    }
    public func outputShape(for s: [Int]) -> [Int] { [s[0], outFeatures] }
}
