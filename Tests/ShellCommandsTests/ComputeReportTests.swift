// The executable states its compute path (`--version`, `show system`) and warns at start, once, only
// when OpenBLAS picked a generic core by itself on a CPU with AVX2/AVX-512. Each case runs the built
// binary with OPENBLAS_CORETYPE as that case needs it, in the child's environment alone.
import Foundation
import Plot
import TensorCore
import XCTest

final class ComputeReportTests: XCTestCase {
    struct Outcome { var status: Termination; var stdout: String; var stderr: String }

    func run(_ arguments: [String], coretype: String?, environment extra: [String: String] = [:]) throws -> Outcome {
        let binary = repositoryRoot.appendingPathComponent(".build/debug/fqat-shell").path
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: binary), "fqat-shell is not built")
        var environment = ProcessInfo.processInfo.environment
        environment["OPENBLAS_CORETYPE"] = coretype   // nil removes it: the machine's own detection
        // These tests check the executable's own defaults: a suite run under FQAT_BACKEND=openblas or
        // FQAT_ACTIVATIONS=plain (docs/backends.md) must not hand them on; a test sets them itself.
        environment["FQAT_BACKEND"] = nil
        environment["FQAT_ACTIVATIONS"] = nil
        for (k, v) in extra { environment[k] = v }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fqat-compute-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        XCTAssertTrue(FileManager.default.createFile(atPath: dir.appendingPathComponent("one.fqs").path, contents: Data("print 1\n".utf8)))
        let child = try Subprocess(executable: binary, arguments: arguments, workingDirectory: dir.path,
                                   environment: environment, stdin: .null, stdout: .pipe, stderr: .pipe)
        let errors = child.errors!, box = ErrBox(), group = DispatchGroup()
        DispatchQueue.global().async(group: group) { box.data = errors.readDataToEndOfFile() }
        let out = child.output!.readDataToEndOfFile()
        var ended = child.wait(timeout: 60)
        if ended == nil { child.send(signal: SIGKILL); ended = child.wait(); XCTFail("fqat-shell did not end") }
        group.wait()
        let err = String(decoding: box.data, as: UTF8.self)
        return Outcome(status: ended!, stdout: String(decoding: out, as: UTF8.self), stderr: err)
    }

    /// "core NAME (…)" from a compute line.
    func core(in line: String) -> String? {
        guard let r = line.range(of: ", core ") else { return nil }
        return String(line[r.upperBound...].prefix { $0 != " " })
    }

    /// FQAT_BACKEND picks the starting backend; a value that cannot be honoured is warned about once
    /// and the default is used.
    func testBackendFromEnvironment() throws {
        let blas = try run(["-c", "show settings"], coretype: "Haswell", environment: ["FQAT_BACKEND": "openblas"])
        XCTAssertEqual(blas.status, .exited(0), blas.stderr)
        XCTAssertTrue(blas.stdout.contains("backend openblas,"), blas.stdout)
        XCTAssertFalse(blas.stderr.contains("FQAT_BACKEND"), blas.stderr)
        let bogus = try run(["-c", "show settings"], coretype: "Haswell", environment: ["FQAT_BACKEND": "cuda"])
        XCTAssertEqual(bogus.status, .exited(0), bogus.stderr)
        XCTAssertTrue(bogus.stderr.contains("warning: FQAT_BACKEND=cuda is not a backend (openblas or onednn)"), bogus.stderr)
        XCTAssertTrue(bogus.stdout.contains("backend \(Backend.oneDNNAvailable ? "onednn" : "openblas"),"), bogus.stdout)
        let switched = try run(["-c", "set backend=openblas\nshow settings"], coretype: "Haswell")
        XCTAssertEqual(switched.status, .exited(0), switched.stderr)
        XCTAssertTrue(switched.stdout.contains("backend openblas,"), switched.stdout)
    }

    /// FQAT_ACTIVATIONS=plain keeps every tensor NCHW on oneDNN (the compute line says which layout
    /// runs); any other value than blocked or plain is warned about and the default kept.
    func testActivationLayoutFromEnvironment() throws {
        guard Backend.oneDNNAvailable && Backend.oneDNNPreferredBlock > 0 else {
            throw XCTSkip("oneDNN not loaded or without a blocked layout here")
        }
        let blocked = "activations nChw\(Backend.oneDNNPreferredBlock)c"
        let plain = try run(["-c", "show system"], coretype: "Haswell", environment: ["FQAT_ACTIVATIONS": "plain"])
        XCTAssertEqual(plain.status, .exited(0), plain.stderr)
        XCTAssertTrue(plain.stdout.contains("activations nchw"), plain.stdout)
        XCTAssertFalse(plain.stderr.contains("FQAT_ACTIVATIONS"), plain.stderr)
        let byDefault = try run(["-c", "show system"], coretype: "Haswell")
        XCTAssertTrue(byDefault.stdout.contains(blocked), byDefault.stdout)
        let bogus = try run(["-c", "show system"], coretype: "Haswell", environment: ["FQAT_ACTIVATIONS": "sideways"])
        XCTAssertEqual(bogus.status, .exited(0), bogus.stderr)
        XCTAssertTrue(bogus.stderr.contains("warning: FQAT_ACTIVATIONS=sideways is not a layout (blocked or plain); using blocked"), bogus.stderr)
        XCTAssertTrue(bogus.stdout.contains(blocked), bogus.stdout)
    }

    func testCoreChosenByTheUserIsStatedAndNotWarnedAbout() throws {
        for coretype in ["Prescott", "Haswell"] {
            let version = try run(["--version"], coretype: coretype)
            XCTAssertEqual(version.status, .exited(0), version.stderr)
            XCTAssertTrue(version.stdout.contains("core \(coretype) (OPENBLAS_CORETYPE=\(coretype))"), version.stdout)
            let shown = try run(["-c", "show system"], coretype: coretype)
            XCTAssertEqual(shown.status, .exited(0), shown.stderr)
            // The convolution backend comes first: onednn (with its version) where libdnnl loads.
            let backend = Backend.oneDNNAvailable ? "compute: backend onednn (oneDNN " : "compute: backend openblas; OpenBLAS"
            XCTAssertTrue(shown.stdout.contains(backend), shown.stdout)
            XCTAssertTrue(shown.stdout.contains("; OpenBLAS 0."), shown.stdout)
            XCTAssertTrue(shown.stdout.contains("core \(coretype) (OPENBLAS_CORETYPE=\(coretype))"), shown.stdout)
            XCTAssertFalse(shown.stderr.contains("warning: OpenBLAS"), "\(coretype): \(shown.stderr)")
        }
    }

    /// With OPENBLAS_CORETYPE unset the machine decides: the warning appears exactly when the core
    /// OpenBLAS reports is not one of its AVX2/AVX-512 cores and the CPU has AVX2 (an Intel Xeon that
    /// Debian's OpenBLAS 0.3.21 does not know: yes; AMD Zen, detected as a wide core: no).
    func testWarningAppearsExactlyWhenTheDetectedCoreIsGenericOnAWideCPU() throws {
        let version = try run(["--version"], coretype: nil)
        XCTAssertEqual(version.status, .exited(0))
        XCTAssertFalse(version.stderr.contains("warning: OpenBLAS"), "--version states the path; it does not warn")
        let line = try XCTUnwrap(version.stdout.split(separator: "\n").first { $0.hasPrefix("compute:") }.map(String.init))
        let detected = try XCTUnwrap(core(in: line))
        XCTAssertTrue(line.contains("core \(detected) (detected)"), line)
        let wideCPU = line.contains(" AVX2") && line.contains(" FMA")
        let wideCore = ["haswell", "zen", "skylakex", "cooperlake", "sapphirerapids", "excavator"].contains(detected.lowercased())
        let batch = try run(["-c", "print 1"], coretype: nil)
        XCTAssertEqual(batch.status, .exited(0), batch.stderr)
        let warnings = batch.stderr.components(separatedBy: "warning: OpenBLAS").count - 1
        XCTAssertEqual(warnings, wideCPU && !wideCore ? 1 : 0, "core \(detected): \(batch.stderr)")
        let check = try run(["--check", "one.fqs"], coretype: nil)
        XCTAssertEqual(check.status, .exited(0), check.stderr)
        XCTAssertFalse(check.stderr.contains("warning: OpenBLAS"), "--check computes nothing: \(check.stderr)")
    }
}

private final class ErrBox: @unchecked Sendable {
    var data = Data()
}
