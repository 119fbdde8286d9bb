// What the two fake-quantizer slots add to a layer with a weight (Conv2d, Linear), written once:
//   forward   x' = Qa(x), w' = Qw(W), then the layer's own product on (x', w')
//   backward  W.grad += Qw.backward(dL/dw'), dL/dx = Qa.backward(dL/dx')
// (docs/quantization.md §3). An empty slot is the identity. The bias is never quantized.
import TensorCore

/// A layer whose weight and input pass through optional fake-quantizers before its product.
public protocol QuantizerSlots: AnyObject {
    var weight: Parameter { get }
    var bias: Parameter? { get }
    /// Fake-quantizer applied to the weight before the product (nil: full precision).
    var weightQuantizer: TensorQuantizer? { get }
    /// Fake-quantizer applied to the input before the product (nil: full precision).
    var inputQuantizer: TensorQuantizer? { get }
    /// The operands of the last forward that needs a backward.
    var operandCache: OperandCache { get }
}

/// Where a slotted layer keeps the operands it multiplied until its backward (one forward, at most
/// one backward; `clearCache` empties it).
public final class OperandCache {
    var operands: QuantizedOperands?
    init() {}
}

/// The operands a quantizer-slot layer actually multiplied, kept for its backward.
struct QuantizedOperands {
    /// x' = Qa(x)
    var input: Tensor
    /// w' = Qw(W)
    var weight: Tensor
}

extension QuantizerSlots {
    /// x' = Qa(x) and w' = Qw(W), x in `layout`.
    func quantizedOperands(_ x: Tensor, _ ctx: ForwardContext, layout: ActivationLayout = .plain) -> QuantizedOperands {
        QuantizedOperands(input: inputQuantizer?.forward(x, ctx, layout: layout) ?? x,
                          weight: weightQuantizer?.forward(weight.value, ctx) ?? weight.value)
    }

    /// W.grad += Qw.backward(dL/dw'), and dL/dx = Qa.backward(dL/dx').
    func backwardThroughQuantizers(weightGradient dw: Tensor, inputGradient dxq: Tensor) -> Tensor {
        weight.grad.add(weightQuantizer?.backward(dw) ?? dw)
        return inputQuantizer?.backward(dxq) ?? dxq
    }

    /// Own weight and bias, then the quantizers' step sizes.
    var slotParameters: [Parameter] {
        [weight] + (bias.map { [$0] } ?? []) + (weightQuantizer?.parameters ?? []) + (inputQuantizer?.parameters ?? [])
    }

    /// Drops the quantizers' caches.
    func clearQuantizerCaches() {
        weightQuantizer?.clearCache()
        inputQuantizer?.clearCache()
    }

    /// ", bias" or ", no bias", then which operands are quantized.
    var slotDetail: String {
        var s = bias == nil ? ", no bias" : ", bias"
        if weightQuantizer != nil { s += ", weight quantized" }
        if inputQuantizer != nil { s += ", input quantized" }
        return s
    }
}

extension QuantizerSlots where Self: Module {
    /// A slotted layer's parameters: its own weight and bias, then the quantizers' step sizes.
    public var parameters: [Parameter] { slotParameters }

    /// Drops the kept operands and the quantizers' caches.
    public func clearCache() {
        operandCache.operands = nil
        clearQuantizerCaches()
    }
}

extension WeightInitialization {
    /// The weight `<name>.weight` of `shape` and, when `bias`, the bias `<name>.bias` of `shape[0]`
    /// elements, drawn in that order.
    func parameters(name: String, shape: [Int], fanIn: Int, fanOut: Int, bias: Bool,
                    rng: inout RNG) -> (weight: Parameter, bias: Parameter?) {
        let w = Parameter(name: name + ".weight", kind: .weight, value: weight(shape, fanIn: fanIn, fanOut: fanOut, rng: &rng))
        let b = bias ? Parameter(name: name + ".bias", kind: .bias, value: self.bias(shape[0], fanIn: fanIn, rng: &rng)) : nil
        return (w, b)
    }
}
