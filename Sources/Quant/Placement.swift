// Where quantizers go (docs/quantization.md §3, paper §5.1): every Conv2d quantizes its weight and its
// input right before the convolution; the first convolution (the stem) quantizes only its input
// (signed: a normalised image); the classifier (and any Linear) stays full precision. On top of
// the paper's layout: a keep-full-precision list, per-layer bit overrides by name pattern,
// per-tensor or per-channel weight scales, and LSQ or EWGS.
import NN
import TensorCore

/// How activation ranges are chosen.
public enum ActivationRangeChoice: Sendable, Equatable {
    /// Signed when calibration data has negatives, else unsigned (provisional before calibration:
    /// signed for the stem, unsigned elsewhere: post-ReLU inputs).
    case fromData
    /// Always this range.
    case fixed(QuantizationRange)
}

/// Bit widths for the layers whose names match `pattern` (nil keeps the default).
public struct LayerBitOverride: Sendable, Equatable, Codable {
    public var pattern: String
    public var weightBits: Int?
    public var activationBits: Int?
    public init(pattern: String, weightBits: Int? = nil, activationBits: Int? = nil) {
        self.pattern = pattern
        self.weightBits = weightBits
        self.activationBits = activationBits
    }
}

/// Codable for session and model files (missing keys decode to the defaults).
public struct QuantizationConfig: Sendable, Equatable, Codable {
    public var method: QuantizationMethod
    public var weightBits: Int
    public var activationBits: Int
    /// Authors' LSQ config: weights per output channel, activations per tensor.
    public var weightGranularity: ScaleGranularity
    /// Authors' default [−2^(b−1), 2^(b−1)−1]; `.narrowSigned` is LSQ's `symmetric: true`.
    public var weightRange: QuantizationRange
    public var activationRange: ActivationRangeChoice
    /// The paper keeps the stem's weights in full precision; true quantizes them too.
    public var quantizeStemWeights: Bool
    /// Patterns of convolutions left entirely in full precision (no weight or input quantizer).
    public var keepFullPrecision: [String]
    /// Applied in order; a later match overrides an earlier one.
    public var bitOverrides: [LayerBitOverride]
    /// EWGS δ for every quantizer (EWGS "fixed" setting, docs/quantization.md §4).
    public var ewgsDelta: Float

    public init(method: QuantizationMethod = .lsq, weightBits: Int = 4, activationBits: Int = 4,
                weightGranularity: ScaleGranularity = .perChannel, weightRange: QuantizationRange = .signed,
                activationRange: ActivationRangeChoice = .fromData, quantizeStemWeights: Bool = false,
                keepFullPrecision: [String] = [], bitOverrides: [LayerBitOverride] = [], ewgsDelta: Float = 1e-3) {
        self.method = method
        self.weightBits = weightBits
        self.activationBits = activationBits
        self.weightGranularity = weightGranularity
        self.weightRange = weightRange
        self.activationRange = activationRange
        self.quantizeStemWeights = quantizeStemWeights
        self.keepFullPrecision = keepFullPrecision
        self.bitOverrides = bitOverrides
        self.ewgsDelta = ewgsDelta
    }

    /// Every key a file does not have takes the default above, so files written before an option was
    /// saved (fqat-shell session v2 held only method and bits) still load.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = QuantizationConfig()
        func value<T: Decodable>(_ key: CodingKeys, _ fallback: T) throws -> T {
            try c.decodeIfPresent(T.self, forKey: key) ?? fallback
        }
        self.init(method: try value(.method, d.method), weightBits: try value(.weightBits, d.weightBits),
                  activationBits: try value(.activationBits, d.activationBits),
                  weightGranularity: try value(.weightGranularity, d.weightGranularity),
                  weightRange: try value(.weightRange, d.weightRange), activationRange: try value(.activationRange, d.activationRange),
                  quantizeStemWeights: try value(.quantizeStemWeights, d.quantizeStemWeights),
                  keepFullPrecision: try value(.keepFullPrecision, d.keepFullPrecision),
                  bitOverrides: try value(.bitOverrides, d.bitOverrides), ewgsDelta: try value(.ewgsDelta, d.ewgsDelta))
    }
}

