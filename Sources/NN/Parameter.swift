// A named, trainable tensor and its gradient. Names are stable, torchvision-style paths
// (`layer1.0.conv1.weight`) so checkpoints, freeze patterns and plots all address the same thing.
import TensorCore

public final class Parameter {
    /// What a parameter is, so optimizers, landscapes and SAGM can treat kinds differently.
    public enum Kind: String, Codable, Sendable {
        case weight        // conv / linear weights (ndim > 1)
        case bias          // conv / linear biases
        case normWeight    // BatchNorm / GroupNorm gamma
        case normBias      // BatchNorm / GroupNorm beta
        case scale         // quantizer step sizes (LSQ / EWGS s)
    }

    public var name: String
    public var kind: Kind
    public var value: Tensor
    /// Accumulated by backward passes; zeroed by `zeroGrad()`.
    public var grad: Tensor
    /// Frozen parameters keep their value: optimizers skip them.
    public var trainable: Bool

    public init(name: String, kind: Kind, value: Tensor, trainable: Bool = true) {
        self.name = name
        self.kind = kind
        self.value = value
        self.grad = Tensor.zeros(like: value)
        self.trainable = trainable
    }

    public func zeroGrad() { grad.zero() }
    public var shape: [Int] { value.shape }
    public var count: Int { value.count }
}

extension Parameter: CustomStringConvertible {
    public var description: String { "\(name) \(kind.rawValue) \(shape)" }
}

/// Buffers that are state but not trained (BatchNorm running statistics).
public final class Buffer {
    public var name: String
    public var value: Tensor
    public init(name: String, value: Tensor) { self.name = name; self.value = value }
}
