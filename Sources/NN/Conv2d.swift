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

public final class Conv2d: Module, DescribedModule, QuantizerSlots, LayoutAwareModule {
    /// Module path, e.g. "layer1.0.conv1"; parameters are "\(name).weight" and "\(name).bias".
    public let name: String
    /// Stride and padding, as every convolution call takes them.
    public let options: Convolution2dOptions
    /// (Cout, Cin, k, k): the weight's shape is the one record of the layer's channels and kernel.
    public let weight: Parameter
    /// (Cout), when the layer has a bias.
    public let bias: Parameter?
    /// Fake-quantizer applied to the weight before the convolution (nil: full precision).
    public var weightQuantizer: TensorQuantizer?
    /// Fake-quantizer applied to the input before the convolution (nil: full precision).
    public var inputQuantizer: TensorQuantizer?
    /// Used instead of the normal compute when no backward is needed.
    public var inferenceOverride: ConvInferenceOverride?

    /// What backward needs: the operands the convolution actually saw, x' (N, Cin, H, W) and
    /// w' (Cout, Cin, k, k).
    public let operandCache = OperandCache()
    /// The layouts of x and y in the last forward that kept its operands (dx and dy use them too).
    private var cachedLayouts: (input: ActivationLayout, output: ActivationLayout) = (.plain, .plain)

    public init(name: String, inChannels: Int, outChannels: Int, kernel: Int, stride: Int = 1,
                padding: Int = 0, bias: Bool = false,
                initialization: WeightInitialization = .kaimingNormalFanOut, rng: inout RNG) {
        precondition(inChannels > 0 && outChannels > 0 && kernel > 0 && stride > 0 && padding >= 0,
                     "Conv2d \(name): invalid configuration in \(inChannels) out \(outChannels) kernel \(kernel) stride \(stride) padding \(padding)")
        self.name = name
        self.options = Convolution2dOptions(stride: stride, padding: padding)
        (self.weight, self.bias) = initialization.parameters(
            name: name, shape: [outChannels, inChannels, kernel, kernel],
            fanIn: inChannels * kernel * kernel, fanOut: outChannels * kernel * kernel, bias: bias, rng: &rng)
    }

    public var outChannels: Int { weight.shape[0] }
    public var inChannels: Int { weight.shape[1] }
    public var kernelSize: Int { weight.shape[2] }
    public var stride: Int { options.stride }
    public var padding: Int { options.padding }

    public func forward(_ x: Tensor, _ ctx: ForwardContext) -> Tensor {
        forward(x, ctx, layout: .plain).0
    }

    /// y in `layout`, x in `inputLayout(for: layout)`. The quantizers are elementwise with one step
    /// size for the input, so they run on either layout unchanged.
    func forward(_ x: Tensor, _ ctx: ForwardContext, layout: ActivationLayout) -> (Tensor, ActivationLayout) {
        precondition(x.rank == 4 && x.shape[1] == inChannels,
                     "Conv2d \(name) expects (N, \(inChannels), H, W), got \(x.shape)")
        let input = inputLayout(for: layout)
        if !ctx.needsBackward, let override = inferenceOverride {
            operandCache.operands = nil
            let y = override.forward(x.reordered(from: input, to: .plain), conv: self)
            return (y.reordered(from: .plain, to: layout), layout)
        }
        let q = quantizedOperands(x, ctx, layout: input)
        let y = convolution2d(q.input, weight: q.weight, bias: bias?.value, options: options, layout: input,
                              outputLayout: layout)
        operandCache.operands = ctx.needsBackward ? q : nil
        cachedLayouts = (input, layout)
        return (y, layout)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let c = takeCache(&operandCache.operands, layer: "Conv2d \(name)")
        let g = convolution2dBackward(c.input, weight: c.weight, outputGradient: dy, options: options,
                                      layout: cachedLayouts.input, outputLayout: cachedLayouts.output)
        bias?.grad.add(g.bias)
        return backwardThroughQuantizers(weightGradient: g.weight, inputGradient: g.input!)
    }

    public var typeName: String { "Conv2d" }
    public var detail: String {
        "\(inChannels) -> \(outChannels), kernel \(kernelSize), stride \(stride), padding \(padding)" + slotDetail
    }
    /// The output must fit the layout; an input that does not is taken plain (`inputLayout(for:)`).
    func accepts(_ layout: ActivationLayout) -> Bool { layout.holds(channels: outChannels) }
    func inputLayout(for layout: ActivationLayout) -> ActivationLayout { layout.holds(channels: inChannels) ? layout : .plain }
    var startsBlockedRun: Bool { true }

    public func outputShape(for s: [Int]) -> [Int] {
        [s[0], outChannels, (s[2] + 2 * padding - kernelSize) / stride + 1, (s[3] + 2 * padding - kernelSize) / stride + 1]
    }
}
