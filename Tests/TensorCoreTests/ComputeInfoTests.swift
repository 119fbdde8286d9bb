// The compute-path description (ComputeInfo): cpuid against the kernel's own view of the CPU, the
// OpenBLAS core and version, and the generic-core warning's decision on made-up machines.
import Foundation
import XCTest
@testable import TensorCore

final class ComputeInfoTests: XCTestCase {
    /// An Intel Xeon with AVX-512 (family 6, model 207), as cpuid describes it.
    let xeon = CPUFeatures(vendor: "GenuineIntel", brand: "Intel(R) Xeon(R) Platinum", family: 6, model: 207,
                           avx: true, fma: true, avx2: true, avx512f: true, avx512bw: true, avx512dq: true,
                           avx512vl: true, avx512vnni: true, avx512bf16: true, amx: true)
    let avx2Only = CPUFeatures(vendor: "GenuineIntel", brand: "Intel(R) Core(TM) i7-4770", family: 6, model: 60,
                               avx: true, fma: true, avx2: true)
    let oldCPU = CPUFeatures(vendor: "GenuineIntel", brand: "Intel(R) Core(TM)2 Duo", family: 6, model: 23)

    func info(core: String, override: String?, cpu: CPUFeatures) -> ComputeInfo {
        ComputeInfo(blas: BLASInfo(library: "OpenBLAS", config: "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY \(core) MAX_THREADS=64",
                                   core: core, coretypeOverride: override),
                    cpu: cpu, engineThreads: 2, blasThreads: 2, cores: 2)
    }

    func testWarnsWhenOpenBLASPicksAGenericCoreByItselfOnAWideCPU() throws {
        let unrecognised = info(core: "Prescott", override: nil, cpu: xeon)
        XCTAssertTrue(unrecognised.genericCoreOnWideCPU)
        let warning = try XCTUnwrap(unrecognised.genericCoreWarning)
        XCTAssertTrue(warning.contains("generic 'Prescott' kernels"), warning)
        XCTAssertTrue(warning.contains("OPENBLAS_CORETYPE=Cooperlake or SkylakeX"), warning)  // AVX-512 with BF16
        XCTAssertTrue(warning.contains("never sets it"), warning)
        // What it costs depends on who runs the convolutions.
        var openblas = unrecognised; openblas.backend = "openblas"
        XCTAssertTrue(try XCTUnwrap(openblas.genericCoreWarning).contains("training steps about 2× slower"))
        var onednn = unrecognised; onednn.backend = "onednn"
        XCTAssertTrue(try XCTUnwrap(onednn.genericCoreWarning).contains("convolutions run on onednn, which is unaffected"))
        var noBF16 = xeon; noBF16.avx512bf16 = false
        XCTAssertTrue(try XCTUnwrap(info(core: "Prescott", override: nil, cpu: noBF16).genericCoreWarning).contains("OPENBLAS_CORETYPE=SkylakeX"))
        XCTAssertTrue(try XCTUnwrap(info(core: "Sandybridge", override: nil, cpu: avx2Only).genericCoreWarning).contains("OPENBLAS_CORETYPE=Haswell"))
    }

    func testNoWarningWhereTheKernelsSuitTheCPUOrTheUserChose() {
        // Wide cores, detected or chosen.
        for core in ["Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids"] {
            XCTAssertNil(info(core: core, override: nil, cpu: xeon).genericCoreWarning, core)
            XCTAssertNil(info(core: core, override: core, cpu: xeon).genericCoreWarning, core)
        }
        // The user set OPENBLAS_CORETYPE (even to the generic path): their choice, stated by `show system`.
        XCTAssertNil(info(core: "Prescott", override: "Prescott", cpu: xeon).genericCoreWarning)
        // A CPU without AVX2: the generic core is the right one.
        XCTAssertNil(info(core: "Core2", override: nil, cpu: oldCPU).genericCoreWarning)
        // Not x86-64: cpuid says nothing, so nothing to warn about.
        XCTAssertNil(info(core: "ARMV8", override: nil, cpu: CPUFeatures(isX86: false)).genericCoreWarning)
    }

