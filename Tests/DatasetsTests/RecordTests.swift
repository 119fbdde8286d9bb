import XCTest
@testable import Datasets

final class RecordTests: XCTestCase {
    /// A line in the shape DomainBed's train.py writes (json.dumps(results, sort_keys=True)).
    let domainBedLine = """
    {"args": {"algorithm": "ERM", "checkpoint_freq": null, "data_dir": "./domainbed/data/", "dataset": "PACS", "holdout_fraction": 0.2, "hparams": null, "hparams_seed": 0, "output_dir": "train_output", "save_model_every_checkpoint": false, "seed": 0, "skip_model_save": false, "steps": null, "task": "domain_generalization", "test_envs": [2], "trial_seed": 0, "uda_holdout_fraction": 0}, "env0_in_acc": 0.8779743746186699, "env0_out_acc": 0.8361858190709046, "env1_in_acc": 0.8160980810234542, "env1_out_acc": 0.7995735607675906, "env2_in_acc": 0.9520958083832335, "env2_out_acc": 0.937125748502994, "env3_in_acc": 0.7938931297709924, "env3_out_acc": 0.7834394904458599, "epoch": 3.5928143712574853, "hparams": {"batch_size": 32, "class_balanced": false, "data_augmentation": true, "lr": 5e-05, "nonlinear_classifier": false, "resnet18": false, "resnet_dropout": 0.0, "weight_decay": 0.0}, "loss": 0.2925496482849121, "mem_gb": 8.742401123046875, "step": 300, "step_time": 0.4208633383115133}
    """

    func testParsesADomainBedLineAndRoundTrips() throws {
        let record = try EvalRecord.parse(line: domainBedLine)
        XCTAssertEqual(record.step, 300)
        XCTAssertEqual(record.testDomains, [2])
        XCTAssertEqual(record.trainingDomains, [0, 1, 3])
        XCTAssertEqual(record.inAccuracy[2], 0.9520958083832335)
        XCTAssertEqual(record.outAccuracy[3], 0.7834394904458599)
        XCTAssertEqual(record.metrics["loss"], 0.2925496482849121)
        XCTAssertEqual(record.metrics["epoch"], 3.5928143712574853)
        XCTAssertEqual(record.args["dataset"], .string("PACS"))
        XCTAssertEqual(record.args["checkpoint_freq"], .null)
        XCTAssertEqual(record.hparams["batch_size"], .int(32))
        XCTAssertEqual(record.hparams["lr"], .double(5e-05))

        var withProvenance = record
        withProvenance.provenance = ["weights": .string("resnet50-mocov2.safetensors"), "pretraining": .string("MoCo-v2 ImageNet")]
        let line = withProvenance.jsonLine()
        XCTAssertFalse(line.contains("\n"))
        XCTAssertTrue(line.hasPrefix("{\"args\":{\"algorithm\":\"ERM\""), "keys sorted: \(line.prefix(60))")
        XCTAssertTrue(line.contains("\"env2_in_acc\":0.9520958083832335"))
        XCTAssertTrue(line.contains("\"test_envs\":[2]"))
        XCTAssertEqual(try EvalRecord.parse(line: line), withProvenance)
        let keys = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
        XCTAssertEqual(Set(keys.keys), ["args", "env0_in_acc", "env0_out_acc", "env1_in_acc", "env1_out_acc", "env2_in_acc",
                                        "env2_out_acc", "env3_in_acc", "env3_out_acc", "epoch", "hparams", "loss", "mem_gb",
                                        "provenance", "step", "step_time", "steps_done"])
        // Written as DomainBed's 0-based step index, read back as the count of steps done.
        XCTAssertTrue(line.contains("\"step\":299,"), line)
        XCTAssertTrue(line.contains("\"steps_done\":300"), line)
    }

    func testMalformedLinesAreReportedWithTheirNumber() {
        assertDatasetError(try EvalRecord.parse(jsonLines: domainBedLine + "\n\n{\"step\": 1}\n"),
                           contains: ["results line 3", "no \"args\" object"])
        assertDatasetError(try EvalRecord.parse(line: "[1, 2]", lineNumber: 7), contains: ["results line 7", "not a JSON object"])
        assertDatasetError(try EvalRecord.parse(line: "{\"step\": 1, \"args\": {\"test_envs\": [0]}}"), contains: ["no env{i}_out_acc"])
    }

