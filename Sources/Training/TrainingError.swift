// User-facing errors of the training layer: each says what is wrong and what to do.

public enum TrainingError: Error, CustomStringConvertible, Equatable {
    case unknownMethod(String, known: [String])
    case needsQuantizedModel(String)
    case quantizedModelForFullPrecisionMethod(String)
    case noTrainingDomains
    case invalidHyperparameter(String)
    case diverged(step: Int, message: String)
    case badCheckpoint(String)
    case interrupted(step: Int)

    public var description: String {
        switch self {
        case .unknownMethod(let m, let known):
            return "unknown training method '\(m)'; choose one of \(known.joined(separator: ", "))"
        case .needsQuantizedModel(let m):
            return "method '\(m)' trains a quantized model, but the model has no quantizers; run `quantize` first (or use erm/sagm)"
        case .quantizedModelForFullPrecisionMethod(let m):
            return "method '\(m)' is full precision, but the model carries quantizers; use qat, qat+sagm or fqat, or load the full-precision model"
        case .noTrainingDomains:
            return "every domain is a test domain: leave at least one domain for training (data … test=…)"
        case .invalidHyperparameter(let s):
            return s
        case .diverged(let step, let message):
            return "training diverged at step \(step): \(message); the run is as it was after step \(step - 1) (weights, optimizer, BatchNorm statistics, data order)"
        case .badCheckpoint(let s):
            return "cannot use checkpoint: \(s)"
        case .interrupted(let step):
            return "interrupted after step \(step); state is intact, `train` continues the run"
        }
    }
}
