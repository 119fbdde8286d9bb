// `landscape`: filter-normalised loss landscapes (Li et al. 2018) through the model as it is — the
// fake-quantized model when quantizers are attached — on I.D and/or OOD data, cached by content.
import Datasets
import Foundation
import Landscape
import NN
import Plot
import Quant
import ShellLanguage
import TensorCore
import Training

extension ShellCommands {
    struct LandscapeArguments: CommandArguments {
        enum Kind: String, ChoiceArgument { case plane, line, interpolate }
        enum Split: String, ChoiceArgument { case id, ood, both }
        enum Style: String, ChoiceArgument { case contour, surface, heatmap }
        enum ZRange: String, ChoiceArgument { case quantized, panel, shared }
        enum ZScale: String, ChoiceArgument { case linear, log }
        @Positional(help: "2-D plane, 1-D line, or the line to another model") var kind = Kind.plane
        @Option(help: "α grid min:max:count") var x = "-1:1:21"
        @Option(help: "β grid min:max:count (plane)") var y = "-1:1:21"
        @Option(help: "what moves") var target = PerturbationTarget.weights
        @Option(help: "how scale factors move (see docs/landscape.md)") var scales = ScaleDirection.authors
        @Option(help: "data the loss is measured on") var split = Split.ood
        @Option(.int(min: 1), help: "images per split") var images = 1000
        @Option(.int(min: 0), help: "direction seed") var seed = 0
        @Option(.list(.path), help: "saved models to compare side by side (default: the current model)") var models: [String]?
        @Option(.path, help: "interpolate: the other model's file") var to: String?
        @Option(help: "2-D drawing") var style = Style.contour
        @Option(.number(min: 0), help: "clip the loss at this value in surface plots") var zmax: Double?
        @Option(help: "surface z ranges: quantized models share one, FP its own; each its own; one for all") var zrange = ZRange.quantized
        @Option(help: "surface z axis: linear or logarithmic") var zscale = ZScale.linear
        @Option(help: "surface: labelled contour lines on the base plane") var contours = true
        @Option(help: "file name stem of the figure") var name: String?
        @Option(help: "override the plot setting") var format: PlotSetting?
    }

    static func landscapeCommand(_ s: Session) -> CommandSpec {
        CommandSpec(
            name: "landscape", summary: "loss landscape of the (quantized) model: 1-D line, 2-D plane, or the line between two models",
            discussion: """
            Directions are Gaussian, drawn from `seed`, filter-normalised against the weights (biases and
            BatchNorm parameters not moved), as in Li et al. 2018 and the FQAT authors' scripts. The model is
            evaluated through its quantizers: `target=weights` moves the latent weights with the scale factors
            fixed (as the authors did), `scales` moves only scale factors, `both` moves both.
            `split=id` uses the training domains' out splits (train-domain validation), `ood` the held-out
            domains' in splits, `both` each in turn; `images` caps the images per split (spread over domains).
            `models=[a.safetensors, b.safetensors]` computes the same surface for each saved model and draws
            them side by side (LSQ+SAGM against FQAT). `line` to=<model> draws the line from the
            current model to another. Surfaces are cached under <out>/cache/landscape by a hash of every
            tensor, the directions, the grid and the data, so a changed model never reuses a stale surface;
            an interrupted surface resumes. The flatness table gives, per radius in direction units, the
            largest and mean loss increase over the centre and the share of points whose accuracy stays
            within 1 point; each panel of a plane figure prints its own numbers under its title.
            Surface plots: `zrange=quantized` (default) puts the quantized models on one z range and
            full-precision models on another (an FP model's corners can be hundreds of times higher, which
            would flatten the quantized surfaces), `panel` gives each panel its own, `shared` one range for
            all. `zscale=log` draws the loss on a logarithmic z axis (tics in loss units); `contours`
            (default on) projects labelled contour lines of the loss onto the base plane.
            """,
            group: "plots",
            arguments: LandscapeArguments.self,
            examples: ["landscape plane x=-1:1:21 y=-1:1:21 split=ood", "landscape line x=-1:1:41 split=both",
                       "landscape plane models=[runs/lsq-sagm.safetensors, runs/fqat.safetensors] images=500",
                       "landscape plane models=[runs/fp.safetensors, runs/fqat.safetensors] style=surface zscale=log",
                       "landscape interpolate to=runs/fqat.safetensors"],
            run: { args, inv in try landscape(args, inv, s) })
    }

