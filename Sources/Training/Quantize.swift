// Building a quantized model the standard way (paper §5.1, docs/quantization.md §2–3): attach LSQ/EWGS
// quantizers to a (trained) full-precision network and MSE-calibrate every step size from a few
// batches of training images. The calibration batches are drawn deterministically from the
// training domains' in-splits (never from validation or test data) by `calibrationBatches`.
import Datasets
import NN
import Quant
import TensorCore

public enum Quantize {
    /// Attaches quantizers as `config` says and calibrates them on `calibrationBatches` (weights from
    /// their values; activations from eval-mode forwards, BN on its running statistics). On any error
    /// the network is left as it was (no quantizers). Throws `QuantizationError` (bad bits or
    /// patterns, an already quantized model, no batches).
    @discardableResult
    public static func prepare(network: Network, config: QuantizationConfig, calibrationBatches: [Tensor],
                               options: CalibrationOptions = CalibrationOptions()) throws -> CalibrationSummary {
        guard !calibrationBatches.isEmpty else { throw QuantizationError.noCalibrationData }
        for b in calibrationBatches {
            precondition(b.rank == 4 && b.shape[1] == network.inChannels,
                         "calibration batch \(b.shape) does not fit a network with \(network.inChannels) input channels")
        }
        try attachQuantizers(to: network, config: config)
        do {
            return try calibrateQuantizers(in: network, batches: calibrationBatches, options: options)
        } catch {
            removeQuantizers(from: network)
            throw error
        }
    }

    /// `count` batches of `perDomain` images from every training domain's in-split (concatenated in
    /// domain order), drawn without replacement within a batch by a generator seeded from `seed`.
    /// Same arguments, same batches. The in-splits are DomainBed's for `trialSeed`.
    public static func calibrationBatches(dataset: DomainDataset, environments: EnvironmentAssignment,
                                          trialSeed: Int = 0, count: Int = 1, perDomain: Int = 32,
                                          seed: UInt64 = 0) throws -> [Tensor] {
        precondition(count >= 1 && perDomain >= 1, "calibrationBatches: count and perDomain must be positive")
        let splits = dataset.domainBedSplits(trialSeed: trialSeed)
        var rng = RNG(seed: mixSeed(seed, 0xCA11_B4A7))
        var batches: [Tensor] = []
        for _ in 0..<count {
            var parts: [Tensor] = []
            for d in environments.trainingDomains {
                let pool = splits[d].inIndices
                let order = rng.permutation(pool.count)
                let picked = order.prefix(min(perDomain, pool.count)).map { pool[$0] }
                parts.append(try dataset.batch(domain: d, indices: picked).images)
            }
            batches.append(Tensor.concatenate(parts))
        }
        return batches
    }
}
