import Foundation
import TensorCore

extension Bench {
    /// Model-level workloads (conv shapes, ERM/LSQ/FQAT training steps, eval, data, landscape).
    func runModelWorkloads(sgemmPeak: [Int: Double]) {}
}
