// End to end: a ResNet-20 (width 1, 1×28×28) learns style-shifted Fashion-MNIST from scratch with
// Adam through `Run`: 150 steps of 8 images from each of three training domains (clean, sketch,
// fog; "noise" held out), the last 50 at a quarter of the learning rate so that the eval-mode BN
// statistics settle. Chance is 10%.
import Datasets
import Foundation
import NN
import TensorCore
@testable import Training
import XCTest

final class LearningTests: XCTestCase {
    func testResNet20LearnsStyleFashionMNIST() throws {
        let data = try TrainingFixtures.styleFMNIST(perDomain: 600)
        let env = try EnvironmentAssignment(testDomainNames: ["noise"], in: data)
        let net = try Network.make(architecture: "resnet20", inChannels: 1, classes: 10, width: 1, seed: 0)
        var hp = Hyperparameters.defaults(for: .erm)
        hp.learningRate = 2e-3
        hp.batchPerDomain = 8
        hp.evalEvery = 1000
        let run = try Run(network: net, dataset: data, environments: env, method: .erm, hyperparameters: hp, seed: 0)
        let t0 = Date()
        let first = try run.train(steps: 100, evaluateAtEnd: false)
        run.stepper.optimizer.setLearningRate(5e-4, group: "model")
        let second = try run.train(steps: 50)
        let record = try XCTUnwrap(second.lastRecord)
        print(String(format: "ResNet-20 erm on style-fmnist: 150 steps in %.1f s, loss %.3f → %.3f, I.D %.3f, OOD (noise) %.3f",
                     Date().timeIntervalSince(t0), first.meanLoss, second.meanLoss, record.validationAccuracy, record.testAccuracy))
        XCTAssertLessThan(second.meanLoss, 0.7 * first.meanLoss)
        XCTAssertGreaterThan(record.validationAccuracy, 0.6, "I.D validation accuracy after 150 steps")
    }
}
