// `landscape`: loss-surface points per second of a 21×21 grid on 1000 images with ResNet-20.
// The Landscape module has no surface API on this branch yet, so the workload reports that it was
// skipped (docs/benchmarks.md lists it as left to do).
import Foundation

extension Bench {
    func runLandscape() {
        FileHandle.standardError.write("fqat-bench: landscape: the Landscape module provides no surface API in this build; skipped\n".data(using: .utf8)!)
    }
}