    /// The evaluation images of a split, fixed once: the first images of each domain's split in
    /// order, `images` in all, spread evenly over the domains.
    /// `stop` is polled per batch (Ctrl-C); when it answers true this throws `LandscapeStopRequested`.
    static func landscapeBatches(_ s: Session, split: String, images: Int, stop: () -> Bool = { false }) throws -> [LabeledBatch] {
        let (dataset, env) = try s.requireData()
        let splits = dataset.domainBedSplits(trialSeed: s.settings.trialSeed)
        let sets: [EvaluationSet] = split == "id"
            ? env.trainingDomains.map { EvaluationSet(domain: $0, part: .out, indices: splits[$0].outIndices) }
            : env.testDomains.map { EvaluationSet(domain: $0, part: .in, indices: splits[$0].inIndices) }
        let per = max(1, images / max(sets.count, 1))
        // The images are held for the whole grid; a folder's are otherwise never all in memory (C7).
        try checkLandscapeImageMemory(images: sets.reduce(0) { $0 + min(per, $1.indices.count) }, imageShape: dataset.imageShape)
        var batches: [LabeledBatch] = []
        for set in sets {
            var sub = set
            sub.indices = Array(set.indices.prefix(per))
            var it = sub.batches(of: dataset, batchSize: 250)
            while let b = try it.next() {
                if stop() { throw LandscapeStopRequested() }
                batches.append(b)
            }
        }
        return batches
    }

