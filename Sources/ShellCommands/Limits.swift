// Memory estimates made before anything large is allocated: a model or a data set that cannot fit is
// refused with the estimate and what to change, instead of an abort inside the allocator.
import Foundation
import NN
import ShellLanguage
import TensorCore

extension ShellCommands {
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
        let budget = Double(TensorMemory.processBudget()) / 2
        if bytes > budget {
            throw CommandError("\(context): \(architecture) at width \(Value.format(width)) with \(classes) classes has about \(String(format: "%.3g", params)) parameters; training it needs about \(bytesText(bytes)), more than half of the \(bytesText(Double(TensorMemory.processBudget()))) this process may use. Use a smaller width= or fewer classes.")
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
        let budget = Double(TensorMemory.processBudget()) / 2
        if bytes > budget {
            throw CommandError("data \(source) at size=\(size) channels=\(channels) holds \(Int(images)) images, about \(bytesText(bytes)) while it is built, more than half of the \(bytesText(Double(TensorMemory.processBudget()))) this process may use. Use a smaller size=, channels=1 or fewer images with per_domain=.")
        }
    }
}

extension ShellCommands {
    /// Refuses a batch whose activations would not fit in half the memory budget, with the estimate and
    /// the largest batch that fits.
    static func checkBatchMemory(_ network: Network, imageShape: [Int], batch: Int, what: String, argument: ArgumentName) throws {
        let perImage = network.activationFloatsPerImage(imageShape: imageShape) * 4
        guard perImage > 0 else { return }
        let bytes = perImage * Double(batch)
        let budget = Double(TensorMemory.processBudget()) / 2
        if bytes > budget {
            let fits = max(1, Int(budget / perImage))
            throw CommandError("\(what) with \(batch) images of \(imageShape.map(String.init).joined(separator: "×")) through \(network.architecture) needs about \(bytesText(bytes)) of activations, more than half of the \(bytesText(Double(TensorMemory.processBudget()))) this process may use; use \(argument.name)=\(fits) or less", argument: argument.name)
        }
    }
}

extension ShellCommands {
    /// Refuses a training step whose activations would not fit in half the memory budget: one batch from
    /// every training domain goes forward and back together (SAGM's second pass reuses that memory), plus
    /// the input images. Says the largest batch per domain that fits.
    static func checkTrainingMemory(_ network: Network, imageShape: [Int], batchPerDomain: Int, trainingDomains: Int) throws {
        let perImage = network.activationFloatsPerImage(imageShape: imageShape) * 4 + Double(imageShape.reduce(1, *)) * 4
        guard perImage > 0, trainingDomains > 0 else { return }
        let images = batchPerDomain * trainingDomains
        let bytes = perImage * Double(images)
        let budget = Double(TensorMemory.processBudget()) / 2
        guard bytes > budget else { return }
        let fits = Int(budget / perImage) / trainingDomains
        let shape = imageShape.map(String.init).joined(separator: "×")
        let change = fits >= 1
            ? "load the data with batch=\(fits) or less (`data … batch=\(fits)`), or use a smaller size= or model width="
            : "not even one image per domain fits: use a smaller size= or model width="
        throw CommandError("a training step takes \(batchPerDomain) images from each of \(trainingDomains) training domain\(trainingDomains == 1 ? "" : "s") (\(images) images of \(shape)) through \(network.architecture): about \(bytesText(bytes)) of activations, more than half of the \(bytesText(Double(TensorMemory.processBudget()))) this process may use; \(change)")
    }

    /// Refuses data whose training batches cannot fit: every step holds `batch` images of every training
    /// domain as float32, and a DomainBed folder (decoded on demand, never held whole) adds its cache of
    /// decoded images. Checked by `data` before anything is decoded.
    static func checkStepInputMemory(source: String, imageShape: [Int], batch: Int, trainingDomains: Int, cacheBytes: Int) throws {
        let perImage = Double(imageShape.reduce(1, *)) * 4
        let bytes = perImage * Double(batch * max(trainingDomains, 1)) + Double(cacheBytes)
        let budget = Double(TensorMemory.processBudget()) / 2
        guard bytes > budget else { return }
        let fits = Int((budget - Double(cacheBytes)) / (perImage * Double(max(trainingDomains, 1))))
        let shape = imageShape.map(String.init).joined(separator: "×")
        let change = fits >= 1 ? "use batch=\(fits) or less, or a smaller size=" : "use a smaller size="
        throw CommandError("data \(source): a training step holds \(batch) images of \(shape) from each of \(trainingDomains) training domain\(trainingDomains == 1 ? "" : "s")"
            + (cacheBytes > 0 ? " beside the \(bytesText(Double(cacheBytes))) cache of decoded images" : "")
            + ", about \(bytesText(bytes)), more than half of the \(bytesText(Double(TensorMemory.processBudget()))) this process may use; \(change)", argument: "batch")
    }

    /// Refuses a landscape evaluation set that cannot be held: its images are decoded once into memory
    /// (float32) and reused for every grid point. Matters for folders, whose images are otherwise never
    /// all in memory; `budget` is for tests.
    static func checkLandscapeImageMemory(images: Int, imageShape: [Int], budget: Double? = nil) throws {
        let perImage = Double(imageShape.reduce(1, *)) * 4
        let bytes = perImage * Double(images)
        let half = budget ?? Double(TensorMemory.processBudget()) / 2
        guard bytes > half else { return }
        let shape = imageShape.map(String.init).joined(separator: "×")
        throw CommandError("landscape: \(images) evaluation images of \(shape) take about \(bytesText(bytes)) in memory, more than half of the \(bytesText(budget.map { $0 * 2 } ?? Double(TensorMemory.processBudget()))) this process may use; use images=\(max(1, Int(half / perImage))) or less, or load the data with a smaller size=", argument: "images")
    }
}
