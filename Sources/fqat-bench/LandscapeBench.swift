// `landscape`: loss-surface throughput of a 21×21 plane (α, β ∈ [−1, 1], filter-normalised random
// directions on the weights, step sizes fixed: FQAT Fig. 1) through the 4-bit LSQ ResNet-20,
// each point evaluated on 1000 images (4 eval-mode batches of 250, as the shell's `landscape`
// command batches them) via Landscape.compute without a cache.
//
// The whole grid is 441 × 1000 forward images; the workload evaluates the first points only
// (stopping through `shouldStop`) and reports points/s, the time the full grid would take at that
// rate, and the share of the time spent outside the evaluation (setting θ + αd₁ + βd₂, restoring).
// The one-off direction generation is inside the measured time, spread over the evaluated points.
import Foundation
import Landscape
import NN
import TensorCore

extension Bench {
    func runLandscape() {
        let images = quick ? 100 : 1000
        let batchSize = quick ? 50 : 250
        let points = quick ? 2 : 10
        let network = makeResNet20()
        quantize(network, calibrationBatch: syntheticBatch(64, seed: 3).images)
        let batches = stride(from: 0, to: images, by: batchSize).map { start in
            syntheticBatch(min(batchSize, images - start), seed: UInt64(100 + start))
        }
        let axis = try! GridAxis(-1, 1, count: 21)
        for threads in plan.threadCounts {
            setThreads(threads)
            let request = LandscapeRequest.plane(x: axis, y: axis, directions: DirectionOptions(seed: 0, target: .weights),
                                                 evaluation: "fqat-bench synthetic \(images) images", model: "resnet20 lsq-4bit")
            var evaluated = 0
            do {
                let result = try Landscape.compute(model: network, request: request, cache: nil,
                                                   shouldStop: { evaluated >= points }) {
                    evaluated += 1
                    var lossSum = 0.0, correct = 0, count = 0
                    for (x, labels) in batches {
                        let logits = network.forward(x, .eval)
                        let (loss, _, c) = softmaxCrossEntropy(logits: logits, labels: labels)
                        lossSum += Double(loss) * Double(labels.count); correct += c; count += labels.count
                    }
                    return (lossSum / Double(count), 100 * Double(correct) / Double(count))
                }
                let pps = result.pointsPerSecond
                emit(Measurement(workload: "landscape", detail: "21x21 plane, \(images) images, lsq-4bit", batch: batchSize,
                                 threads: threads, imagesPerSecond: pps * Double(images), seconds: result.seconds / Double(max(1, result.evaluatedPoints)),
                                 extra: ["points_per_second": pps, "points": Double(result.evaluatedPoints),
                                         "grid_minutes": Double(request.totalPoints) / pps / 60,
                                         "overhead_share": result.overheadSeconds / max(result.seconds, 1e-12)]))
            } catch {
                FileHandle.standardError.write("fqat-bench: landscape failed: \(error)\n".data(using: .utf8)!)
            }
        }
    }
}
