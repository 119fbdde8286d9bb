// Freeze policies (FQAT §4.3, Table 4 ablations) on scale factors whose gradients the test dictates.
import NN
import TensorCore
import XCTest
@testable import Optim

final class FreezePolicyTests: XCTestCase {
    static let alternating = "layer1.0.a.s"   // per-tensor, g_QAT alternates sign: D = 1
    static let constant = "layer1.0.w.s"      // per-channel (2), g_QAT constant: D = 0

    /// Factor 0 alternates (+1, −1, …), factor 1 is constant; g_flat is −0.5 and (0.3, 0.7).
    func model() -> ControlledScales {
        ControlledScales([(Self.alternating, 1), (Self.constant, 2)],
                         qat: { f, step in f == 0 ? [step % 2 == 1 ? 1 : -1] : [1, 2] },
                         flat: { f, _ in f == 0 ? [-0.5] : [0.3, 0.7] })
    }

    func controller(_ policy: FreezePolicy, K: Int = 4, tau: Float = 0.5, _ m: ControlledScales) throws -> FreezeController {
        try FreezeController(settings: FreezeSettings(policy: policy, windowLength: K, threshold: tau), names: m.names)
    }

    /// Runs steps 1...n and returns the decisions.
    func run(_ c: inout FreezeController, _ m: ControlledScales, steps: ClosedRange<Int>) -> [FreezeDecision] {
        steps.map { c.decide(m.gradients(step: $0)) }
    }

    func grad(_ values: [Float]) -> AppliedGradient { .gradient(Tensor(shape: [values.count], data: values)) }

    func testAdaptiveFirstWindowThenFreezesLowDisorderForK() throws {
        let m = model()
        var c = try controller(.adaptive, m)
        let d = run(&c, m, steps: 1...8)
        for k in 0..<4 {
            XCTAssertEqual(d[k].frozen, [false, false], "nothing frozen during the first K steps (step \(k + 1))")
            XCTAssertEqual(d[k].applied[1], grad([0.5 * (1 + 0.3), 0.5 * (2 + 0.7)]))
        }
        XCTAssertEqual(d[0].applied[0], grad([0.5 * (1 - 0.5)]))
        XCTAssertEqual(d[3].completedWindow, DisorderWindow(endStep: 4, disorder: [1, 0]))
        XCTAssertNil(d[2].completedWindow)
        for k in 4..<8 {
            XCTAssertEqual(d[k].frozen, [false, true], "step \(k + 1)")
            XCTAssertEqual(d[k].applied[1], grad([0.15, 0.35]), "a frozen factor gets 0.5·g_flat")
        }
        // The frozen factor's g_QAT is still recorded: its disorder in window 2 is still 0.
        XCTAssertEqual(d[7].completedWindow?.disorder, [1, 0])

        // Make the constant factor alternate from step 9: window 3 measures D = 1 → unfrozen at 13.
        m.qat = { f, step in [step % 2 == 1 ? 1 : -1] + (f == 1 ? [step > 8 && step % 2 == 0 ? -2 : 2] : []) }
        let later = run(&c, m, steps: 9...13)
        XCTAssertEqual(later.map { $0.frozen[1] }, [true, true, true, true, false])
        XCTAssertEqual(later[3].completedWindow?.disorder[1], 1)
    }

    func testThresholdIsStrict() throws {
        // K = 5 with + + − − +: two flips in four pairs, D = 0.5 exactly.
        let m = ControlledScales([("s", 1)], qat: { _, step in [[1, 1, -1, -1, 1][(step - 1) % 5]] })
        for (policy, tau, frozen) in [(FreezePolicy.adaptive, Float(0.5), false), (.adaptive, 0.51, true),
                                      (.reverse, 0.5, false), (.reverse, 0.49, true),
                                      (.freezeBoth, 0.5, false), (.noUnfreeze, 0.5, false)] {
            var c = try controller(policy, K: 5, tau: tau, m)
            let d = run(&c, m, steps: 1...6)
            XCTAssertEqual(d[4].completedWindow?.disorder, [0.5])
            XCTAssertEqual(d[5].frozen, [frozen], "\(policy) τ = \(tau)")
        }
    }

    func testReverseFreezesHighDisorder() throws {
        let m = model()
        var c = try controller(.reverse, m)
        let d = run(&c, m, steps: 1...5)
        XCTAssertEqual(d[4].frozen, [true, false])
        XCTAssertEqual(d[4].applied[0], grad([-0.25]))
        XCTAssertEqual(d[4].applied[1], grad([0.65, 1.35]))
    }

