// Evaluation records have DomainBed's shape and numbers; train-domain-validation selection picks the
// record with the best training-domain out-split accuracy and reports the test domain's in-split.
import Datasets
import Foundation
import NN
import TensorCore
@testable import Training
import XCTest

final class EvaluationTests: XCTestCase {
    func testRecordsHaveDomainBedKeysAndSelectionWorks() throws {
        let data = try TrainingFixtures.styleFMNIST(perDomain: 100)
        let env = try EnvironmentAssignment(testDomainNames: ["fog"], in: data)
        var hp = Hyperparameters.defaults(for: .erm)
        hp.batchPerDomain = 5
        hp.evalEvery = 3
        let run = try Run(network: try TrainingFixtures.tinyModel.make(), dataset: data, environments: env, method: .erm,
                          hyperparameters: hp, seed: 2, provenance: ["weights": .string("scratch")])
        var losses: [Float] = []
        var evaluations = 0
        _ = try run.train(steps: 7, onEvent: { event in
            switch event {
            case .step(let r, _): losses.append(r.loss)
            case .evaluation(let record, let results):
                evaluations += 1
                XCTAssertEqual(results.count, 8, "in and out split of 4 domains")
                for r in results {
                    let value = r.part == .in ? record.inAccuracy[r.domain] : record.outAccuracy[r.domain]
                    XCTAssertEqual(value, r.accuracy)
                }
            }
        })
        XCTAssertEqual(evaluations, 3)
        XCTAssertEqual(run.records.map(\.step), [3, 6, 7])

        let record = run.records[0]
        let line = record.jsonLine()
        let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
        for d in 0..<4 {
            XCTAssertNotNil(object["env\(d)_in_acc"] as? Double, line)
            XCTAssertNotNil(object["env\(d)_out_acc"] as? Double, line)
            XCTAssertNotNil(object["env\(d)_out_loss"] as? Double, line)
        }
        // DomainBed's "step" is the 0-based index of the step just taken; "steps_done" the count.
        XCTAssertEqual(object["step"] as? Int, 2)
        XCTAssertEqual(object["steps_done"] as? Int, 3)
        let args = try XCTUnwrap(object["args"] as? [String: Any])
        XCTAssertEqual(args["test_envs"] as? [Int], [2])
        XCTAssertEqual(args["algorithm"] as? String, "erm")
        XCTAssertEqual(args["dataset"] as? String, "style-fmnist")
        XCTAssertEqual(args["seed"] as? Int, 2)
        XCTAssertEqual(args["trial_seed"] as? Int, 0)
        XCTAssertEqual(args["threads"] as? Int, Parallel.threads, "bit-exact reproduction needs the thread count")
        XCTAssertEqual(args["backend"] as? String, Backend.current.rawValue, "bit-exact reproduction needs the backend")
        let hparams = try XCTUnwrap(object["hparams"] as? [String: Any])
        XCTAssertEqual(hparams["lr"] as? Double, 1e-3)
        XCTAssertEqual(hparams["batch_size"] as? Double, 5)
        XCTAssertEqual((object["provenance"] as? [String: Any])?["weights"] as? String, "scratch")
        // The compute path the record came from (BLAS core, CPU ISA, threads): docs/benchmarks.md.
        let compute = try XCTUnwrap((object["provenance"] as? [String: Any])?["compute"] as? [String: String])
        XCTAssertEqual(compute["blas_core"], ComputeInfo.current().blas.core)
        XCTAssertEqual(compute["threads"], String(Parallel.threads))
        XCTAssertEqual(compute["backend"], ComputeInfo.current().backend)
        // "loss" is the mean training loss since the previous evaluation; "epoch" is DomainBed's.
        XCTAssertEqual(object["loss"] as? Double ?? .nan, losses[0..<3].map(Double.init).reduce(0, +) / 3, accuracy: 1e-12)
        XCTAssertEqual(run.records[2].metrics["loss"], Double(losses[6]))
        // DomainBed's epoch: step index / (min over every domain's in split, held-out included, / batch).
        XCTAssertEqual(object["epoch"] as? Double ?? .nan, 2.0 / (Double(run.splits.map(\.inIndices.count).min()!) / 5), accuracy: 1e-12)
        XCTAssertEqual(args["hparams_seed"] as? Int, 0)
        XCTAssertEqual(args["holdout_fraction"] as? Double, 0.2)
        XCTAssertEqual(args["steps"] as? Int, 7, "the planned length of the run")
        // Keys are sorted as json.dumps(sort_keys=True) writes them, and the line parses back.
        let keys = object.keys.sorted()
        XCTAssertEqual(line.components(separatedBy: "\"env0_in_acc\"").count, 2)
        XCTAssertLessThan(line.range(of: "\"args\"")!.lowerBound, line.range(of: "\"\(keys.last!)\"")!.lowerBound)
        let parsed = try EvalRecord.parse(line: line)
        XCTAssertEqual(parsed.inAccuracy, record.inAccuracy)
        XCTAssertEqual(parsed.outAccuracy, record.outAccuracy)
        XCTAssertEqual(parsed.testDomains, [2])

        // Accuracy equals a hand count over the split with eval-mode argmax.
        let set = EvaluationSet(domain: 1, part: .out, indices: run.splits[1].outIndices)
        let batch = try data.batch(domain: 1, indices: set.indices)
        let logits = run.network.forward(batch.images, .eval)
        var correct = 0
        for i in 0..<batch.labels.count {
            let row = Array(logits.data[(i * 10)..<(i * 10 + 10)])
            if row.firstIndex(of: row.max()!) == batch.labels[i] { correct += 1 }
        }
        XCTAssertEqual(run.records[2].outAccuracy[1], Double(correct) / Double(set.indices.count))

        // Selection: the record with the best mean out accuracy over domains 0, 1, 3; its test = env2_in.
        let best = run.records.max { $0.validationAccuracy < $1.validationAccuracy }!
        let firstBest = run.records.first { $0.validationAccuracy == best.validationAccuracy }!
        let selected = try XCTUnwrap(run.selection())
        XCTAssertEqual(selected.record, firstBest)
        XCTAssertEqual(selected.validationAccuracy, ([0, 1, 3].map { firstBest.outAccuracy[$0]! }.reduce(0, +)) / 3, accuracy: 1e-12)
        XCTAssertEqual(selected.testAccuracy, firstBest.inAccuracy[2])
        XCTAssertEqual(selected.label, "")
        XCTAssertEqual(run.selection(.testDomainOracle)?.record.step, 7)
        XCTAssertFalse(run.selection(.testDomainOracle)!.label.isEmpty)
    }

