// `export onnx`, `export integer` and `model load` of a converted checkpoint, through the shell.
// (The ONNX Runtime side of the check is scripts/check_onnx.py, run by scripts/python_checks.sh.)
import Foundation
import NN
import XCTest

final class ExportONNXTests: XCTestCase {
    func testQuantizedExportWritesGraphAndReferenceAndChecksTheIntegerPath() throws {
        try XCTSkipUnless(fashionMNISTPresent, "Fashion-MNIST is not installed")
        let h = try ShellHarness()
        let status = h.run("""
            data style-fmnist per_domain=20
            model new resnet8 width=0.5
            quantize lsq bits=4 override=["layer3.*:8/3"]
            let r = export onnx "m/w4a4.onnx" reference="m/ref.safetensors" images=6 check=8
            print r.quantized_layers
            """)
        XCTAssertEqual(status, 0, h.output.error)
        let out = h.output.standard
        XCTAssertTrue(out.contains("exported resnet8 (LSQ W4/A4) to m/w4a4.onnx"), out)
        XCTAssertTrue(out.contains("integer path vs fake-quantized model on 8 images"), out)
        XCTAssertTrue(out.contains("QuantizeLinear 7"), "one per quantized conv input of ResNet-8: \(out)")
        let ref = try SafeTensors.read(contentsOf: h.directory.appendingPathComponent("m/ref.safetensors"))
        XCTAssertEqual(ref.stateDict["input"]?.shape, [6, 1, 28, 28])
        XCTAssertEqual(ref.stateDict["logits"]?.shape, [6, 10])
        XCTAssertEqual(ref.tensors["conv1.input_codes"]?.dtype, "U8", "style-fmnist images are in [0, 1]: an unsigned range")
        XCTAssertEqual(ref.tensors["layer3.0.conv1.input_codes"]?.dtype, "U8", "post-ReLU inputs are unsigned")
        XCTAssertEqual(ref.tensors.keys.filter { $0.hasSuffix(".input_codes") }.count, 7)
        XCTAssertTrue(FileManager.default.fileExists(atPath: h.directory.appendingPathComponent("m/w4a4.onnx").path))
    }

    func testReferenceNeedsDataAndTheOldSyntaxSaysWhatToType() throws {
        let h = try ShellHarness()
        XCTAssertNotEqual(h.run("model new resnet8 in_channels=1 classes=3\nexport onnx m.onnx reference=r.safetensors"), 0)
        XCTAssertTrue(h.output.error.contains("reference= needs evaluation images"), h.output.error)
        XCTAssertFalse(FileManager.default.fileExists(atPath: h.directory.appendingPathComponent("m.onnx").path))
        let h2 = try ShellHarness()
        XCTAssertNotEqual(h2.run("model new resnet8 in_channels=1 classes=3\nexport m.safetensors"), 0)
        XCTAssertTrue(h2.output.error.contains("subcommands: integer, onnx"), h2.output.error)
    }

    func testFullPrecisionModelExportsWithoutData() throws {
        let h = try ShellHarness()
        XCTAssertEqual(h.run("model new resnet20 in_channels=3 classes=4 width=0.25\nexport onnx fp.onnx"), 0, h.output.error)
        XCTAssertTrue(h.output.standard.contains("(full precision)"), h.output.standard)
        XCTAssertTrue(h.output.standard.contains("0 quantized layers"), h.output.standard)
        XCTAssertFalse(h.output.standard.contains("QuantizeLinear"), h.output.standard)
    }

    /// The converter's output loads strictly by name through `model load … architecture=…`.
    func testConvertedCheckpointLoadsStrictlyInTheShell() throws {
        let fixtures = repositoryRoot.appendingPathComponent("Tests/NNTests/Fixtures/checkpoints/converted")
        let h = try ShellHarness()
        let r18 = fixtures.appendingPathComponent("resnet18_domainbed_model.safetensors").path
        XCTAssertEqual(h.run("model load \"\(r18)\" architecture=resnet18 width=0.0625 strict=true\nexport onnx m.onnx"), 0, h.output.error)
        XCTAssertTrue(h.output.standard.contains("loaded "), h.output.standard)
        // The converter's provenance (source file and its SHA-256) travels into the ONNX metadata.
        let onnx = String(decoding: try Data(contentsOf: h.directory.appendingPathComponent("m.onnx")), as: UTF8.self)
        XCTAssertTrue(onnx.contains("resnet18_domainbed_model.pkl") && onnx.contains("converted_source_sha256"),
                      "fqat.provenance names the converted checkpoint")
        let moco = fixtures.appendingPathComponent("resnet50_moco_v2.safetensors").path
        let h2 = try ShellHarness()
        XCTAssertNotEqual(h2.run("model load \"\(moco)\" architecture=resnet50 width=0.0625 classes=7 strict=true"), 0)
        XCTAssertTrue(h2.output.error.contains("missing fc.weight, fc.bias"), h2.output.error)
    }
}
