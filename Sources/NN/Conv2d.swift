// 2-D convolution layer with optional fake-quantizers on its weight and its input.
//
// Forward (paper §5.1; docs/quantization.md §3: quantize the weight and the input right before the conv):
//   x' = Qa(x), w' = Qw(W), y = conv(x', w') + b
// Backward: the convolution's gradients with respect to x' and w' (TensorCore.convolution2dBackward)
// are passed back through the quantizers: W.grad += Qw.backward(dL/dw'), dL/dx = Qa.backward(dL/dx').
// The bias is never quantized.
import TensorCore

/// Replaces a Conv2d's compute in inference (`!ctx.needsBackward`): the integer export path plugs in here.
public protocol ConvInferenceOverride: AnyObject {
    func forward(_ x: Tensor, conv: Conv2d) -> Tensor
}

public final class Conv2d: Module, DescribedModule {
    /// Module path, e.g. "layer1.0.conv1"; parameters are "\(name).weight" and "\(name).bias".
    public let name: String
    public let inChannels: Int
    public let outChannels: Int
    public let kernelSize: Int
    public let stride: Int
    public let padding: Int
    /// (Cout, Cin, k, k)
    public let weight: Parameter
    /// (Cout), when the layer has a bias.
    public let bias: Parameter?
    /// Fake-quantizer applied to the weight before the convolution (nil: full precision).
    public var weightQuantizer: TensorQuantizer?
    /// Fake-quantizer applied to the input before the convolution (nil: full precision).
    public var inputQuantizer: TensorQuantizer?
    /// Used instead of the normal compute when no backward is needed.
    public var inferenceOverride: ConvInferenceOverride?

    /// What backward needs: the operands the convolution actually saw.
    struct Cache {
        /// x' = Qa(x), (N, Cin, H, W)
        var input: Tensor
        /// w' = Qw(W), (Cout, Cin, k, k)
        var weight: Tensor
    }
    private var cache: Cache?

    public init(name: String, inChannels: Int, outChannels: Int, kernel: Int, stride: Int = 1,
                padding: Int = 0, bias: Bool = false,
                initialization: WeightInitialization = .kaimingNormalFanOut, rng: inout RNG) {
        precondition(inChannels > 0 && outChannels > 0 && kernel > 0 && stride > 0 && padding >= 0,
                     "Conv2d \(name): invalid configuration in \(inChannels) out \(outChannels) kernel \(kernel) stride \(stride) padding \(padding)")
        self.name = name
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelSize = kernel
        self.stride = stride
        self.padding = padding
        let fanIn = inChannels * kernel * kernel, fanOut = outChannels * kernel * kernel
        let w = initialization.weight([outChannels, inChannels, kernel, kernel], fanIn: fanIn, fanOut: fanOut, rng: &rng)
        self.weight = Parameter(name: name + ".weight", kind: .weight, value: w)
        self.bias = bias ? Parameter(name: name + ".bias", kind: .bias,
                                     value: initialization.bias(outChannels, fanIn: fanIn, rng: &rng)) : nil
    }

    public var options: Convolution2dOptions { Convolution2dOptions(stride: stride, padding: padding) }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) -> Tensor {
        precondition(x.rank == 4 && x.shape[1] == inChannels,
                     "Conv2d \(name) expects (N, \(inChannels), H, W), got \(x.shape)")
        if !ctx.needsBackward, let override = inferenceOverride {
            cache = nil
            return override.forward(x, conv: self)
        }
        let xq = inputQuantizer?.forward(x, ctx) ?? x
        let wq = weightQuantizer?.forward(weight.value, ctx) ?? weight.value
        let y = convolution2d(xq, weight: wq, bias: bias?.value, options: options)
        cache = ctx.needsBackward ? Cache(input: xq, weight: wq) : nil
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let c = cache else {
            preconditionFailure("Conv2d \(name): backward called without a forward pass with needsBackward")
        }
        cache = nil
        let g = convolution2dBackward(c.input, weight: c.weight, outputGradient: dy, options: options)
        weight.grad.add(weightQuantizer?.backward(g.weight) ?? g.weight)
        bias?.grad.add(g.bias)
        let dxq = g.input!
        return inputQuantizer?.backward(dxq) ?? dxq
    }

    /// Own weight and bias, then the quantizers' step sizes.
    public var parameters: [Parameter] {
        [weight] + (bias.map { [$0] } ?? []) + (weightQuantizer?.parameters ?? []) + (inputQuantizer?.parameters ?? [])
    }

    public func clearCache() {
        cache = nil
        weightQuantizer?.clearCache()
        inputQuantizer?.clearCache()
    }

    public var typeName: String { "Conv2d" }
    public var detail: String {
        var s = "\(inChannels) -> \(outChannels), kernel \(kernelSize), stride \(stride), padding \(padding)"
        s += bias == nil ? ", no bias" : ", bias"
        if weightQuantizer != nil { s += ", weight quantized" }
        if inputQuantizer != nil { s += ", input quantized" }
        return s
    }
    public func outputShape(for s: [Int]) -> [Int] {
        [s[0], outChannels, (s[2] + 2 * padding - kernelSize) / stride + 1, (s[3] + 2 * padding - kernelSize) / stride + 1]
    }
}
