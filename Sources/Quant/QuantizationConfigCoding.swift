// Saving a quantization configuration (session and model files): `QuantizationConfig` and its parts
// are Codable (Placement.swift) so a saved session restores every option `quantize` took, not only the
// method and the bit widths. The activation range choice is coded here as one word.

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
