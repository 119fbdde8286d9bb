// Keeping freed activation memory in the process.
//
// Every layer allocates its output and its input gradient afresh (value-semantics tensors), a few MB
// each. glibc serves such sizes with mmap, or trims the heap top when they are freed, so every training
// step page-faults all its activations back in: 12% of a ResNet-20 step on this machine (perf), and
// ~18% faster steps when the memory is kept. PyTorch's caching allocator exists for the same reason.
// We ask glibc to serve blocks up to 32 MiB (its maximum mmap threshold) from the heap and never trim.
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

public enum TensorMemory {
    /// Bytes this process may use: physical memory, or the cgroup (v2 `memory.max`, v1 `limit_in_bytes`)
    /// limit when one is set and lower. Estimates are checked against it before anything large is
    /// allocated (an allocation that fails is a trap, not an error).
    public static func processBudget() -> UInt64 {
        var budget = ProcessInfo.processInfo.physicalMemory
        for file in ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"] {
            if let text = try? String(contentsOfFile: file, encoding: .utf8),
               let limit = UInt64(text.trimmingCharacters(in: .whitespacesAndNewlines)), limit > 0 {
                budget = min(budget, limit)
            }
        }
        return budget
    }

    private static let configured = Atomic<Bool>(false)
    /// Whether `retainFreedMemory()` has run (it runs once, on the first fast convolution).
    public static var retainsFreedMemory: Bool { configured.load(ordering: .acquiring) }

    /// Configures the C allocator to reuse freed blocks instead of returning them to the system.
    /// Idempotent; called automatically by the first `convolution2d`/`convolution2dBackward`.
    public static func retainFreedMemory() {
        if configured.load(ordering: .acquiring) { return }
        // Only the first caller configures (compare-exchange): two threads never both call mallopt.
        guard configured.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return }
        #if canImport(Glibc)
        // mallopt is declared in <malloc.h>, which the Glibc module does not import: look it up.
        // Parameter numbers from <malloc.h>: M_TRIM_THRESHOLD = -1, M_MMAP_THRESHOLD = -3.
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
        let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
        _ = mallopt(-3, 32 << 20)
        _ = mallopt(-1, Int32.max)
        #endif
    }
}
