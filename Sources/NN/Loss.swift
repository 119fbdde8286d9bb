// Softmax cross-entropy, mean over the batch (torch.nn.functional.cross_entropy, reduction "mean").
//   loss = (1/N) Σ_n [ log Σ_j exp(z_nj) − z_n,y_n ], with the log-sum-exp shifted by max_j z_nj
//   dL/dz_nj = (softmax(z_n)_j − [j = y_n]) / N
import Foundation
import TensorCore

/// Mean cross-entropy of `logits` (N, classes) against `labels` (N values in 0..<classes), its
/// gradient with respect to the logits, and how many rows have their label as the (first) argmax.
public func softmaxCrossEntropy(logits: Tensor, labels: [Int]) -> (loss: Float, gradient: Tensor, correct: Int) {
    precondition(logits.rank == 2 && logits.shape[0] == labels.count,
                 "softmaxCrossEntropy: logits \(logits.shape) vs \(labels.count) labels")
    let n = logits.shape[0], k = logits.shape[1]
    guard n > 0 else { return (0, logits, 0) }
    var gradient = Tensor(uninitializedShape: logits.shape)
    var total = 0.0
    var correct = 0
    for i in 0..<n {
        let label = labels[i]
        precondition(label >= 0 && label < k, "softmaxCrossEntropy: label \(label) of row \(i) outside 0..<\(k)")
        let row = logits.data[(i * k)..<((i + 1) * k)]
        var best = -Float.infinity, arg = 0
        for (j, v) in row.enumerated() where v > best { best = v; arg = j }
        if arg == label { correct += 1 }
        var sum = 0.0
        for v in row { sum += exp(Double(v - best)) }
        let logSum = Double(best) + log(sum)
        total += logSum - Double(logits.data[i * k + label])
        for j in 0..<k {
            let p = exp(Double(logits.data[i * k + j] - best)) / sum
            gradient.data[i * k + j] = Float((p - (j == label ? 1 : 0)) / Double(n))
        }
    }
    return (Float(total / Double(n)), gradient, correct)
}