/// A layer name pattern. Glob by default: `*` matches any run of characters (dots included), `?` one
/// character, everything else itself; the whole name must match, and a pattern also covers the
/// modules under a matched path (`layer3` and `layer3.*` both select every conv in layer3).
/// Written between slashes (`/layer[12]\..*conv2/`) it is a Swift regular expression matched
/// against the whole name.
public struct LayerPattern: Sendable, Equatable {
    public let text: String
    private let isRegex: Bool

    public init(_ text: String) throws {
        self.text = text
        isRegex = text.count >= 2 && text.hasPrefix("/") && text.hasSuffix("/")
        if isRegex {
            do { _ = try Regex(String(text.dropFirst().dropLast())) } catch {
                throw QuantizationError.invalidPattern(pattern: text, reason: "\(error)")
            }
        } else if text.isEmpty {
            throw QuantizationError.invalidPattern(pattern: text, reason: "empty pattern")
        }
    }

    public func matches(_ name: String) -> Bool {
        if isRegex {
            guard let r = try? Regex(String(text.dropFirst().dropLast())) else { return false }
            return (try? r.wholeMatch(in: name)) != nil
        }
        let n = Array(name), p = Array(text)
        if LayerPattern.glob(p[...], n[...]) { return true }
        // Descendants of a matched module path: "layer3" covers "layer3.0.conv1".
        for (i, c) in n.enumerated() where c == "." {
            if LayerPattern.glob(p[...], n[..<i]) { return true }
        }
        return false
    }

    /// Iterative glob with single-star backtracking (linear in practice).
    static func glob(_ p: ArraySlice<Character>, _ s: ArraySlice<Character>) -> Bool {
        var pi = p.startIndex, si = s.startIndex
        var star: Int? = nil, mark = s.startIndex
        while si < s.endIndex {
            if pi < p.endIndex && (p[pi] == "?" || p[pi] == s[si]) {
                pi += 1; si += 1
            } else if pi < p.endIndex && p[pi] == "*" {
                star = pi; mark = si; pi += 1
            } else if let st = star {
                pi = st + 1; mark += 1; si = mark
            } else {
                return false
            }
        }
        while pi < p.endIndex && p[pi] == "*" { pi += 1 }
        return pi == p.endIndex
    }
}

/// The decision for one convolution.
public struct LayerQuantizationPlan: Sendable, Equatable {
    public var layer: String
    /// nil: weight stays full precision.
    public var weightBits: Int?
    /// nil: input stays full precision.
    public var activationBits: Int?
    public var isStem: Bool
}

/// What `attachQuantizers` will do, computed without changing the model (for dry runs and printing).
public struct QuantizationPlan: Sendable, Equatable {
    public var config: QuantizationConfig
    /// One entry per Conv2d in forward order.
    public var layers: [LayerQuantizationPlan]

    /// Validates `config` against `model`'s convolutions.
    public init(model: Module, config: QuantizationConfig) throws {
        self.config = config
        func checkBits(_ b: Int, _ context: String) throws {
            guard Quantizer.supportedBits.contains(b) else { throw QuantizationError.unsupportedBits(b, context: context) }
        }
        try checkBits(config.weightBits, "weights")
        try checkBits(config.activationBits, "activations")
        let convs = convolutions(in: model)
        let names = convs.map(\.name)
        func compile(_ text: String) throws -> LayerPattern {
            let p = try LayerPattern(text)
            guard names.contains(where: p.matches) else {
                throw QuantizationError.patternMatchesNoLayer(pattern: text, knownLayers: names)
            }
            return p
        }
        let keep = try config.keepFullPrecision.map(compile)
        var overrides: [(LayerPattern, LayerBitOverride)] = []
        for o in config.bitOverrides {
            if let b = o.weightBits { try checkBits(b, "weights of '\(o.pattern)'") }
            if let b = o.activationBits { try checkBits(b, "activations of '\(o.pattern)'") }
            overrides.append((try compile(o.pattern), o))
        }
        layers = convs.enumerated().map { index, conv in
            let stem = index == 0
            var plan = LayerQuantizationPlan(layer: conv.name, weightBits: config.weightBits,
                                             activationBits: config.activationBits, isStem: stem)
            for (p, o) in overrides where p.matches(conv.name) {
                if let b = o.weightBits { plan.weightBits = b }
                if let b = o.activationBits { plan.activationBits = b }
            }
            if stem && !config.quantizeStemWeights { plan.weightBits = nil }
            if keep.contains(where: { $0.matches(conv.name) }) {
                plan.weightBits = nil
                plan.activationBits = nil
            }
            return plan
        }
    }
}

