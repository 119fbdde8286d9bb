// Memory estimates made before anything large is allocated: a model or a data set that cannot fit is
// refused with the estimate and what to change, instead of an abort inside the allocator.
import Foundation
import NN
import ShellLanguage

extension ShellCommands {
    /// Bytes this process may use: physical memory, or the cgroup (v2 `memory.max`, v1 `limit_in_bytes`)
    /// limit when one is set and lower.
    static func memoryBudget() -> UInt64 {
        var budget = ProcessInfo.processInfo.physicalMemory
        for file in ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"] {
            if let text = try? String(contentsOfFile: file, encoding: .utf8),
               let limit = UInt64(text.trimmingCharacters(in: .whitespacesAndNewlines)), limit > 0 {
                budget = min(budget, limit)
            }
        }
        return budget
    }

    static func bytesText(_ bytes: Double) -> String {
        bytes >= 1e9 ? String(format: "%.1f GB", bytes / 1e9) : String(format: "%.0f MB", bytes / 1e6)
    }

    /// Parameters of `architecture` at `width`, estimated from a build at width 1/16 with one class:
    /// convolutions grow with width², the classifier with width × classes. Cheap (a few thousand floats).
    static func estimatedParameters(architecture: String, width: Double, classes: Int, inChannels: Int) throws -> Double {
        let base = 0.0625
        let small = try Network.make(architecture: architecture, inChannels: inChannels, classes: 1, width: base)
        let features = Double(small.classifier.parameters.first(where: { $0.value.shape.count == 2 })?.value.shape.last ?? 0)
        let body = Double(small.parameterCount) - features - 1
        let scale = width / base
        return max(body, 0) * scale * scale + features * scale * Double(classes + 1)
    }

    /// Refuses a model whose training state (weights, gradients, two Adam moments, the SAGM copy and a
    /// checkpoint: about 6 copies of the parameters) would not fit in half the memory budget.
    static func checkModelMemory(architecture: String, width: Double, classes: Int, inChannels: Int, context: String) throws {
        let params = try estimatedParameters(architecture: architecture, width: width, classes: classes, inChannels: inChannels)
        let bytes = params * 4 * 6
        let budget = Double(memoryBudget()) / 2
        if bytes > budget {
            throw CommandError("\(context): \(architecture) at width \(Value.format(width)) with \(classes) classes has about \(String(format: "%.3g", params)) parameters; training it needs about \(bytesText(bytes)), more than half of the \(bytesText(Double(memoryBudget()))) this process may use. Use a smaller width= or fewer classes.")
        }
    }

    /// Refuses built-in data whose images (float32, plus as much again while rendering) would not fit in
    /// half the memory budget.
    static func checkBuiltinDataMemory(source: String, perDomain: Int?, size: Int, channels: Int) throws {
        let images: Double
        switch source {
        case "style-fmnist": images = 4 * Double(perDomain ?? 2500)
        default: images = min(70_000, 6 * Double(perDomain ?? 70_000))
        }
        let bytes = images * Double(size * size * channels) * 4 * 2
        let budget = Double(memoryBudget()) / 2
        if bytes > budget {
            throw CommandError("data \(source) at size=\(size) channels=\(channels) holds \(Int(images)) images, about \(bytesText(bytes)) while it is built, more than half of the \(bytesText(Double(memoryBudget()))) this process may use. Use a smaller size=, channels=1 or fewer images with per_domain=.")
        }
    }
}

extension ShellCommands {
    /// Floats one image occupies while it passes through `network`: every layer's output (shapes from
    /// `describeLayers`), times 3 for what forward caches for backward, im2col buffers and gradients.
    static func activationFloatsPerImage(_ network: Network, imageShape: [Int]) -> Double {
        let leaves: Set<String> = ["Conv2d", "BatchNorm2d", "ReLU", "Linear", "MaxPool2d", "GlobalAvgPool", "GroupNorm", "Dropout", "Flatten"]
        let rows = network.describeLayers(inputShape: imageShape)
        let floats = rows.filter { leaves.contains($0.type) }.compactMap(\.outputShape).reduce(0.0) { $0 + Double($1.reduce(1, *)) }
        return 3 * floats
    }

    /// Refuses a batch whose activations would not fit in half the memory budget, with the estimate and
    /// the largest batch that fits.
    static func checkBatchMemory(_ network: Network, imageShape: [Int], batch: Int, what: String, argument: ArgumentName) throws {
        let perImage = activationFloatsPerImage(network, imageShape: imageShape) * 4
        guard perImage > 0 else { return }
        let bytes = perImage * Double(batch)
        let budget = Double(memoryBudget()) / 2
        if bytes > budget {
            let fits = max(1, Int(budget / perImage))
            throw CommandError("\(what) with \(batch) images of \(imageShape.map(String.init).joined(separator: "×")) through \(network.architecture) needs about \(bytesText(bytes)) of activations, more than half of the \(bytesText(Double(memoryBudget()))) this process may use; use \(argument.name)=\(fits) or less", argument: argument.name)
        }
    }
}
