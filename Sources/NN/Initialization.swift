// Weight initialisation schemes, named after what they reproduce.
import TensorCore

/// How a Conv2d or Linear draws its initial weight (and bias, when it has one).
public enum WeightInitialization: String, Sendable, CaseIterable {
    /// W ~ N(0, 2 / fan_out), fan_out = Cout·k·k; bias 0. torchvision's ResNet convs
    /// (`kaiming_normal_(mode="fan_out", nonlinearity="relu")`, He et al. 2015).
    case kaimingNormalFanOut
    /// W ~ N(0, 2 / fan_in), fan_in = Cin·k·k; bias 0. `kaiming_normal_` with its default mode.
    case kaimingNormalFanIn
    /// W, b ~ U(−1/√fan_in, 1/√fan_in): PyTorch's default for nn.Conv2d and nn.Linear
    /// (`kaiming_uniform_(a=√5)` gives exactly this bound).
    case pytorchDefault

    /// Draws a weight of `shape` with the given fans, in row-major order from `rng`.
    func weight(_ shape: [Int], fanIn: Int, fanOut: Int, rng: inout RNG) -> Tensor {
        switch self {
        case .kaimingNormalFanOut:
            return rng.normalTensor(shape, std: (2 / Float(max(1, fanOut))).squareRoot())
        case .kaimingNormalFanIn:
            return rng.normalTensor(shape, std: (2 / Float(max(1, fanIn))).squareRoot())
        case .pytorchDefault:
            let bound = 1 / Float(max(1, fanIn)).squareRoot()
            return rng.uniformTensor(shape, -bound, bound)
        }
    }

    /// Draws a bias of `count` elements (drawn after the weight).
    func bias(_ count: Int, fanIn: Int, rng: inout RNG) -> Tensor {
        switch self {
        case .kaimingNormalFanOut, .kaimingNormalFanIn:
            return Tensor.zeros([count])
        case .pytorchDefault:
            let bound = 1 / Float(max(1, fanIn)).squareRoot()
            return rng.uniformTensor([count], -bound, bound)
        }
    }
}