/// Every Conv2d of a model, in forward (depth-first module) order: the stem first.
public func convolutions(in model: Module) -> [Conv2d] {
    model.namedModules().compactMap { $0.1 as? Conv2d }
}

/// Attaches quantizers as planned. Returns them in parameter order (per conv: weight, then input).
/// Throws for bad bit widths or patterns, and when any convolution already has a quantizer.
@discardableResult
public func attachQuantizers(to model: Module, config: QuantizationConfig) throws -> [Quantizer] {
    let plan = try QuantizationPlan(model: model, config: config)
    return try attachQuantizers(to: model, plan: plan)
}

@discardableResult
public func attachQuantizers(to model: Module, plan: QuantizationPlan) throws -> [Quantizer] {
    let convs = convolutions(in: model)
    let already = convs.filter { $0.weightQuantizer != nil || $0.inputQuantizer != nil }.map(\.name)
    guard already.isEmpty else { throw QuantizationError.alreadyQuantized(layers: already) }
    guard plan.layers.map(\.layer) == convs.map(\.name) else {
        throw QuantizationError.exportMismatch(reason: "the plan was made for a different model")
    }
    let config = plan.config
    var attached: [Quantizer] = []
    for (conv, layer) in zip(convs, plan.layers) {
        if let b = layer.weightBits {
            let q = Quantizer(layerName: conv.name, role: .weight, bits: b, range: config.weightRange,
                              granularity: config.weightGranularity, channels: conv.outChannels,
                              method: config.method, weight: conv.weight)
            q.ewgsDelta = config.ewgsDelta
            // LSQ rule from the current weights until a calibration replaces it (LSQF does this at wrap time).
            q.initializeScale(from: conv.weight.value, method: .lsq)
            conv.weightQuantizer = q
            attached.append(q)
        }
        if let b = layer.activationBits {
            let range: QuantizationRange
            let fromData: Bool
            switch config.activationRange {
            case .fromData: range = layer.isStem ? .signed : .unsigned; fromData = true
            case .fixed(let r): range = r; fromData = false
            }
            let q = Quantizer(layerName: conv.name, role: .activation, bits: b, range: range,
                              method: config.method, rangeFromData: fromData)
            q.ewgsDelta = config.ewgsDelta
            conv.inputQuantizer = q
            attached.append(q)
        }
    }
    return attached
}

/// Removes every quantizer (and integer override) from the model's convolutions and linears.
/// Returns how many quantizers were removed.
@discardableResult
public func removeQuantizers(from model: Module) -> Int {
    var removed = 0
    for (_, m) in model.namedModules() {
        if let c = m as? Conv2d {
            removed += (c.weightQuantizer != nil ? 1 : 0) + (c.inputQuantizer != nil ? 1 : 0)
            c.weightQuantizer = nil
            c.inputQuantizer = nil
            c.inferenceOverride = nil
            c.clearCache()
        } else if let l = m as? Linear {
            removed += (l.weightQuantizer != nil ? 1 : 0) + (l.inputQuantizer != nil ? 1 : 0)
            l.weightQuantizer = nil
            l.inputQuantizer = nil
        }
    }
    return removed
}

/// All `Quantizer`s of a model in parameter order (per layer: weight, then input).
public func quantizers(in model: Module) -> [Quantizer] {
    var out: [Quantizer] = []
    for (_, m) in model.namedModules() {
        if let c = m as? Conv2d {
            if let q = c.weightQuantizer as? Quantizer { out.append(q) }
            if let q = c.inputQuantizer as? Quantizer { out.append(q) }
        } else if let l = m as? Linear {
            if let q = l.weightQuantizer as? Quantizer { out.append(q) }
            if let q = l.inputQuantizer as? Quantizer { out.append(q) }
        }
    }
    return out
}

/// The step-size parameters (`<layer>.w.s`, `<layer>.a.s`) in the order `model.parameters` lists them.
public func scaleParameters(in model: Module) -> [Parameter] {
    model.parameters.filter { $0.kind == .scale }
}
