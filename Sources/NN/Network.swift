// A classifier network as DomainBed builds it: a featurizer producing a feature vector, then a
// separate linear classifier named "fc" (so torchvision state-dict names hold for ResNets).
// Parameter and buffer names are full paths ("layer1.0.conv1.weight", "bn1.running_mean").
import TensorCore

/// Errors a user can cause when building or loading networks.
public enum NNError: Error, CustomStringConvertible, Equatable {
    case unknownArchitecture(String, known: [String])
    case invalidConfiguration(String)
    case stateDictMismatch(LoadReport)

    public var description: String {
        switch self {
        case let .unknownArchitecture(name, known):
            return "unknown architecture '\(name)'; known architectures: \(known.joined(separator: ", "))"
        case let .invalidConfiguration(message):
            return message
        case let .stateDictMismatch(report):
            return "state dict does not match the model (strict load, nothing was loaded): \(report.summary). "
                + "Load with strict: false to take the matching tensors only."
        }
    }
}

/// What a state-dict load matched and what it did not.
public struct LoadReport: Equatable, Sendable {
    public struct ShapeMismatch: Equatable, Sendable {
        public var name: String
        public var expected: [Int]
        public var found: [Int]
    }
    /// Model tensors the state dict did not provide.
    public var missing: [String] = []
    /// State-dict tensors the model has no place for (`num_batches_tracked` is ignored, not listed).
    public var unexpected: [String] = []
    /// Names present in both with different shapes (not loaded).
    public var shapeMismatch: [ShapeMismatch] = []
    /// Tensors copied into the model.
    public var loaded: Int = 0

    public var isClean: Bool { missing.isEmpty && unexpected.isEmpty && shapeMismatch.isEmpty }

    public var summary: String {
        func list(_ xs: [String]) -> String { xs.count <= 6 ? xs.joined(separator: ", ") : xs.prefix(6).joined(separator: ", ") + ", … (\(xs.count) in all)" }
        var parts: [String] = []
        if !missing.isEmpty { parts.append("missing \(list(missing))") }
        if !unexpected.isEmpty { parts.append("unexpected \(list(unexpected))") }
        if !shapeMismatch.isEmpty {
            parts.append("shape mismatch " + list(shapeMismatch.map { "\($0.name) model \($0.expected) file \($0.found)" }))
        }
        return parts.isEmpty ? "all \(loaded) tensors matched" : parts.joined(separator: "; ")
    }
}

public final class Network: Module, DescribedModule {
    /// Architecture name as given to `make`, e.g. "resnet20".
    public let architecture: String
    public let inChannels: Int
    public let classes: Int
    /// Produces (N, features).
    public let featurizer: Module
    /// Linear(features, classes), named "fc".
    public let classifier: Linear
    /// Optional dropout between featurizer and classifier (DomainBed's `resnet_dropout`); nil = none.
    public var featureDropout: Dropout?

    public init(architecture: String, inChannels: Int, classes: Int, featurizer: Module, classifier: Linear) {
        self.architecture = architecture
        self.inChannels = inChannels
        self.classes = classes
        self.featurizer = featurizer
        self.classifier = classifier
    }

    /// The feature vectors (N, features) of a batch.
    public func features(_ x: Tensor, _ ctx: ForwardContext) -> Tensor {
        featurizer.forward(x, ctx)
    }

    /// Logits (N, classes).
    public func forward(_ x: Tensor, _ ctx: ForwardContext) -> Tensor {
        var f = featurizer.forward(x, ctx)
        if let d = featureDropout { f = d.forward(f, ctx) }
        return classifier.forward(f, ctx)
    }

    /// Given dL/dlogits, accumulates every parameter gradient and returns dL/dx.
    public func backward(_ dy: Tensor) -> Tensor {
        var g = classifier.backward(dy)
        if let d = featureDropout { g = d.backward(g) }
        return featurizer.backward(g)
    }

    public var parameters: [Parameter] { featurizer.parameters + classifier.parameters }
    public var buffers: [Buffer] { featurizer.buffers }