    static func landscape(_ args: LandscapeArguments, _ inv: Invocation, _ s: Session) throws -> Value {
        let current = try s.requireNetwork()
        let kind = args.kind
        let splits = args.split == .both ? ["id", "ood"] : [args.split.rawValue]
        let x = try GridAxis(parsing: args.x)
        let y = kind == .plane ? try GridAxis(parsing: args.y) : nil
        if let y, x.count * y.count > 100_000 {
            throw inv.error("a plane of \(x.count)×\(y.count) = \(x.count * y.count) points is more than 100000 evaluations; use fewer points per axis (the papers' 51×51 is 2601)", argument: args.$x)
        }
        let options = DirectionOptions(seed: UInt64(args.seed), target: args.target, scales: args.scales)
        var models: [(label: String, network: Network, description: String, quantized: Bool)] = []
        if let paths = args.models {
            for path in paths {
                let loaded = try ModelFile.load(path, seed: UInt64(s.settings.seed))
                let (net, label) = (loaded.network, loaded.label)
                models.append(((path as NSString).lastPathComponent.replacingOccurrences(of: ".safetensors", with: ""), net,
                               "\(net.architecture) \(label ?? "FP") \(path)", label != nil))
            }
        } else {
            models.append((s.runLabel ?? (s.isQuantized ? "quantized" : "full precision"), current,
                           "\(current.architecture) \(s.quantization.map(quantLabel) ?? "FP")", s.isQuantized))
        }
        var endpoint: [String: Tensor]?
        if kind == .interpolate {
            guard let to = args.to else { throw inv.error("interpolate needs to=<saved model file>", argument: args.$to) }
            endpoint = try ModelFile.load(to, seed: UInt64(s.settings.seed)).network.stateDict()
        }
        let cache = LandscapeCache(directory: URL(fileURLWithPath: s.landscapeCache))
        var surfaces: [(label: String, split: String, surface: LandscapeSurface, quantized: Bool)] = []
        // Ctrl-C is honoured between batches, inside a point as well as between points (issue 17, C6): a
        // point of a large evaluation set can take minutes. The points finished before it are cached.
        func interrupted(after done: Int, of total: Int) -> Interrupted {
            inv.print(done > 0
                ? "landscape interrupted after \(done) of \(total) points; those are kept in the cache and the same command resumes from them"
                : "landscape interrupted before its first point finished; nothing was computed for this surface")
            return Interrupted()
        }
        for split in splits {
            let batches: [LabeledBatch]
            do {
                batches = try landscapeBatches(s, split: split, images: args.images, stop: { inv.interrupt.isRequested })
            } catch is LandscapeStopRequested {
                throw interrupted(after: 0, of: x.count * (y?.count ?? 1))
            }
            let imageCount = batches.reduce(0) { $0 + $1.labels.count }
            let evalDescription = "\(s.dataset!.name) \(split) trial \(s.settings.trialSeed) images \(imageCount) test \(s.environments!.testDomains)"
            for m in models {
                let request: LandscapeRequest
                switch kind {
                case .plane: request = .plane(x: x, y: y!, directions: options, evaluation: evalDescription, model: m.description)
                case .line: request = .line(x, directions: options, evaluation: evalDescription, model: m.description)
                case .interpolate: request = .interpolation(x, evaluation: evalDescription, model: m.description)
                }
                let total = x.count * (y?.count ?? 1)
                let progress = Progress(mode: Progress.mode(setting: s.settings.progress), total: total, label: "landscape \(m.label) \(split)") {
                    inv.output.write($0, to: .standard)
                }
                let net = m.network
                let result = try Landscape.compute(model: net, request: request, endpoint: endpoint, cache: cache,
                                                   progress: { p in progress.update(p.done, "loss \(Render.number(p.loss, "%.3f"))") },
                                                   shouldStop: { inv.interrupt.isRequested }) {
                    var lossSum = 0.0, correct = 0, count = 0
                    for b in batches {
                        if inv.interrupt.isRequested { throw LandscapeStopRequested() }
                        let logits = net.forward(b.images, .eval)
                        let (loss, _, c) = softmaxCrossEntropy(logits: logits, labels: b.labels)
                        lossSum += Double(loss) * Double(b.labels.count); correct += c; count += b.labels.count
                    }
                    return (lossSum / Double(max(count, 1)), 100 * Double(correct) / Double(max(count, 1)))
                }
                progress.finish()
                if !result.completed { throw interrupted(after: result.surface.completedPoints, of: total) }
                inv.print("landscape \(m.label) on \(split): \(total) points, " + (result.cacheHit ? "from cache" : "\(result.evaluatedPoints) evaluated in \(Render.duration(result.seconds)) (\(Render.number(result.pointsPerSecond, "%.2f")) points/s)") + " on \(imageCount) images")
                let dir = (s.settings.out as NSString).appendingPathComponent("plots")
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                let csv = (dir as NSString).appendingPathComponent(fileNameSafe("landscape-\(kind.rawValue)-\(m.label)-\(split)") + ".csv")
                try result.surface.writeCSV(to: URL(fileURLWithPath: csv))
                surfaces.append((m.label, split, result.surface, m.quantized))
            }
        }
        // Flatness table: numbers to compare methods, not only pictures.
        let rows = try surfaces.map { (label: "\($0.label) \($0.split)", report: try $0.surface.flatness()) }
        inv.print(FlatnessReport.table(rows))
        // Figure: all surfaces side by side.
        let specs: [any PlotSpec]
        if kind == .plane {
            var grids: [any PlotSpec] = []
            let style = args.style
            var surfacePlots: [SurfacePlot] = []
            for (sf, row) in zip(surfaces, rows) {
                let grid = Grid(x: sf.surface.alphas, y: sf.surface.betas ?? [0], z: sf.surface.loss)
                let title = "\(sf.label) (\(sf.split.uppercased()))"
                let caption = row.report.caption
                switch style {
                case .surface: surfacePlots.append(SurfacePlot(title: title, grid: grid, zMax: args.zmax,
                                                               logAxis: args.zscale == .log,
                                                               contours: args.contours, caption: caption))
                case .heatmap: grids.append(HeatmapPlot(title: title, grid: grid, caption: caption))
                case .contour: grids.append(ContourPlot(title: title, grid: grid, caption: caption))
                }
            }
            switch (style, args.zrange) {
            case (.surface, .panel): specs = surfacePlots.map { $0.withOwnZRange() }
            case (.surface, .shared): specs = SurfacePlot.sharingZRange(surfacePlots)
            case (.surface, .quantized): specs = SurfacePlot.sharingZRange(surfacePlots, groups: surfaces.map(\.quantized))
            default: specs = grids
            }
        } else {
            let curves = surfaces.map { LandscapeCurve(name: "\($0.label) \($0.split.uppercased())", loss: $0.surface.loss[0], accuracy: $0.surface.accuracy[0]) }
            specs = [Landscape1DPlot(title: kind == .line ? "Loss along a filter-normalised direction" : "Loss between two models",
                                     alphas: surfaces[0].surface.alphas, curves: curves,
                                     xLabel: kind == .interpolate ? "α (0 = current model, 1 = \(((args.to ?? "") as NSString).lastPathComponent))" : "α")]
        }
        var figureTitle = "Loss landscapes (\(args.target.rawValue) perturbed)"
        if kind == .plane && args.style == .surface && specs.count > 1 {
            switch args.zrange {
            case .panel: figureTitle += "; each panel on its own z range"
            case .shared: figureTitle += "; one z range for all panels"
            case .quantized:
                if Set(surfaces.map(\.quantized)).count > 1 { figureTitle += "; quantized models share one z range, FP its own" }
            }
        }
        let figure: any PlotSpec = specs.count == 1 ? specs[0] : Figure(title: figureTitle, columns: min(specs.count, 3), specs: specs)
        let name = args.name ?? "landscape-\(kind.rawValue)-\(surfaces.map(\.label).joined(separator: "-"))"
        _ = try draw(figure, name: name, inv, s, format: args.format)
        return .list(zip(rows, surfaces).map { row, sf in
            let r = row.report
            var fields: [(String, Value)] = [("label", .string(sf.label)), ("split", .string(sf.split)), ("centre_loss", .number(r.centreLoss))]
            for radius in r.radii { fields.append(("max_increase_r\(Value.format(radius.radius))", .number(radius.maximumLossIncrease))) }
            return .record(Record(fields))
        })
    }
}