    func testLineNamesLibraryVersionCoreAndHowItWasChosen() {
        let detected = info(core: "Prescott", override: nil, cpu: xeon)
        XCTAssertEqual(detected.blas.version, "0.3.21")
        XCTAssertTrue(detected.line.contains("OpenBLAS 0.3.21, core Prescott (detected)"), detected.line)
        XCTAssertTrue(detected.line.contains("family 6 model 207"), detected.line)
        XCTAssertTrue(detected.line.contains("AVX2 AVX-512F"), detected.line)
        XCTAssertTrue(detected.line.contains("threads 2 (BLAS 2)"), detected.line)
        let chosen = info(core: "Haswell", override: "Haswell", cpu: xeon)
        XCTAssertTrue(chosen.line.contains("core Haswell (OPENBLAS_CORETYPE=Haswell)"), chosen.line)
        XCTAssertEqual(chosen.recordFields["openblas_coretype"], "Haswell")
        XCTAssertEqual(detected.recordFields["openblas_coretype"], "unset")
        XCTAssertEqual(Set(detected.recordFields.keys),
                       ["backend", "blas", "blas_config", "blas_core", "openblas_coretype", "cpu", "isa", "threads", "blas_threads"])
        // With oneDNN the line and the record name its version, kernels and wait policy.
        var onednn = detected
        onednn.backend = "onednn"
        onednn.backendDetails = ["onednn": "oneDNN 2.6.3", "onednn_impl": "jit:avx512_core", "omp_wait_policy": "passive"]
        XCTAssertTrue(onednn.line.contains("compute: backend onednn (oneDNN 2.6.3, conv jit:avx512_core, OMP_WAIT_POLICY=passive); OpenBLAS 0.3.21"), onednn.line)
        XCTAssertEqual(onednn.recordFields["onednn_impl"], "jit:avx512_core")
        XCTAssertEqual(onednn.recordFields["omp_wait_policy"], "passive")
        XCTAssertEqual(detected.backendDescription, "openblas")
    }

    /// This process's own reading: OpenBLAS reports a core and a version, and cpuid agrees with the
    /// flags the Linux kernel lists in /proc/cpuinfo (an independent reading of the same CPU).
    func testCurrentMachineReadsConsistently() throws {
        let current = ComputeInfo.current()
        XCTAssertFalse(current.blas.core.isEmpty)
        XCTAssertNotEqual(current.blas.core, "unknown")
        XCTAssertTrue(current.blas.config.hasPrefix("OpenBLAS"), current.blas.config)
        XCTAssertNotEqual(current.blas.version, "unknown")
        XCTAssertEqual(current.blas.coretypeOverride, ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"].flatMap { $0.isEmpty ? nil : $0 })
        guard let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let flagsLine = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else {
            throw XCTSkip("no /proc/cpuinfo flags to compare cpuid with")
        }
        let flags = Set(flagsLine.split(separator: ":").last!.split(separator: " ").map(String.init))
        let cpu = current.cpu
        XCTAssertTrue(cpu.isX86)
        XCTAssertEqual(cpu.avx2, flags.contains("avx2"))
        XCTAssertEqual(cpu.fma, flags.contains("fma"))
        XCTAssertEqual(cpu.avx512f, flags.contains("avx512f"))
        XCTAssertEqual(cpu.avx512bw, flags.contains("avx512bw"))
        XCTAssertEqual(cpu.avx512vnni, flags.contains("avx512_vnni"))
        XCTAssertEqual(cpu.avx512bf16, flags.contains("avx512_bf16"))
        func number(_ key: String) -> Int? {
            cpuinfo.split(separator: "\n").first { $0.split(separator: ":").first?.trimmingCharacters(in: .whitespaces) == key }
                .flatMap { Int($0.split(separator: ":").last!.trimmingCharacters(in: .whitespaces)) }
        }
        if let family = number("cpu family") { XCTAssertEqual(cpu.family, family) }
        if let model = number("model") { XCTAssertEqual(cpu.model, model) }
        if let vendorLine = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("vendor_id") }) {
            XCTAssertEqual(cpu.vendor, vendorLine.split(separator: ":").last!.trimmingCharacters(in: .whitespaces))
        }
    }
}
