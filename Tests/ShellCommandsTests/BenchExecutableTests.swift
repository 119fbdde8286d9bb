// fqat-bench's opt-in 224-px workloads through the built executable, at smoke size (`--quick`: batch 2,
// one repeat): every row they promise comes out, with a positive rate. The full-precision and the
// quantized workloads build their networks separately; the quantized kinds each quantize a fresh one.
import Foundation
import Plot
import XCTest

final class BenchExecutableTests: XCTestCase {
    func testThe224PixelWorkloadsPrintEveryRow() throws {
        let binary = repositoryRoot.appendingPathComponent(".build/debug/fqat-bench").path
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: binary), "fqat-bench is not built")
        let child = try Subprocess(executable: binary,
                                   arguments: ["--json", "--quick", "--only", "resnet18,resnet18-quant", "--threads", "2"],
                                   workingDirectory: FileManager.default.temporaryDirectory.path,
                                   environment: ProcessInfo.processInfo.environment, stdin: .null, stdout: .pipe, stderr: .null)
        let out = child.output!.readDataToEndOfFile()
        var ended = child.wait(timeout: 300)
        if ended == nil { child.send(signal: SIGKILL); ended = child.wait(); XCTFail("fqat-bench did not end") }
        XCTAssertEqual(ended, .exited(0))
        var rates: [String: Double] = [:]
        for line in String(decoding: out, as: UTF8.self).split(separator: "\n") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let workload = object["workload"] as? String, workload.hasPrefix("resnet18-") else { continue }
            rates[workload] = object["images_per_second"] as? Double
            XCTAssertEqual(object["batch"] as? Int, 2, workload)
        }
        XCTAssertEqual(Set(rates.keys), ["resnet18-erm", "resnet18-eval", "resnet18-lsq", "resnet18-fqat"])
        for (workload, rate) in rates { XCTAssertGreaterThan(rate, 0, workload) }
    }
}
