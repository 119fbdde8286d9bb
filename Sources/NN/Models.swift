// Model builders. Names follow the reference implementations so checkpoints and the paper's layer
// labels line up:
//   CIFAR ResNet-6n+2 (He et al. 2016 §4.2): conv1 3×3 (16w) - bn1 - relu - layer1..3 of n BasicBlocks
//     at 16w, 32w, 64w channels (stride 2 entering layers 2 and 3) - global average pool - fc.
//   MNIST_CNN (DomainBed networks.py, docs/data.md §4): conv1..conv4 3×3 with bias, each followed by
//     ReLU then GroupNorm(8, ·) named bn0..bn3; global average pool; fc Linear(128, classes).
//   torchvision ResNet-18 / ResNet-50: conv1 7×7/2 - bn1 - relu - maxpool 3×3/2 - layer1..4 - avgpool - fc,
//     with torchvision's state-dict names (layer1.0.conv1, layer2.0.downsample.0, ...).
// Convs use Kaiming-normal fan_out init (torchvision); MNIST_CNN convs and every fc use PyTorch's
// default init, as their reference code does not override it.
import TensorCore

extension Network {
    /// Architectures `make` knows.
    public static let knownArchitectures = ["resnet8", "resnet14", "resnet20", "resnet32", "resnet44", "resnet56",
                                            "resnet110", "mnist_cnn", "resnet18", "resnet50"]

    /// Builds a network by name. `width` multiplies every channel count (1 = the published model);
    /// `shortcut` applies to the CIFAR ResNets only. Same seed, same initial weights.
    public static func make(architecture: String, inChannels: Int = 3, classes: Int = 10, width: Double = 1,
                            shortcut: ResidualShortcut = .zeroPadding, seed: UInt64 = 0) throws -> Network {
        guard inChannels >= 1 else { throw NNError.invalidConfiguration("inChannels must be at least 1, got \(inChannels)") }
        guard classes >= 1 else { throw NNError.invalidConfiguration("classes must be at least 1, got \(classes)") }
        guard width > 0 && width.isFinite else { throw NNError.invalidConfiguration("width must be a positive number, got \(width)") }
        var rng = RNG(seed: seed)
        let name = architecture.lowercased()
        switch name {
        case "resnet8", "resnet14", "resnet20", "resnet32", "resnet44", "resnet56", "resnet110":
            let depth = Int(name.dropFirst("resnet".count))!
            return cifarResNet(depth: depth, inChannels: inChannels, classes: classes, width: width,
                               shortcut: shortcut, rng: &rng)
        case "mnist_cnn":
            return mnistCNN(inChannels: inChannels, classes: classes, width: width, rng: &rng)
        case "resnet18":
            return torchvisionResNet(name: "resnet18", bottleneck: false, blocks: [2, 2, 2, 2], inChannels: inChannels,
                                     classes: classes, width: width, rng: &rng)
        case "resnet50":
            return torchvisionResNet(name: "resnet50", bottleneck: true, blocks: [3, 4, 6, 3], inChannels: inChannels,
                                     classes: classes, width: width, rng: &rng)
        default:
            throw NNError.unknownArchitecture(architecture, known: knownArchitectures)
        }
    }

    static func channels(_ base: Int, _ width: Double, multipleOf m: Int = 1) -> Int {
        let c = max(1, Int((Double(base) * width).rounded()))
        return max(m, (c + m - 1) / m * m)
    }

