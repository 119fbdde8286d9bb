// Every example script runs at smoke size (the same scripts as the README and the study, shrunk with
// their own options), so examples cannot rot.
import Foundation
import ShellLanguage
import XCTest

final class ExamplesTests: XCTestCase {
    /// Smoke options per example; a new example must be added here (the test fails otherwise).
    static let smoke: [String: [String]] = [
        "quickstart.fqs": ["--per_domain=60", "--erm_steps=3", "--qat_steps=2", "--eval_every=2"],
        "paper/table1.fqs": ["--per_domain=60", "--erm_steps=3", "--qat_steps=2", "--eval_every=2", "--bits=[4]",
                             "--seeds=[0]", "--domains=[fog]", "--arch=resnet8", "--ewgs=true"],
        "paper/table4.fqs": ["--per_domain=60", "--erm_steps=3", "--qat_steps=4", "--eval_every=2", "--K=2", "--arch=resnet8"],
        "paper/fig6.fqs": ["--per_domain=60", "--erm_steps=3", "--qat_steps=4", "--eval_every=4", "--taus=[0.3]", "--Ks=[2]", "--arch=resnet8"],
        "paper/figures.fqs": ["--per_domain=60", "--erm_steps=3", "--qat_steps=4", "--eval_every=4", "--K=2", "--grid=-0.5:0.5:3",
                              "--images=20", "--arch=resnet8"],
    ]

    func testEveryExampleRunsAtSmokeSize() throws {
        try XCTSkipUnless(fashionMNISTPresent, "Fashion-MNIST is not installed")
        let examples = repositoryRoot.appendingPathComponent("examples")
        var found: [String] = []
        if let walker = FileManager.default.enumerator(atPath: examples.path) {
            for case let rel as String in walker where rel.hasSuffix(".fqs") { found.append(rel) }
        }
        XCTAssertEqual(Set(found), Set(Self.smoke.keys), "every example needs smoke options in ExamplesTests.smoke")
        for rel in found.sorted() {
            let text = try String(contentsOf: examples.appendingPathComponent(rel), encoding: .utf8)
            let h = try ShellHarness()
            let status = h.run(text, name: rel, arguments: Self.smoke[rel] ?? [])
            XCTAssertEqual(status, 0, "\(rel) failed:\n\(h.output.error)\n\(h.output.standard.suffix(3000))")
        }
    }

    /// `table1.fqs --reuse_fp=true` adds bit widths to an earlier run from the checkpoint it saved,
    /// without training ERM and the control again; the summary then has both widths.
    func testTable1AddsBitWidthsToAnEarlierRun() throws {
        try XCTSkipUnless(fashionMNISTPresent, "Fashion-MNIST is not installed")
        let text = try String(contentsOf: repositoryRoot.appendingPathComponent("examples/paper/table1.fqs"), encoding: .utf8)
        let base = ["--per_domain=60", "--erm_steps=3", "--qat_steps=2", "--eval_every=2", "--seeds=[0]", "--domains=[fog]",
                    "--arch=resnet8", "--ewgs=false", "--threads=1"]
        let h = try ShellHarness()
        XCTAssertEqual(h.run(text, name: "table1.fqs", arguments: base + ["--bits=[4]"]), 0, h.output.error)
        let folder = h.directory.appendingPathComponent("runs/table1/style-fmnist/seed0/fog")
        let erm = try String(contentsOf: folder.appendingPathComponent("fp-erm.jsonl"), encoding: .utf8)
        XCTAssertTrue(erm.contains("\"threads\":1"), erm)
        XCTAssertFalse(erm.contains("env0_in_acc"), "eval=selection leaves out the training domains' in splits")
        XCTAssertTrue(erm.contains("env2_in_acc"), "the held-out domain's in split is the OOD score")
        XCTAssertEqual(h.run(text, name: "table1.fqs", arguments: base + ["--bits=[3]", "--reuse_fp=true"]), 0, h.output.error)
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path)
        XCTAssertTrue(files.contains("lsq-3bit.jsonl") && files.contains("lsq-4bit.jsonl"), "\(files)")
        XCTAssertFalse(files.contains("fp-erm.jsonl.1"), "ERM was not trained again: \(files)")
        XCTAssertEqual(try String(contentsOf: folder.appendingPathComponent("fp-erm.jsonl"), encoding: .utf8), erm)
        XCTAssertTrue(h.output.standard.contains("fqat-lsq-3bit") && h.output.standard.contains("fqat-lsq-4bit"),
                      "the closing summary lists both widths")
    }
}
