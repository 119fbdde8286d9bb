// `memory`: peak resident memory of batch-128 ERM training steps of ResNet-20 against the
// activation memory the forward pass keeps for backward.
//
// Stored activations, analytically (the layer caches as NN defines them; a buffer held by two
// caches counts once):
//   Conv2d       caches its input x' and weight w'. Unquantized, x' is the producer's buffer (the
//                previous ReLU's cached output, or the caller's image) and w' the parameter: nothing
//                new. With an input quantizer: x' = Qa(x) plus the quantizer's residual (one Float
//                per element each); with a weight quantizer: Qw(W) plus its residual.
//   BatchNorm2d  its input (the convolution output, held by nobody else) and 2·C statistics.
//   ReLU         its output (which the next convolution caches too: counted once, here).
//   BasicBlock   relu1 and relu2 outputs (the sum h is freed after relu2); the zero-padding
//                shortcut and the global pool keep shapes only.
//   Linear       its input (the pooled features).
// So ResNet-20 keeps four block-output-sized buffers per block (bn1 input, relu1 output, bn2
// input, relu2 output) plus two for the stem: about 289 k floats (1.13 MiB) per 1×28×28 image.
// The image itself is the caller's and is not counted.
//
// Measured cross-check: with glibc's mmap threshold pinned at 64 KiB every buffer of that size or
// more is its own mapping, returned to the system when freed, so the growth of the resident set
// across one training forward (caches alive, temporaries freed) is the memory the caches hold.
// Pinning the threshold changes the allocator for the rest of the process, so this runs last.
//
// Peak: VmHWM is reset (/proc/self/clear_refs, "5") before two timed steps, so it is the peak of
// those steps alone; the baseline is the resident set just before them (binary, model, optimizer
// state, allocator pools left by earlier workloads after malloc_trim).
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import NN
import Optim
import Quant
import TensorCore

/// Floats the caches of one training forward hold, by layer kind (rules in the file header).
func storedActivationFloats(_ network: Network, batch: Int, imageShape: [Int] = [1, 28, 28]) -> [String: Int] {
    var shapeByName: [String: [Int]] = [:]
    for row in network.describeLayers(inputShape: imageShape) { if let s = row.outputShape { shapeByName[row.name] = s } }
    let sites = Dictionary(uniqueKeysWithValues: convolutionSites(network, imageShape: imageShape).map { ($0.conv.name, $0) })
    func size(_ name: String) -> Int { batch * (shapeByName[name] ?? []).reduce(1, *) }
    var parts: [String: Int] = [:]
    for (name, module) in network.namedModules() {
        switch module {
        case let bn as BatchNorm2d:
            parts["batchnorm", default: 0] += size(name) + 2 * bn.channels
        case is ReLU:
            parts["relu", default: 0] += size(name)
        case is BasicBlock:
            // Its ReLUs are not children: relu1 has bn1's shape, relu2 the block's output shape.
            parts["relu", default: 0] += size(name + ".bn1") + size(name)
        case let conv as Conv2d:
            if conv.inputQuantizer != nil, let site = sites[name] {
                parts["quantizer", default: 0] += 2 * batch * site.inputShape.reduce(1, *)
            }
            if conv.weightQuantizer != nil { parts["quantizer", default: 0] += 2 * conv.weight.count }
        case let linear as Linear:
            parts["linear", default: 0] += batch * linear.inFeatures
        default:
            break
        }
    }
    return parts
}

/// glibc allocator controls, looked up at run time (malloc.h is not part of Swift's Glibc module).
enum Allocator {
    private typealias MalloptFunction = @convention(c) (Int32, Int32) -> Int32
    private typealias TrimFunction = @convention(c) (Int) -> Int32
    /// RTLD_DEFAULT (a null handle on glibc): search the process's global symbols, as TensorCore's
    /// TensorMemory does.
    private static var handle: UnsafeMutableRawPointer? { nil }

    /// mallopt(M_MMAP_THRESHOLD, bytes); false when unavailable.
    @discardableResult
    static func pinMmapThreshold(bytes: Int32) -> Bool {
        guard let f = dlsym(handle, "mallopt") else { return false }
        return unsafeBitCast(f, to: MalloptFunction.self)(-3, bytes) == 1
    }

    /// malloc_trim(0): returns freed heap memory to the system.
    static func trim() {
        guard let f = dlsym(handle, "malloc_trim") else { return }
        _ = unsafeBitCast(f, to: TrimFunction.self)(0)
    }
}

/// Current resident set size in MiB (VmRSS).
func residentMiB() -> Double {
    guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in s.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return (line.split(separator: " ").compactMap { Double($0) }.first ?? 0) / 1024
    }
    return 0
}

extension Bench {
    /// Resets VmHWM to the current RSS, remembering the peak so far for the final report.
    /// Returns false when the kernel refuses (then VmHWM keeps the whole-process peak).
    func resetPeakResident() -> Bool {
        processPeakMiB = max(processPeakMiB, peakResidentMiB())
        do {
            try "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
            return true
        } catch {
            return false
        }
    }

    func runMemory() {
        let batch = plan.memoryBatch
        let threads = plan.threadCounts.max()!
        setThreads(threads)
        let setup = TrainingSetup(.erm)
        let (images, labels) = syntheticBatch(batch)
        let timer = PassTimer()
        let body = gradientClosure(setup.network, images, labels, timer)
        do {
            try setup.stepper.step(body)   // creates the optimizer state
            Allocator.trim()
            let baseline = residentMiB()
            let reset = resetPeakResident()
            for _ in 0..<2 { try setup.stepper.step(body) }
            let peak = peakResidentMiB()

            let parts = storedActivationFloats(setup.network, batch: batch)
            let analytic = Double(parts.values.reduce(0, +) * 4) / 1_048_576
            var extra: [String: Double] = [
                "peak_mib": peak, "baseline_mib": baseline, "activations_mib": analytic,
                "peak_over_activations": peak / analytic,
                "step_growth_over_activations": (peak - baseline) / analytic,
                "peak_is_whole_process": reset ? 0 : 1,
            ]
            for (k, v) in parts { extra["activations_\(k)_mib"] = Double(v * 4) / 1_048_576 }

            // Cross-check: resident growth across one training forward with the threshold pinned.
            if Allocator.pinMmapThreshold(bytes: 64 << 10) {
                setup.network.clearCache()
                Allocator.trim()
                let before = residentMiB()
                let logits = setup.network.forward(images, ForwardContext(training: true))
                let after = residentMiB()
                extra["measured_activations_mib"] = after - before
                _ = logits
                setup.network.clearCache()
            }
            emit(Measurement(workload: "memory", detail: "erm step: peak rss vs stored activations", batch: batch,
                             threads: threads, extra: extra))
        } catch {
            FileHandle.standardError.write("fqat-bench: memory workload step failed: \(error)\n".data(using: .utf8)!)
        }
    }
}