    func record(_ step: Int, val: [Double], test: Double, testOut: Double, testDomain: Int = 0) -> EvalRecord {
        var inAcc: [Int: Double] = [testDomain: test]
        var outAcc: [Int: Double] = [testDomain: testOut]
        var d = 0
        for v in val {
            if d == testDomain { d += 1 }
            outAcc[d] = v
            inAcc[d] = 0.99
            d += 1
        }
        return EvalRecord(step: step, inAccuracy: inAcc, outAccuracy: outAcc, testDomains: [testDomain])
    }

    func testTrainingDomainValidationPicksTheFirstBestCheckpoint() throws {
        let run = [record(0, val: [0.5, 0.6], test: 0.40, testOut: 0.41),
                   record(100, val: [0.8, 0.7], test: 0.55, testOut: 0.50),
                   record(200, val: [0.7, 0.8], test: 0.65, testOut: 0.70),   // tie with step 100: the earlier wins
                   record(300, val: [0.6, 0.6], test: 0.70, testOut: 0.72)]
        let s = try XCTUnwrap(ModelSelection.select(run, method: .trainingDomainValidation))
        XCTAssertEqual(s.record.step, 100)
        XCTAssertEqual(s.validationAccuracy, 0.75, accuracy: 1e-12)
        XCTAssertEqual(s.testAccuracy, 0.55)
        XCTAssertEqual(s.label, "")

        let oracle = try XCTUnwrap(ModelSelection.select(run, method: .testDomainOracle))
        XCTAssertEqual(oracle.record.step, 300, "DomainBed's oracle takes the last checkpoint")
        XCTAssertEqual(oracle.validationAccuracy, 0.72)
        XCTAssertTrue(oracle.label.contains("oracle"))
        let best = try XCTUnwrap(ModelSelection.select(run, method: .testDomainOracleBestCheckpoint))
        XCTAssertEqual(best.record.step, 300)
        XCTAssertEqual(ModelSelection.select(Array(run.prefix(3)), method: .testDomainOracleBestCheckpoint)?.record.step, 200)

        // Across hyper-parameter runs: the run whose selected checkpoint validates best.
        let other = [record(0, val: [0.9, 0.85], test: 0.3, testOut: 0.3)]
        let sweep = try XCTUnwrap(ModelSelection.selectAcrossRuns([run, other], method: .trainingDomainValidation))
        XCTAssertEqual(sweep.run, 1)
        XCTAssertEqual(sweep.selection.testAccuracy, 0.3)
        XCTAssertNil(ModelSelection.select([], method: .trainingDomainValidation))
    }

    func testGroupTestReportsEachTestDomain() throws {
        // DomainNet-style: test domains 0 and 1, training domains 2–5.
        let r1 = EvalRecord(step: 1000, inAccuracy: [0: 0.5, 1: 0.2, 2: 0.9, 3: 0.9, 4: 0.9, 5: 0.9],
                            outAccuracy: [0: 0.5, 1: 0.2, 2: 0.6, 3: 0.6, 4: 0.6, 5: 0.6], testDomains: [1, 0])
        let r2 = EvalRecord(step: 2000, inAccuracy: [0: 0.6, 1: 0.3, 2: 0.9, 3: 0.9, 4: 0.9, 5: 0.9],
                            outAccuracy: [0: 0.6, 1: 0.3, 2: 0.7, 3: 0.6, 4: 0.6, 5: 0.6], testDomains: [0, 1])
        let s = try XCTUnwrap(ModelSelection.select([r1, r2], method: .trainingDomainValidation))
        XCTAssertEqual(s.record.step, 2000)
        XCTAssertEqual(s.validationAccuracy, 0.625, accuracy: 1e-12)
        XCTAssertEqual(s.testAccuracyByDomain, [0: 0.6, 1: 0.3])
        XCTAssertEqual(s.testAccuracy, 0.45, accuracy: 1e-12)
    }

    func testSeedSummaryMatchesNumpyAndDomainBed() {
        // numpy: np.mean = 0.8, np.std = 0.0163299…, np.std(ddof=1) = 0.02, DomainBed err = np.std(x/√3).
        let s = SeedSummary([0.78, 0.80, 0.82])
        XCTAssertEqual(s.mean, 0.8, accuracy: 1e-12)
        XCTAssertEqual(s.sampleStandardDeviation, 0.02, accuracy: 1e-12)
        XCTAssertEqual(s.populationStandardDeviation, 0.016329931618554516, accuracy: 1e-12)
        XCTAssertEqual(s.domainBedStandardError, 0.009428090415820628, accuracy: 1e-12)
        XCTAssertEqual(s.formatted(), "80.0 ± 0.9")
        XCTAssertEqual(s.formatted(.sampleStandardDeviation), "80.0 ± 2.0")
        XCTAssertEqual(SeedSummary([0.5]).sampleStandardDeviation, 0)
    }
}
