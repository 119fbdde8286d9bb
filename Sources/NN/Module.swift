// The layer protocol: forward caches what backward needs; backward accumulates parameter
// gradients and returns the input gradient. One forward must be followed by at most one backward.
import TensorCore

/// How a forward pass should behave.
/// Not Sendable: it may carry the run's dropout generator, which one forward pass mutates.
public struct ForwardContext {
    /// Training mode: dropout active, BatchNorm in batch-statistics mode unless frozen.
    public var training: Bool
    /// Whether BatchNorm may update its running statistics (false in SAGM's second pass).
    public var updateRunningStats: Bool
    /// Whether to keep the caches backward needs (false for evaluation: saves memory and time).
    public var needsBackward: Bool
    /// Dropout and other stochastic layers draw from this generator.
    public var rng: RNGBox?

    public init(training: Bool, updateRunningStats: Bool = true, needsBackward: Bool? = nil, rng: RNGBox? = nil) {
        self.training = training
        self.updateRunningStats = updateRunningStats
        self.needsBackward = needsBackward ?? training
        self.rng = rng
    }

    public static var eval: ForwardContext { ForwardContext(training: false, updateRunningStats: false, needsBackward: false) }
}

/// A shared, mutable RNG reference for stochastic layers (one run's, used by one thread at a time).
public final class RNGBox {
    public var rng: RNG
    public init(_ rng: RNG) { self.rng = rng }
}

public protocol Module: AnyObject {
    /// Computes the output; caches for backward when `ctx.needsBackward`.
    func forward(_ x: Tensor, _ ctx: ForwardContext) -> Tensor
    /// Given dL/dy, accumulates dL/dθ into each parameter's `grad` and returns dL/dx.
    func backward(_ dy: Tensor) -> Tensor
    /// Every parameter reachable from this module, with full names, in a stable order.
    var parameters: [Parameter] { get }
    /// Non-trainable state (running statistics), with full names.
    var buffers: [Buffer] { get }
    /// Direct children, with their local names, for traversal (quantizer placement, printing).
    var children: [(String, Module)] { get }
    /// Drops cached activations (frees memory after an aborted step).
    func clearCache()
}

/// By default a module owns nothing itself: its parameters, buffers and caches are its children's (none
/// for a leaf such as ReLU). A layer with weights or state of its own declares them.
extension Module {
    public var parameters: [Parameter] { children.flatMap { $0.1.parameters } }
    public var buffers: [Buffer] { children.flatMap { $0.1.buffers } }
    public var children: [(String, Module)] { [] }
    public func clearCache() { for (_, c) in children { c.clearCache() } }

    /// All modules in the tree with their dotted paths ("" for the root), depth first.
    public func namedModules(prefix: String = "") -> [(String, Module)] {
        var out: [(String, Module)] = [(prefix, self)]
        for (n, c) in children {
            out += c.namedModules(prefix: prefix.isEmpty ? n : "\(prefix).\(n)")
        }
        return out
    }

    public func zeroGrad() { for p in parameters { p.zeroGrad() } }
}

/// The cache a backward needs, taken out of `cache` (left nil: one forward, at most one backward).
/// A backward without a forward that kept its cache is a programming error in the caller.
func takeCache<C>(_ cache: inout C?, layer: @autoclosure () -> String) -> C {
    guard let c = cache else { preconditionFailure("\(layer()): backward called without a forward pass with needsBackward") }
    cache = nil
    return c
}

/// A quantizer that a Conv2d or Linear can apply to its weight or input (implemented in Quant).
/// Forward returns the fake-quantized tensor; backward maps dL/dy to dL/dx and accumulates the
/// gradient of its own parameters (the step size).
public protocol TensorQuantizer: AnyObject {
    func forward(_ x: Tensor, _ ctx: ForwardContext) -> Tensor
    /// The same on an input held in `layout` (a layer's input inside a blocked run): the arithmetic
    /// is elementwise, so only what the quantizer shows outside (its observers) must be told the order.
    func forward(_ x: Tensor, _ ctx: ForwardContext, layout: ActivationLayout) -> Tensor
    func backward(_ dy: Tensor) -> Tensor
    var parameters: [Parameter] { get }
    func clearCache()
}

extension TensorQuantizer {
    /// An elementwise quantizer with nothing to show: the layout changes nothing.
    public func forward(_ x: Tensor, _ ctx: ForwardContext, layout: ActivationLayout) -> Tensor { forward(x, ctx) }
}

/// A module that can run on activations held in a blocked layout (docs/backends.md, "Blocked
/// activations"). `Sequential` hands a run of such modules one blocked tensor after the other, so the
/// convolutions between them read and write oneDNN's layout without reordering. The public
/// `forward(_:_:)` of every module stays plain in, plain out.
protocol LayoutAwareModule: Module {
    /// Whether the module can take its input in `layout` (its channel counts are multiples of the block).
    func accepts(_ layout: ActivationLayout) -> Bool
    /// Whether entering the blocked layout for this module pays (a convolution, or a stage of them):
    /// elementwise and normalisation layers only continue a run that a convolution started.
    var startsBlockedRun: Bool { get }
    /// The layout the module takes its input in when a run in `layout` reaches it: `layout` itself,
    /// except for a convolution whose input channels the layout cannot hold (a stem on a 1- or
    /// 3-channel image), which takes it plain and still writes its output in `layout`.
    func inputLayout(for layout: ActivationLayout) -> ActivationLayout
    /// Forward within a run in `layout`, x in `inputLayout(for: layout)`; returns the output and its
    /// layout (`layout`, or plain for an output that is not an image). Its `backward` then takes dy in
    /// that output layout and returns dx in the input's layout.
    func forward(_ x: Tensor, _ ctx: ForwardContext, layout: ActivationLayout) -> (Tensor, ActivationLayout)
}

extension LayoutAwareModule {
    func inputLayout(for layout: ActivationLayout) -> ActivationLayout { layout }
}