    func testInterruptionPausesWithStateIntact() throws {
        let data = try TrainingFixtures.styleFMNIST(perDomain: 100)
        let env = try EnvironmentAssignment(testDomains: [3], domainCount: 4)
        var hp = Hyperparameters.defaults(for: .erm)
        hp.batchPerDomain = 4
        hp.evalEvery = 2
        func make() throws -> Run {
            try Run(network: try TrainingFixtures.tinyModel.make(), dataset: data, environments: env, method: .erm,
                    hyperparameters: hp, seed: 4)
        }
        let straight = try make()
        _ = try straight.train(steps: 6)
        let paused = try make()
        var polls = 0
        let summary = try paused.train(steps: 6, shouldStop: { polls += 1; return paused.step == 3 })
        XCTAssertTrue(summary.interrupted)
        XCTAssertEqual(summary.stepsRun, 3)
        XCTAssertEqual(paused.records.map(\.step), [2])
        _ = try paused.train(steps: 3)
        XCTAssertEqual(paused.records, straight.records)
        assertSameModel(paused.network, straight.network)

        // Stopping inside an evaluation leaves no record and no change.
        let cut = try make()
        var evalPolls = 0
        let s2 = try cut.train(steps: 2, shouldStop: { () -> Bool in
            if cut.step == 2 { evalPolls += 1 }
            return evalPolls == 3
        })
        XCTAssertTrue(s2.interrupted)
        XCTAssertEqual(cut.step, 2)
        XCTAssertTrue(cut.records.isEmpty)
    }

