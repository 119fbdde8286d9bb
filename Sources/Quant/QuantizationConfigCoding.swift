// Saving a quantization configuration (session files): `QuantizationConfig` and its parts are Codable
// so a saved session restores every option `quantize` took, not only the method and the bit widths.
// Decoding fills every key a file does not have with `QuantizationConfig()`'s default, so files written
// before an option was saved (fqat-shell session v2 held only method and bits) still load.

extension ActivationRangeChoice: Codable {
    /// One word: "data" (signed or unsigned as calibration says) or a `QuantizationRange` raw value.
    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        if text == "data" { self = .fromData; return }
        guard let range = QuantizationRange(rawValue: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                debugDescription: "activation range '\(text)' is not data, \(QuantizationRange.allCases.map(\.rawValue).joined(separator: ", "))"))
        }
        self = .fixed(range)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .fromData: try c.encode("data")
        case .fixed(let range): try c.encode(range.rawValue)
        }
    }
}

extension LayerBitOverride: Codable {
    enum CodingKeys: String, CodingKey { case pattern, weightBits, activationBits }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(pattern: try c.decode(String.self, forKey: .pattern),
                  weightBits: try c.decodeIfPresent(Int.self, forKey: .weightBits),
                  activationBits: try c.decodeIfPresent(Int.self, forKey: .activationBits))
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(pattern, forKey: .pattern)
        try c.encodeIfPresent(weightBits, forKey: .weightBits)
        try c.encodeIfPresent(activationBits, forKey: .activationBits)
    }
}

extension QuantizationConfig: Codable {
    enum CodingKeys: String, CodingKey {
        case method, weightBits, activationBits, weightGranularity, weightRange, activationRange
        case quantizeStemWeights, keepFullPrecision, bitOverrides, ewgsDelta
    }

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

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(method, forKey: .method)
        try c.encode(weightBits, forKey: .weightBits)
        try c.encode(activationBits, forKey: .activationBits)
        try c.encode(weightGranularity, forKey: .weightGranularity)
        try c.encode(weightRange, forKey: .weightRange)
        try c.encode(activationRange, forKey: .activationRange)
        try c.encode(quantizeStemWeights, forKey: .quantizeStemWeights)
        try c.encode(keepFullPrecision, forKey: .keepFullPrecision)
        try c.encode(bitOverrides, forKey: .bitOverrides)
        try c.encode(ewgsDelta, forKey: .ewgsDelta)
    }
}
