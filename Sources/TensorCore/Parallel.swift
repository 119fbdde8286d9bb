// A parallel-for that only splits work worth splitting. DispatchQueue.concurrentPerform pays off
// only above ~100 µs per chunk on this machine; below `minimumWork` elements the loop runs inline.
import Dispatch
import Foundation
import Synchronization

public enum Parallel {
    /// The thread counts the engine accepts (`set threads`, `--threads`, fqat-bench's `--threads`).
    public static let supportedThreads = 1...256
    private static let workerCount = Atomic<Int>(max(1, ProcessInfo.processInfo.activeProcessorCount))
    /// Worker count used by `forEach`; 1 disables threading in engine kernels. A process-wide
    /// setting (`set threads`), stored atomically.
    public static var threads: Int {
        get { workerCount.load(ordering: .relaxed) }
        set { workerCount.store(newValue, ordering: .relaxed) }
    }

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
        withoutActuallyEscaping(body) { body in
            // Audited unsafe spot (docs/architecture.md, "Concurrency"): `body` is called on several
            // threads at once, each with its own disjoint range. The kernels write through pointers
            // into disjoint slices of their output (or into per-range partials under a Mutex), which
            // the compiler cannot see, so the closure is not @Sendable. concurrentPerform returns only
            // when every chunk is done, so `body` never outlives this call.
            nonisolated(unsafe) let body = body
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                let lo = c * per
                let hi = min(count, lo + per)
                if lo < hi { body(lo..<hi) }
            }
        }
    }
}