    /// CIFAR ResNet of depth 6n+2 (n BasicBlocks per stage).
    public static func cifarResNet(depth: Int, inChannels: Int, classes: Int, width: Double = 1,
                                   shortcut: ResidualShortcut = .zeroPadding, rng: inout RNG) -> Network {
        precondition(depth >= 8 && (depth - 2) % 6 == 0, "CIFAR ResNet depth must be 6n+2, got \(depth)")
        let n = (depth - 2) / 6
        let widths = [16, 32, 64].map { channels($0, width) }
        var layers: [(String, Module)] = [
            ("conv1", Conv2d(name: "conv1", inChannels: inChannels, outChannels: widths[0], kernel: 3, stride: 1,
                             padding: 1, rng: &rng)),
            ("bn1", BatchNorm2d(name: "bn1", channels: widths[0])),
            ("relu", ReLU()),
        ]
        var current = widths[0]
        for (stage, planes) in widths.enumerated() {
            var blocks: [(String, Module)] = []
            for b in 0..<n {
                let stride = (stage > 0 && b == 0) ? 2 : 1
                blocks.append(("\(b)", BasicBlock(name: "layer\(stage + 1).\(b)", inChannels: current,
                                                  outChannels: planes, stride: stride, shortcut: shortcut, rng: &rng)))
                current = planes
            }
            layers.append(("layer\(stage + 1)", Sequential(blocks)))
        }
        layers.append(("avgpool", GlobalAvgPool()))
        let fc = Linear(name: "fc", inFeatures: current, outFeatures: classes, rng: &rng)
        return Network(architecture: "resnet\(depth)", inChannels: inChannels, classes: classes,
                       featurizer: Sequential(layers), classifier: fc)
    }

    /// DomainBed's MNIST_CNN featurizer (128-d at width 1) and a linear classifier.
    public static func mnistCNN(inChannels: Int, classes: Int, width: Double = 1, rng: inout RNG) -> Network {
        let c64 = channels(64, width, multipleOf: 8), c128 = channels(128, width, multipleOf: 8)
        let plan: [(cin: Int, cout: Int, stride: Int)] = [(inChannels, c64, 1), (c64, c128, 2), (c128, c128, 1), (c128, c128, 1)]
        var layers: [(String, Module)] = []
        for (i, p) in plan.enumerated() {
            layers.append(("conv\(i + 1)", Conv2d(name: "conv\(i + 1)", inChannels: p.cin, outChannels: p.cout, kernel: 3,
                                                  stride: p.stride, padding: 1, bias: true,
                                                  initialization: .pytorchDefault, rng: &rng)))
            layers.append(("relu\(i + 1)", ReLU()))
            layers.append(("bn\(i)", GroupNorm(name: "bn\(i)", groups: 8, channels: p.cout)))
        }
        layers.append(("avgpool", GlobalAvgPool()))
        let fc = Linear(name: "fc", inFeatures: c128, outFeatures: classes, rng: &rng)
        return Network(architecture: "mnist_cnn", inChannels: inChannels, classes: classes,
                       featurizer: Sequential(layers), classifier: fc)
    }

    /// torchvision ResNet with BasicBlocks (18/34) or Bottlenecks (50/101/152).
    public static func torchvisionResNet(name: String, bottleneck: Bool, blocks: [Int], inChannels: Int, classes: Int,
                                         width: Double = 1, rng: inout RNG) -> Network {
        let stem = channels(64, width)
        var layers: [(String, Module)] = [
            ("conv1", Conv2d(name: "conv1", inChannels: inChannels, outChannels: stem, kernel: 7, stride: 2, padding: 3, rng: &rng)),
            ("bn1", BatchNorm2d(name: "bn1", channels: stem)),
            ("relu", ReLU()),
            ("maxpool", MaxPool2d(kernel: 3, stride: 2, padding: 1)),
        ]
        var current = stem
        for (stage, count) in blocks.enumerated() {
            let planes = channels(64 << stage, width)
            var stageBlocks: [(String, Module)] = []
            for b in 0..<count {
                let stride = (stage > 0 && b == 0) ? 2 : 1
                let path = "layer\(stage + 1).\(b)"
                if bottleneck {
                    stageBlocks.append(("\(b)", Bottleneck(name: path, inChannels: current, planes: planes, stride: stride, rng: &rng)))
                    current = planes * Bottleneck.expansion
                } else {
                    stageBlocks.append(("\(b)", BasicBlock(name: path, inChannels: current, outChannels: planes,
                                                           stride: stride, shortcut: .projection, rng: &rng)))
                    current = planes
                }
            }
            layers.append(("layer\(stage + 1)", Sequential(stageBlocks)))
        }
        layers.append(("avgpool", GlobalAvgPool()))
        let fc = Linear(name: "fc", inFeatures: current, outFeatures: classes, rng: &rng)
        return Network(architecture: name, inChannels: inChannels, classes: classes,
                       featurizer: Sequential(layers), classifier: fc)
    }
}
