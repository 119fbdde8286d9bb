// A parallel-for that only splits work worth splitting. DispatchQueue.concurrentPerform pays off
// only above ~100 µs per chunk on this machine; below `minimumWork` elements the loop runs inline.
import Dispatch
import Foundation

public enum Parallel {
    /// Worker count used by `forEach`; 1 disables threading in engine kernels.
    nonisolated(unsafe) public static var threads: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Runs `body(range)` over 0..<count split into contiguous chunks, in parallel when
    /// `count * costPerItem` is large enough. `costPerItem` is a rough number of flops per item.
    public static func forEach(_ count: Int, costPerItem: Int = 1, minimumWork: Int = 200_000,
                               _ body: (Range<Int>) -> Void) {
        let t = threads
        if t <= 1 || count < 2 || count * max(1, costPerItem) < minimumWork {
            body(0..<count)
            return
        }
        let chunks = min(t, count)
        let per = (count + chunks - 1) / chunks
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            let lo = c * per
            let hi = min(count, lo + per)
            if lo < hi { body(lo..<hi) }
        }
    }
}
