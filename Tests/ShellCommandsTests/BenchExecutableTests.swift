// fqat-bench through the built executable: bad flags and values are usage errors that say why, and the
// opt-in 224-px workloads at smoke size (`--quick`: batch 2, one repeat) print every row they promise
// with a positive rate. The full-precision and the quantized workloads build their networks
// separately; the quantized kinds each quantize a fresh one.
import Foundation
import Plot
import XCTest

final class BenchExecutableTests: XCTestCase {
    /// Runs the built fqat-bench; stdout and stderr together (fqat-bench's errors are short).
    func bench(_ arguments: [String]) throws -> (status: Termination, output: String) {
        let binary = repositoryRoot.appendingPathComponent(".build/debug/fqat-bench").path
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: binary), "fqat-bench is not built")
        let child = try Subprocess(executable: binary, arguments: arguments,
                                   workingDirectory: FileManager.default.temporaryDirectory.path,
                                   environment: ProcessInfo.processInfo.environment, stdin: .null, stdout: .pipe,
                                   stderr: .standardOutput)
        let out = child.output!.readDataToEndOfFile()
        var ended = child.wait(timeout: 300)
        if ended == nil { child.send(signal: SIGKILL); ended = child.wait(); XCTFail("fqat-bench did not end") }
        return (ended!, String(decoding: out, as: UTF8.self))
    }

    /// Bad flags and values end before any measurement with exit 64 and a line naming the value.
    func testBadArgumentsAreUsageErrorsThatSayWhy() throws {
        let cases: [([String], String)] = [
            (["--threads", "0", "--only", "sgemm"], "--threads wants positive integers, comma-separated, e.g. --threads 1,2; got '0'"),
            (["--threads", "-1"], "--threads wants positive integers, comma-separated, e.g. --threads 1,2; got '-1'"),
            (["--batch", "0,64"], "--batch wants positive integers, comma-separated, e.g. --batch 32,64; got '0,64'"),
            (["--threads", "1000"], "got '1000' (at most 256)"),
            (["--only", "erm", "--batch", "99999999999"], "of activations through resnet20 (1×28×28), more than half of the"),
            (["--thread", "2"], "Unknown option '--thread'. Did you mean '--threads'?"),
            (["--only", "erm,bogus"], "unknown workload 'bogus'; choose from sgemm, conv,"),
            (["--backend", "cuda"], "Please provide one of 'openblas', 'onednn' or 'both'"),
            (["--conv-budget", "many"], "--conv-budget wants a positive integer"),
            (["--compare", "/nonexistent/torch.jsonl"], "cannot read the --compare file '/nonexistent/torch.jsonl'"),
        ]
        for (arguments, message) in cases {
            let (status, output) = try bench(arguments)
            XCTAssertEqual(status, .exited(64), "\(arguments): \(output)")
            XCTAssertTrue(output.contains(message), "\(arguments): \(output)")
            XCTAssertFalse(output.contains("GFLOP/s"), "\(arguments): measured before refusing")
        }
    }

    func testThe224PixelWorkloadsPrintEveryRow() throws {
        let (status, out) = try bench(["--json", "--quick", "--only", "resnet18,resnet18-quant", "--threads", "2"])
        XCTAssertEqual(status, .exited(0), out)
        var rates: [String: Double] = [:]
        for line in out.split(separator: "\n") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let workload = object["workload"] as? String, workload.hasPrefix("resnet18-") else { continue }
            rates[workload] = object["images_per_second"] as? Double
            XCTAssertEqual(object["batch"] as? Int, 2, workload)
        }
        XCTAssertEqual(Set(rates.keys), ["resnet18-erm", "resnet18-eval", "resnet18-lsq", "resnet18-fqat"])
        for (workload, rate) in rates { XCTAssertGreaterThan(rate, 0, workload) }
    }
}