    /// `evaluateTrainingInSplits = false` computes the same accuracies for the splits the scores read
    /// (training out splits, test in and out splits), leaves the training in splits out of the record,
    /// and does not change training.
    func testSelectionSplitsGiveTheSameScoresWithLessWork() throws {
        let data = try TrainingFixtures.styleFMNIST(perDomain: 100)
        let env = try EnvironmentAssignment(testDomainNames: ["fog"], in: data)
        func runWith(all: Bool) throws -> (Run, [[SplitResult]]) {
            var hp = Hyperparameters.defaults(for: .erm)
            hp.batchPerDomain = 5
            hp.evalEvery = 2
            hp.evaluateTrainingInSplits = all
            let run = try Run(network: try TrainingFixtures.tinyModel.make(), dataset: data, environments: env,
                              method: .erm, hyperparameters: hp, seed: 4, provenance: [:])
            var evaluations: [[SplitResult]] = []
            _ = try run.train(steps: 5, onEvent: { if case .evaluation(_, let r) = $0 { evaluations.append(r) } })
            return (run, evaluations)
        }
        let (full, fullResults) = try runWith(all: true)
        let (lean, leanResults) = try runWith(all: false)
        XCTAssertEqual(fullResults.map(\.count), [8, 8, 8])
        XCTAssertEqual(leanResults.map(\.count), [5, 5, 5], "3 training out splits + fog in and out")
        for (a, b) in zip(full.records, lean.records) {
            XCTAssertEqual(a.step, b.step)
            XCTAssertEqual(a.outAccuracy, b.outAccuracy)
            XCTAssertEqual(b.inAccuracy.keys.sorted(), [2], "only the test domain's in split")
            XCTAssertEqual(a.inAccuracy[2], b.inAccuracy[2])
            XCTAssertEqual(a.validationAccuracy, b.validationAccuracy)
            XCTAssertEqual(a.testAccuracy, b.testAccuracy)
            XCTAssertFalse(b.jsonLine().contains("\"env0_in_acc\""))
            XCTAssertTrue(a.jsonLine().contains("\"env0_in_acc\""))
        }
        XCTAssertEqual(full.selection()?.record.step, lean.selection()?.record.step)
        XCTAssertEqual(full.selection(.testDomainOracle)?.testAccuracy, lean.selection(.testDomainOracle)?.testAccuracy)
        assertSameModel(full.network, lean.network)
    }

    /// Quantized runs record how many scale factors have g_QAT frozen at each evaluation (policy and
    /// manual overrides), and how many there are; full-precision runs record neither.
    func testQuantizedRecordsCountFrozenScaleFactors() throws {
        let data = try TrainingFixtures.styleFMNIST(perDomain: 100)
        let env = try EnvironmentAssignment(testDomainNames: ["fog"], in: data)
        var hp = Hyperparameters.defaults(for: .fqat)
        hp.batchPerDomain = 4
        hp.evalEvery = 2
        hp.window = 2
        let net = try TrainingFixtures.quantizedTinyModel(data: data, environments: env)
        let run = try Run(network: net, dataset: data, environments: env, method: .fqat, hyperparameters: hp, seed: 3, provenance: [:])
        _ = try run.stepper.freeze("layer1.*")
        _ = try run.train(steps: 4)
        for r in run.records {
            XCTAssertEqual(r.metrics["scale_factors"], Double(run.scales.count))
        }
        let frozenNow = run.stepper.controller.frozen.filter { $0 }.count
        XCTAssertGreaterThan(frozenNow, 0)
        XCTAssertEqual(run.records.last?.metrics["frozen_scales"], Double(frozenNow))
        XCTAssertTrue(run.records.last!.jsonLine().contains("\"frozen_scales\":\(frozenNow)"))

        var fp = Hyperparameters.defaults(for: .erm)
        fp.batchPerDomain = 4
        fp.evalEvery = 2
        let erm = try Run(network: try TrainingFixtures.tinyModel.make(), dataset: data, environments: env, method: .erm,
                          hyperparameters: fp, seed: 3, provenance: [:])
        _ = try erm.train(steps: 2)
        XCTAssertNil(erm.records.last?.metrics["frozen_scales"])
    }
}
