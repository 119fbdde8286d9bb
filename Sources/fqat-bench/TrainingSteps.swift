// `erm`, `lsq`, `fqat`: whole training steps of ResNet-20 (1×28×28, 10 classes, Adam) through
// Optim.FQATStepper, the same object Training.Run drives:
//   erm   full precision, one forward+backward (GradientMethod.singlePass), Adam
//   lsq   4-bit LSQ in the paper's layout, one pass, Adam over weights and step sizes
//   fqat  the same quantized model, SAGM's two passes, the adaptive freeze policy, the trace on
// `eval`: forward only in eval mode (no caches), the full-precision and the LSQ model.
// `fqat` also measures the FQAT bookkeeping (freeze controller + gradient trace) against the step.
//
// The batch is synthetic (uniform [0, 1) pixels, uniform labels; scripts/bench_pytorch.py does the
// same), so data loading is not part of these numbers; `data` measures it separately.
import Foundation
import NN
import Optim
import Quant
import TensorCore

enum TrainingWorkload: String {
    case erm, lsq, fqat

    var quantized: Bool { self != .erm }
    /// Forward+backward passes per step.
    var passes: Int { self == .fqat ? 2 : 1 }
}

/// A network with the optimizer and stepper the workload needs.
struct TrainingSetup {
    let network: Network
    let weights: [Parameter]
    let scales: [Parameter]
    let optimizer: Adam
    let stepper: FQATStepper

    /// ResNet-20 on its synthetic 28×28 calibration batch unless a network and a batch are given.
    init(_ kind: TrainingWorkload, network: Network = makeResNet20(), calibrationBatch: Tensor? = nil,
         freezeWindow: Int = 100) {
        self.network = network
        if kind.quantized { quantize(network, calibrationBatch: calibrationBatch ?? syntheticBatch(64, seed: 3).images) }
        let all = network.parameters
        scales = all.filter { $0.kind == .scale }
        weights = all.filter { $0.kind != .scale }
        // As scripts/bench_pytorch.py: Adam, lr 1e-3, no weight decay (the step costs the same for any values).
        optimizer = Adam(weights: weights, scales: scales, learningRate: 1e-3, weightDecay: 0, scaleLearningRate: 1e-5)
        let method: GradientMethod = kind == .fqat ? .sagm(SAGM(rho: 0.05, alpha: 0.001)) : .singlePass
        let policy: FreezePolicy = kind == .fqat ? .adaptive : .none
        // Training.Run records the trace for every method; so do we.
        stepper = try! FQATStepper(weights: weights, scales: scales, method: method, optimizer: optimizer,
                                   freeze: FreezeSettings(policy: policy, windowLength: freezeWindow),
                                   traceRecentSteps: 2000)
    }
}

/// Forward and backward time accumulated inside the gradient closure.
final class PassTimer {
    var forward = 0.0
    var backward = 0.0
    func reset() { forward = 0; backward = 0 }
}

/// The closure FQATStepper calls per pass: what Training.Run.takeStep does, with timers.
func gradientClosure(_ network: Network, _ images: Tensor, _ labels: [Int], _ timer: PassTimer) -> (Int) throws -> Float {
    { pass in
        let t0 = now()
        let ctx = ForwardContext(training: true, updateRunningStats: pass == 1)
        let logits = network.forward(images, ctx)
        let (loss, gradient, _) = softmaxCrossEntropy(logits: logits, labels: labels)
        let t1 = now()
        _ = network.backward(gradient)
        timer.forward += t1 - t0
        timer.backward += now() - t1
        return loss
    }
}

extension Bench {
    func runTraining(_ kind: TrainingWorkload) {
        let setup = TrainingSetup(kind)
        let flopsPerImage = 3 * forwardFlopsPerImage(setup.network) * Double(kind.passes)
        let timer = PassTimer()
        for threads in plan.threadCounts {
            setThreads(threads)
            for batch in plan.trainingBatches {
                let (images, labels) = syntheticBatch(batch)
                let body = gradientClosure(setup.network, images, labels, timer)
                let steps = plan.steps(batch: batch)
                var failure: Error?
                func run() {
                    for _ in 0..<steps where failure == nil {
                        do { try setup.stepper.step(body) } catch { failure = error }
                    }
                }
                for _ in 0..<plan.warmup { run() }
                timer.reset()
                var samples: [Double] = []
                let cpu0 = processCPUTime()
                for _ in 0..<plan.repeats {
                    let t0 = now(); run(); samples.append((now() - t0) / Double(steps))
                }
                let cpu = processCPUTime() - cpu0
                if let failure {
                    FileHandle.standardError.write("fqat-bench: \(kind.rawValue) step failed at batch \(batch): \(failure)\n".data(using: .utf8)!)
                    setup.network.clearCache()
                    continue
                }
                let step = median(samples)
                let timedSteps = Double(steps * plan.repeats)
                let forward = timer.forward / timedSteps, backward = timer.backward / timedSteps
                let total = samples.reduce(0, +) / Double(plan.repeats)
                var extra: [String: Double] = [
                    "step_ms": step * 1e3, "forward_ms": forward * 1e3, "backward_ms": backward * 1e3,
                    "other_ms": max(0, total - forward - backward) * 1e3,
                    "cpu_ms_per_image": cpu / (timedSteps * Double(batch)) * 1e3,
                    "cpu_per_wall": cpu / (total * timedSteps),
                ]
                let stepCPU = cpu / timedSteps
                if batch == plan.convolutionBatch, let conv = convolutionCPUSeconds[threads] {
                    extra["conv_share"] = conv * Double(kind.passes) / stepCPU
                }
                stepCPUSeconds[referenceKey(kind.rawValue, batch, threads)] = stepCPU
                emit(Measurement(workload: kind.rawValue, detail: detail(kind), batch: batch, threads: threads,
                                 imagesPerSecond: Double(batch) / step, gflops: flopsPerImage * Double(batch) / step / 1e9,
                                 seconds: step, extra: extra))
            }
        }
    }

