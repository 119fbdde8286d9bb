// `ops`: where a ResNet-20 training step spends the time that is not convolution. Each kind of
// layer is run on exactly the shapes (and as many times) as in one training step at the
// convolution batch (64), forward then backward, on fresh layer objects:
//   batchnorm   19 BatchNorm2d in batch-statistics mode
//   relu        19 ReLU (stem, and two per block)
//   residual    9 residual adds (forward h += shortcut, backward dx += shortcut gradient) and the
//               2 zero-padding shortcuts
//   head        global average pool, fc, softmax cross-entropy
//   adam        one Adam update of every parameter (full precision; and the LSQ model with scales)
//   quantizer   the LSQ model's 19 activation and 18 weight quantizers
// `share` is the CPU time as a fraction of the CPU time of the measured erm (or lsq) step at the same
// batch and threads, when that workload ran in the same invocation; `sum` adds the convolutions.
// CPU time, not wall time: the parts are timed minutes apart from the step, and on a shared machine
// wall times drift with other processes' load while CPU times barely do.
import Foundation
import NN
import Optim
import Quant
import TensorCore

extension Bench {
    func runOperatorBreakdown() {
        let batch = plan.convolutionBatch
        let network = makeResNet20()
        let quantizedNetwork = makeResNet20()
        quantize(quantizedNetwork, calibrationBatch: syntheticBatch(64, seed: 3).images)
        var shapeByName: [String: [Int]] = [:]
        for row in network.describeLayers(inputShape: [1, 28, 28]) { if let s = row.outputShape { shapeByName[row.name] = s } }
        var rng = RNG(seed: 5)
        let training = ForwardContext(training: true)

        // (layer, input, output gradient) for each kind.
        var norms: [(BatchNorm2d, Tensor, Tensor)] = []
        var relus: [(ReLU, Tensor, Tensor)] = []
        var adds: [(Tensor, Tensor)] = []
        var shortcuts: [(ZeroPadShortcut, Tensor, Tensor)] = []
        for (name, module) in network.namedModules() {
            if let bn = module as? BatchNorm2d, let s = shapeByName[name] {
                let shape = [batch] + s
                norms.append((BatchNorm2d(name: "bench", channels: bn.channels), rng.normalTensor(shape), rng.normalTensor(shape)))
                // Every BatchNorm output goes through one ReLU (the second of a block after the add).
                relus.append((ReLU(), rng.normalTensor(shape), rng.normalTensor(shape)))
                if name.hasSuffix(".bn2") { adds.append((rng.normalTensor(shape), rng.normalTensor(shape))) }
            } else if let z = module as? ZeroPadShortcut, let s = shapeByName[name] {
                let input = [batch, z.inChannels, s[1] * z.stride, s[2] * z.stride]
                shortcuts.append((ZeroPadShortcut(inChannels: z.inChannels, outChannels: z.outChannels, stride: z.stride),
                                  rng.normalTensor(input), rng.normalTensor([batch] + s)))
            }
        }
        let features = rng.normalTensor([batch, 64, 7, 7])
        let labels = (0..<batch).map { _ in rng.int(below: 10) }
        let pool = GlobalAvgPool()
        var fcRNG = RNG(seed: 9)
        let fc = Linear(name: "fc", inFeatures: 64, outFeatures: 10, rng: &fcRNG)
        // Quantizers of the LSQ model with the inputs they see.
        let sites = Dictionary(uniqueKeysWithValues: convolutionSites(quantizedNetwork).map { ($0.conv.name, $0.inputShape) })
        var activationQuantizers: [(Quantizer, Tensor, Tensor)] = []
        var weightQuantizers: [(Quantizer, Tensor, Tensor)] = []
        for q in quantizers(in: quantizedNetwork) {
            if q.role == .activation, let s = sites[q.layerName] {
                // Post-ReLU inputs are non-negative; the stem's image too.
                var x = rng.uniformTensor([batch] + s, 0, 2)
                if q.range != .unsigned { x = rng.normalTensor([batch] + s) }
                activationQuantizers.append((q, x, rng.normalTensor([batch] + s)))
            } else if let w = q.weight {
                weightQuantizers.append((q, w.value, rng.normalTensor(w.shape)))
            }
        }
        func fillGradients(_ ps: [Parameter]) { for p in ps { p.grad = rng.normalTensor(p.shape, std: 1e-3) } }
        let fullParameters = network.parameters, quantizedParameters = quantizedNetwork.parameters
        fillGradients(fullParameters); fillGradients(quantizedParameters)
        let adamFull = Adam(parameters: fullParameters, learningRate: 1e-3)
        let qAll = quantizedParameters
        let adamQuantized = Adam(weights: qAll.filter { $0.kind != .scale }, scales: qAll.filter { $0.kind == .scale },
                                 learningRate: 1e-3, weightDecay: 0, scaleLearningRate: 1e-5)

        let repeats = quick ? 1 : 5
        for threads in plan.threadCounts {
            setThreads(threads)
            var kinds: [(String, String, Double, Double)] = []   // (detail, step it belongs to, wall, CPU seconds)
            func time(_ detail: String, step: String = "erm", _ body: () -> Void) {
                let t = medianTimes(repeats: repeats, warmup: 1, body)
                kinds.append((detail, step, t.wall, t.cpu))
            }
            time("batchnorm fwd+bwd x\(norms.count)") {
                for (bn, x, dy) in norms { _ = bn.forward(x, training); _ = bn.backward(dy) }
            }
            time("relu fwd+bwd x\(relus.count)") {
                for (r, x, dy) in relus { _ = r.forward(x, training); _ = r.backward(dy) }
            }
            time("residual add fwd+bwd x\(adds.count), shortcut x\(shortcuts.count)") {
                // In place, as the block does (its sum and its dx are buffers it owns): h += shortcut
                // forward, dx += shortcut gradient backward.
                for i in adds.indices { adds[i].0.add(adds[i].1); adds[i].0.add(adds[i].1) }
                for (z, x, dy) in shortcuts { _ = z.forward(x, training); _ = z.backward(dy) }
            }
            time("head: pool+fc+loss fwd+bwd") {
                let pooled = pool.forward(features, training)
                let logits = fc.forward(pooled, training)
                let (_, g, _) = softmaxCrossEntropy(logits: logits, labels: labels)
                _ = pool.backward(fc.backward(g))
            }
            time("adam step (\(fullParameters.count) tensors)") { adamFull.step() }
            time("activation quantizers fwd+bwd x\(activationQuantizers.count)", step: "lsq") {
                for (q, x, dy) in activationQuantizers { _ = q.forward(x, training); _ = q.backward(dy) }
            }
            time("weight quantizers fwd+bwd x\(weightQuantizers.count)", step: "lsq") {
                for (q, w, dy) in weightQuantizers { _ = q.forward(w, training); _ = q.backward(dy) }
            }
            time("adam step lsq (\(qAll.count) tensors)", step: "lsq") { adamQuantized.step() }
            for (detail, step, seconds, cpu) in kinds {
                var extra: [String: Double] = ["cpu_ms": cpu * 1e3]
                if let s = stepCPUSeconds[referenceKey(step, batch, threads)] { extra["share_of_\(step)_step"] = cpu / s }
                emit(Measurement(workload: "ops", detail: detail, batch: batch, threads: threads, seconds: seconds, extra: extra))
            }
            // What the listed parts add up to against the measured steps.
            guard let conv = convolutionCPUSeconds[threads] else { continue }
            func total(_ parts: [(String, String, Double, Double)]) -> Double { parts.reduce(0) { $0 + $1.3 } }
            let shared = total(kinds.filter { $0.1 == "erm" && !$0.0.hasPrefix("adam") })
            let sums = [("erm", conv + total(kinds.filter { $0.1 == "erm" })),
                        ("lsq", conv + shared + total(kinds.filter { $0.1 == "lsq" }))]
            for (step, parts) in sums {
                var extra: [String: Double] = [:]
                if let s = stepCPUSeconds[referenceKey(step, batch, threads)] {
                    extra["share_of_\(step)_step"] = parts / s
                    extra["unaccounted_cpu_ms"] = (s - parts) * 1e3
                }
                extra["cpu_ms"] = parts * 1e3
                emit(Measurement(workload: "ops", detail: "sum: conv + listed (\(step))", batch: batch, threads: threads,
                                 extra: extra))
            }
        }
    }
}