    func testNoUnfreezeIsSticky() throws {
        let m = model()
        var c = try controller(.noUnfreeze, m)
        _ = run(&c, m, steps: 1...4)
        XCTAssertEqual(c.frozen, [false, true])
        // Both alternate from now on: factor 1 stays frozen; factor 0 stays unfrozen (D = 1).
        m.qat = { f, step in f == 0 ? [step % 2 == 1 ? 1 : -1] : [step % 2 == 1 ? 1 : -1, 1] }
        _ = run(&c, m, steps: 5...12)
        XCTAssertEqual(c.lastWindow?.disorder, [1, 0.5])
        XCTAssertEqual(c.frozen, [false, true])
        // Factor 0 turns constant: frozen at the next decision, and for good.
        m.qat = { f, step in f == 0 ? [1] : [step % 2 == 1 ? 1 : -1, 1] }
        _ = run(&c, m, steps: 13...16)
        XCTAssertEqual(c.frozen, [true, true])
        let bothAlternate: (Int, Int) -> [Float] = { f, step in Array(repeating: step % 2 == 1 ? 1 : -1, count: f == 0 ? 1 : 2) }
        m.qat = bothAlternate
        _ = run(&c, m, steps: 17...24)
        XCTAssertEqual(c.lastWindow?.disorder, [1, 1])
        XCTAssertEqual(c.frozen, [true, true])

        // Adaptive, by contrast, unfreezes.
        var a = try controller(.adaptive, m)
        m.qat = { f, step in f == 0 ? [step % 2 == 1 ? 1 : -1] : [1, 2] }
        _ = run(&a, m, steps: 1...4)
        m.qat = bothAlternate
        _ = run(&a, m, steps: 5...8)
        XCTAssertEqual(a.frozen, [false, false])
    }

    func testAlternateUsesStepParityAndNeverFreezes() throws {
        let m = model()
        var c = try controller(.alternate, m)
        let d = run(&c, m, steps: 1...10)
        for (k, decision) in d.enumerated() {
            XCTAssertEqual(decision.frozen, [false, false])
            let step = k + 1
            XCTAssertEqual(decision.applied[1], step % 2 == 1 ? grad([0.5, 1]) : grad([0.15, 0.35]), "step \(step)")
        }
        XCTAssertEqual(d[3].completedWindow?.disorder, [1, 0], "disorder is still measured for the trace")
    }

    func testNoneNeverFreezes() throws {
        let m = model()
        var c = try controller(.none, m)
        let d = run(&c, m, steps: 1...12)
        XCTAssertTrue(d.allSatisfy { $0.frozen == [false, false] && $0.skipped.isEmpty })
        XCTAssertEqual(d[11].applied[1], grad([0.65, 1.35]))
    }

    func testFreezeBothSkipsTheOptimizerUpdateEntirely() throws {
        for policy in [FreezePolicy.freezeBoth, .adaptive] {
            let m = model()
            let adam = Adam(weights: [m.weight], scales: m.scales, learningRate: 0.01, weightDecay: 0, scaleLearningRate: 0.1)
            let stepper = try FQATStepper(weights: [m.weight], scales: m.scales, method: .sagm(SAGM()), optimizer: adam,
                                          freeze: FreezeSettings(policy: policy, windowLength: 4, threshold: 0.5))
            for _ in 1...4 { try stepper.step(m.compute) }
            let value = m.scales[1].value, state = adam.states[Self.constant]
            XCTAssertEqual(state?.step, 4)
            for step in 5...8 {
                let report = try stepper.step(m.compute)
                XCTAssertEqual(report.frozen, [Self.constant], "\(policy) step \(step)")
                XCTAssertEqual(report.skipped, policy == .freezeBoth ? [Self.constant] : [], "\(policy) step \(step)")
            }
            if policy == .freezeBoth {
                XCTAssertEqual(m.scales[1].value, value, "frozen under freeze-both: value untouched")
                XCTAssertEqual(adam.states[Self.constant], state, "frozen under freeze-both: moments and step count untouched")
            } else {
                XCTAssertNotEqual(m.scales[1].value, value, "adaptive still updates with 0.5·g_flat")
                XCTAssertEqual(adam.states[Self.constant]?.step, 8)
            }
            XCTAssertEqual(adam.states[Self.alternating]?.step, 8)
        }
    }

    func testSinglePassFreezingSkipsAndUnfrozenGetsFullQATGradient() {
        let q = Tensor(shape: [1], data: [0.8])
        XCTAssertEqual(FreezeMath.applied(policy: .adaptive, frozen: false, step: 1, qat: q, flat: nil), .gradient(q))
        XCTAssertEqual(FreezeMath.applied(policy: .adaptive, frozen: true, step: 1, qat: q, flat: nil), .skip)
        XCTAssertEqual(FreezeMath.applied(policy: .alternate, frozen: false, step: 2, qat: q, flat: nil), .skip)
        XCTAssertEqual(FreezeMath.applied(policy: .alternate, frozen: false, step: 3, qat: q, flat: nil), .gradient(q))
    }

