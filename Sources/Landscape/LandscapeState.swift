// The tensors a landscape reads and writes: a model's parameters (weights, biases, norm affine
// parameters, quantizer step sizes) then its buffers (BatchNorm running statistics), in model order.
// Holding the Parameter/Buffer objects (not copies) lets a surface write w + αδ + βη straight into
// the tensors the evaluation closure's forward pass reads.
import NN
import TensorCore

/// What an entry of the state is; decides its direction treatment (docs/landscape.md).
public enum StateEntryKind: String, Codable, Hashable, Sendable {
    case weight, bias, normWeight, normBias, scale, buffer

    init(_ kind: Parameter.Kind) {
        switch kind {
        case .weight: self = .weight
        case .bias: self = .bias
        case .normWeight: self = .normWeight
        case .normBias: self = .normBias
        case .scale: self = .scale
        }
    }
}

/// A model's parameters and buffers, addressed by index in a fixed order (parameters, then buffers).
public final class LandscapeState {
    public let parameters: [Parameter]
    public let buffers: [Buffer]

    /// Every parameter and buffer of `module` (quantizer scales included, since Conv2d/Linear list
    /// their quantizers' parameters). A parameter reachable twice is taken once.
    public convenience init(module: Module) {
        self.init(parameters: module.parameters, buffers: module.buffers)
    }

    public init(parameters: [Parameter], buffers: [Buffer] = []) {
        var seen = Set<ObjectIdentifier>()
        self.parameters = parameters.filter { seen.insert(ObjectIdentifier($0)).inserted }
        self.buffers = buffers.filter { seen.insert(ObjectIdentifier($0)).inserted }
    }

    public var count: Int { parameters.count + buffers.count }
    public var names: [String] { parameters.map(\.name) + buffers.map(\.name) }
    public var kinds: [StateEntryKind] { parameters.map { StateEntryKind($0.kind) } + buffers.map { _ in .buffer } }

    public func name(at i: Int) -> String { i < parameters.count ? parameters[i].name : buffers[i - parameters.count].name }
    public func kind(at i: Int) -> StateEntryKind {
        i < parameters.count ? StateEntryKind(parameters[i].kind) : .buffer
    }

    public func value(at i: Int) -> Tensor {
        i < parameters.count ? parameters[i].value : buffers[i - parameters.count].value
    }

    /// Current values of every entry (copy-on-write references: cheap until someone writes).
    public func values() -> [Tensor] { parameters.map(\.value) + buffers.map(\.value) }

    /// Replaces entry `i` by `t` (same shape).
    public func setValue(_ t: Tensor, at i: Int) {
        if i < parameters.count {
            precondition(parameters[i].value.shape == t.shape,
                         "LandscapeState: \(parameters[i].name) has shape \(parameters[i].value.shape), got \(t.shape)")
            parameters[i].value = t
        } else {
            let b = buffers[i - parameters.count]
            precondition(b.value.shape == t.shape, "LandscapeState: \(b.name) has shape \(b.value.shape), got \(t.shape)")
            b.value = t
        }
    }

    /// Writes entry `i` in place (copying first only if its storage is shared, e.g. with a saved origin).
    func withMutableData<R>(at i: Int, _ body: (UnsafeMutableBufferPointer<Float>) -> R) -> R {
        if i < parameters.count { return parameters[i].value.data.withUnsafeMutableBufferPointer { body($0) } }
        return buffers[i - parameters.count].value.data.withUnsafeMutableBufferPointer { body($0) }
    }

    /// Puts saved values back (exactly: the saved tensors themselves are reassigned).
    public func restore(_ saved: [Tensor]) {
        precondition(saved.count == count, "LandscapeState.restore: \(saved.count) tensors for \(count) entries")
        for i in 0..<count { setValue(saved[i], at: i) }
    }

    /// Names and current values, in state order (for cache keys).
    public var namedValues: [(name: String, value: Tensor)] {
        parameters.map { ($0.name, $0.value) } + buffers.map { ($0.name, $0.value) }
    }
}