    /// The featurizer's children spliced in (so paths are "conv1", "layer1.0.conv1"), then "fc".
    public var children: [(String, Module)] {
        var c = featurizer.children
        if c.isEmpty { c = [("featurizer", featurizer)] }
        if let d = featureDropout { c.append(("dropout", d)) }
        c.append(("fc", classifier))
        return c
    }

    public func clearCache() {
        featurizer.clearCache()
        featureDropout?.clearCache()
        classifier.clearCache()
    }

    /// Every BatchNorm2d in the network, with its path.
    public var batchNorms: [BatchNorm2d] { namedModules().compactMap { $0.1 as? BatchNorm2d } }

    /// Every Conv2d in the network (stem first, in forward order).
    public var convolutions: [Conv2d] { namedModules().compactMap { $0.1 as? Conv2d } }

    /// Frozen BN (DomainBed/SAGM `freeze_bn`): normalise with running statistics even in training.
    public func setFrozenBatchNorm(_ frozen: Bool) {
        for bn in batchNorms { bn.frozen = frozen }
    }

    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.count } }

    // MARK: State dict

    /// Every parameter and buffer by full name (BN running stats as "bn1.running_mean", ...).
    public func stateDict() -> [String: Tensor] {
        var d: [String: Tensor] = [:]
        for p in parameters { d[p.name] = p.value }
        for b in buffers { d[b.name] = b.value }
        return d
    }

    /// Names in the order parameters, then buffers (for writing files in a stable order).
    public var stateDictNames: [String] { parameters.map(\.name) + buffers.map(\.name) }

    /// Copies tensors from `stateDict` by name. Strict: any missing, unexpected or mis-shaped tensor
    /// throws `NNError.stateDictMismatch` and nothing is changed. Not strict: loads what matches and
    /// reports the rest. `*.num_batches_tracked` entries are ignored.
    @discardableResult
    public func load(stateDict: [String: Tensor], strict: Bool = true) throws -> LoadReport {
        var report = LoadReport()
        var targets: [String: (set: (Tensor) -> Void, shape: [Int])] = [:]
        for p in parameters { targets[p.name] = ({ p.value = $0; if p.grad.shape != $0.shape { p.grad = .zeros(like: $0) } }, p.shape) }
        for b in buffers { targets[b.name] = ({ b.value = $0 }, b.value.shape) }
        var plan: [(Tensor, (Tensor) -> Void)] = []
        for name in stateDictNames {
            guard let t = stateDict[name] else { report.missing.append(name); continue }
            let target = targets[name]!
            if t.shape == target.shape { plan.append((t, target.set)) }
            else { report.shapeMismatch.append(.init(name: name, expected: target.shape, found: t.shape)) }
        }
        for name in stateDict.keys.sorted() where targets[name] == nil && !name.hasSuffix("num_batches_tracked") {
            report.unexpected.append(name)
        }
        if strict && !report.isClean { throw NNError.stateDictMismatch(report) }
        for (t, set) in plan { set(t) }
        report.loaded = plan.count
        return report
    }

    // MARK: Description

    public var typeName: String { "Network" }
    public var detail: String { "\(architecture), \(inChannels) input channels, \(classes) classes" }
    public func outputShape(for s: [Int]) -> [Int] { [s[0], classes] }
    public func childInputShapes(for s: [Int]) -> [[Int]] {
        let described = featurizer as? DescribedModule
        var shapes = described.map { $0.children.isEmpty ? [s] : $0.childInputShapes(for: s) } ?? []
        let f = described?.outputShape(for: s) ?? [s[0], classifier.inFeatures]
        if featureDropout != nil { shapes.append(f) }
        shapes.append(f)
        return shapes
    }

    /// A printable table of every module: name, type, output shape for `inputShape` ([C, H, W]), parameters.
    public func summary(inputShape: [Int]? = nil) -> String {
        formatLayerTable(describeLayers(inputShape: inputShape ?? nil))
    }
}