    func testManualFreezeForNStepsExpires() throws {
        let m = model()
        var c = try controller(.none, m)
        XCTAssertEqual(try c.freeze(Self.alternating, steps: 3), [Self.alternating])
        XCTAssertEqual(try c.freeze(Self.alternating, steps: 3), [Self.alternating], "idempotent")
        XCTAssertEqual(c.overrides.count, 1)
        let d = run(&c, m, steps: 1...5)
        XCTAssertEqual(d.map { $0.frozen[0] }, [true, true, true, false, false])
        XCTAssertEqual(d[0].applied[0], grad([-0.25]))
        XCTAssertTrue(c.overrides.isEmpty, "an expired override is dropped")

        // Until released; a glob addresses both factors; the newest matching override wins.
        XCTAssertEqual(try c.freeze("layer1.*"), [Self.alternating, Self.constant])
        try c.unfreeze("*.w.s", steps: 2)
        XCTAssertEqual(c.frozen, [true, false])
        _ = run(&c, m, steps: 6...7)
        XCTAssertEqual(c.frozen, [true, true])
        XCTAssertEqual(c.release("layer1.*"), 1)
        XCTAssertEqual(c.frozen, [false, false])

        XCTAssertThrowsError(try c.freeze("layer9.*")) { error in
            XCTAssertEqual(error as? FreezeError, .noMatchingFactor(pattern: "layer9.*", known: m.names))
            XCTAssertTrue("\(error)".contains("layer1.0.a.s"), "the message shows what names look like")
        }
        XCTAssertThrowsError(try c.freeze("layer1.*", steps: 0)) { XCTAssertEqual($0 as? FreezeError, .invalidStepCount(0)) }
        XCTAssertThrowsError(try c.freeze("layer[1")) { XCTAssertTrue($0 is NamePatternError) }
    }

    func testManualOverridesOnTopOfAdaptiveKeepPolicyState() throws {
        let m = model()
        var c = try controller(.adaptive, m)
        _ = run(&c, m, steps: 1...4)
        XCTAssertEqual(c.frozen, [false, true])
        try c.unfreeze(Self.constant)
        XCTAssertEqual(c.frozen, [false, false])
        XCTAssertEqual(c.policyFrozen, [false, true])
        c.release()
        XCTAssertEqual(c.frozen, [false, true])

        // Under freeze-both a manual freeze means "no update".
        var b = try controller(.freezeBoth, m)
        try b.freeze(Self.alternating, steps: 1)
        XCTAssertEqual(run(&b, m, steps: 1...1)[0].skipped, [Self.alternating])
    }

    func testControllerCodableRoundTripContinuesIdentically() throws {
        let m = model()
        var straight = try controller(.adaptive, K: 3, m)
        try straight.freeze(Self.alternating, steps: 4)
        let all = run(&straight, m, steps: 1...11)

        var first = try controller(.adaptive, K: 3, m)
        try first.freeze(Self.alternating, steps: 4)
        let head = run(&first, m, steps: 1...5)
        var second = try jsonRoundTrip(first)
        XCTAssertEqual(second, first)
        let tail = run(&second, m, steps: 6...11)
        XCTAssertEqual(head + tail, all)
        XCTAssertEqual(second, straight)
    }

    func testReconfigureWindowRestartsTheWindow() throws {
        let m = model()
        var c = try controller(.adaptive, K: 4, m)
        _ = run(&c, m, steps: 1...2)
        try c.reconfigure(FreezeSettings(policy: .adaptive, windowLength: 2, threshold: 0.5))
        let d = run(&c, m, steps: 3...4)
        XCTAssertEqual(d[1].completedWindow?.endStep, 2, "window steps count from the reconfiguration")
        XCTAssertEqual(c.frozen, [false, true])
        XCTAssertThrowsError(try c.reconfigure(FreezeSettings(policy: .adaptive, windowLength: 1))) {
            XCTAssertEqual($0 as? FreezeError, .invalidWindowLength(1))
        }
    }

    func testPolicyNames() throws {
        XCTAssertEqual(FreezePolicy.allCases.map(\.rawValue), ["none", "adaptive", "reverse", "freeze-both", "no-unfreeze", "alternate"])
        for p in FreezePolicy.allCases { XCTAssertEqual(try FreezePolicy(named: p.rawValue), p) }
        XCTAssertThrowsError(try FreezePolicy(named: "freeze_both")) { error in
            XCTAssertTrue("\(error)".contains("freeze-both"), "\(error)")
        }
    }
}
