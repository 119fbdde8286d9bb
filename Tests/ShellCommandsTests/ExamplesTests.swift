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
}