    private func detail(_ kind: TrainingWorkload) -> String {
        switch kind {
        case .erm: return "resnet20 fp32 adam"
        case .lsq: return "resnet20 lsq-4bit adam"
        case .fqat: return "resnet20 lsq-4bit sagm adaptive"
        }
    }

    /// The FQAT step rebuilt from FQATStepper.step's public parts (gradient passes, controller
    /// decision, optimizer, trace) so the controller and the trace can be timed on their own.
    /// A short freeze window (5 steps) makes windows close and factors freeze during the
    /// measurement, so the per-window work is included (an upper bound on the K = 100 default).
    func runFQATBookkeeping() {
        let window = quick ? 2 : 5
        let setup = TrainingSetup(.fqat)
        let names = setup.scales.map(\.name)
        let method = GradientMethod.sagm(SAGM(rho: 0.05, alpha: 0.001))
        let batch = plan.trainingBatches[0]
        let steps = quick ? 3 : 2 * window
        let timer = PassTimer()
        for threads in plan.threadCounts {
            setThreads(threads)
            var controller = try! FreezeController(settings: FreezeSettings(policy: .adaptive, windowLength: window), names: names)
            var trace = GradientTrace(factorNames: names, recentSteps: 2000)
            let (images, labels) = syntheticBatch(batch)
            let body = gradientClosure(setup.network, images, labels, timer)
            var whole = 0.0, controllerTime = 0.0, traceTime = 0.0, frozen = 0
            var failure: Error?
            for s in 0..<(steps + 1) where failure == nil {
                do {
                    let t0 = now()
                    let result = try method.computeGradients(weights: setup.weights, scales: setup.scales, body)
                    let t1 = now()
                    let decision = controller.decide(result.scales)
                    let skipped = decision.apply(to: setup.scales)
                    let t2 = now()
                    setup.optimizer.step(skipping: skipped)
                    let t3 = now()
                    trace.record(result: result, decision: decision, scaleValues: setup.scales.map(\.value))
                    let t4 = now()
                    if s == 0 { continue }  // warm-up
                    whole += t4 - t0
                    controllerTime += t2 - t1
                    traceTime += t4 - t3
                    frozen += decision.frozen.filter { $0 }.count
                } catch { failure = error }
            }
            if let failure {
                FileHandle.standardError.write("fqat-bench: FQAT bookkeeping step failed: \(failure)\n".data(using: .utf8)!)
                setup.network.clearCache()
                continue
            }
            let n = Double(steps)
            emit(Measurement(workload: "fqat", detail: "bookkeeping: controller+trace", batch: batch, threads: threads,
                             seconds: (controllerTime + traceTime) / n,
                             extra: ["share": (controllerTime + traceTime) / whole,
                                     "controller_us": controllerTime / n * 1e6, "trace_us": traceTime / n * 1e6,
                                     "step_ms": whole / n * 1e3, "factors": Double(names.count),
                                     "window": Double(window), "mean_frozen": Double(frozen) / n]))
        }
    }

    func runEvaluation() {
        let full = makeResNet20()
        let quantized = makeResNet20()
        quantize(quantized, calibrationBatch: syntheticBatch(64, seed: 3).images)
        let flopsPerImage = forwardFlopsPerImage(full)
        for (network, label) in [(full, "resnet20 fp32"), (quantized, "resnet20 lsq-4bit")] {
            for threads in plan.threadCounts {
                setThreads(threads)
                for batch in plan.evaluationBatches {
                    let (images, _) = syntheticBatch(batch)
                    let calls = quick ? 1 : max(1, 1024 / batch)
                    var samples: [Double] = []
                    for _ in 0..<plan.warmup { _ = network.forward(images, .eval) }
                    let cpu0 = processCPUTime()
                    for _ in 0..<plan.repeats {
                        let t0 = now()
                        for _ in 0..<calls { _ = network.forward(images, .eval) }
                        samples.append((now() - t0) / Double(calls))
                    }
                    let cpu = processCPUTime() - cpu0
                    let t = median(samples)
                    let imageCount = Double(calls * plan.repeats * batch)
                    emit(Measurement(workload: "eval", detail: label, batch: batch, threads: threads,
                                     imagesPerSecond: Double(batch) / t, gflops: flopsPerImage * Double(batch) / t / 1e9,
                                     seconds: t,
                                     extra: ["cpu_ms_per_image": cpu / imageCount * 1e3,
                                             "cpu_per_wall": cpu / (samples.reduce(0, +) * Double(calls))]))
                }
            }
        }
    }
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.isEmpty ? .nan : s[s.count / 2]
}
