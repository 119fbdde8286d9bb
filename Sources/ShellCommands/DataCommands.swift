// `data`: choose a built-in benchmark or a DomainBed folder, the held-out domains and the batch.
import Datasets
import Foundation
import ShellLanguage
import Training

extension ShellCommands {
    struct DataArguments: CommandArguments {
        @Positional(help: "style-fmnist | rotated-fmnist | rotated-mnist | folder", completion: .dynamic("benchmarks")) var source: String
        @Option(help: "held-out domain names (default: the last domain)", completion: .dynamic("domains")) var test: [String]?
        @Option(.int(1...4096), help: "images per training domain in each step") var batch = 32
        @Option(.int(min: 1), help: "images per domain (built-in: default 2500 for style-fmnist, all for rotated)") var per_domain: Int?
        @Option(.int(4...1024), help: "image side in pixels (built-in 28; folders 224 unless set)") var size: Int?
        @Option(.int(1...3), help: "image channels of built-in data (1 or 3)") var channels = 1
        @Option(.path, help: "folder: the data set folder; rotated-mnist: the folder with MNIST IDX files") var root: String?
        @Option(.int(min: 0), help: "seed that builds the built-in domains (default: the session seed)") var seed: Int?
    }

    static func dataCommand(_ s: Session) -> CommandSpec {
        CommandSpec(
            name: "data", summary: "load a multi-domain benchmark and choose the held-out (OOD) domains",
            discussion: """
            Built-in benchmarks come from Debian's Fashion-MNIST (real images, no download):
              style-fmnist    four renderings of disjoint image sets: clean, chalk, fog, noise (PACS-like style shift)
              rotated-fmnist  DomainBed's RotatedMNIST recipe on Fashion-MNIST: 0, 15, 30, 45, 60, 75 degrees
              rotated-mnist   the same on MNIST IDX files you have (root=folder)
            A DomainBed folder is `root/<Dataset>/<domain>/<class>/<image>` (PACS, office_home, domain_net or any
            folder of that shape): `data folder root=/data/PACS size=64`. Domains and classes are sorted by name.
            `test=` names the held-out domains (one for leave-one-domain-out; several for a group, such as
            DomainNet's [clipart, infograph]); every other domain trains. Each domain is split 80/20 into
            in/out with DomainBed's hashing of (trial seed, domain index).
            """,
            group: "data",
            arguments: DataArguments.self,
            examples: ["data style-fmnist test=fog", "data rotated-fmnist test=75 per_domain=2000 batch=64",
                       "data folder root=~/data/PACS test=sketch size=64"],
            run: { args, inv in
                let source = args.source
                let dataSeed = args.seed ?? s.settings.seed
                let dataset: DomainDataset
                let descriptor: DataDescriptor
                var cacheBytes = 0
                if source == "folder" || source.hasPrefix("/") || source.hasPrefix(".") || source.hasPrefix("~") {
                    // `root=` is a path argument (its `~` is expanded); a path given as the source is expanded here.
                    let root = args.root ?? HomePath.expand(source)
                    guard root != "folder" else { throw inv.error("`data folder` needs root=<folder laid out as domain/class/image>", argument: args.$root) }
                    var options = ImageFolderOptions()
                    if let size = args.size { options.imageSize = size }
                    dataset = try DomainBedFolders.load(folder: root, options: options)
                    descriptor = .folder(root, name: dataset.name, options: options)
                    cacheBytes = options.cacheBytes
                } else {
                    var options = BenchmarkOptions(seed: UInt64(dataSeed))
                    if let perDomain = args.per_domain { options.perDomain = perDomain }
                    if let size = args.size { options.imageSize = size }
                    options.channels = args.channels
                    if let root = args.root { options.sourceDirectory = root }
                    try checkBuiltinDataMemory(source: source, perDomain: options.perDomain, size: options.imageSize, channels: options.channels)
                    dataset = try Benchmarks.make(source, options: options)
                    descriptor = .builtin(source, options: options)
                }
                let testNames = args.test ?? [dataset.domainNames.last!]
                let env = try EnvironmentAssignment(testDomainNames: testNames, in: dataset)
                // A folder is only listed so far (images are decoded on demand): its steps' batches and the
                // decoded-image cache are what it will hold.
                try checkStepInputMemory(source: source, imageShape: dataset.imageShape, batch: args.batch,
                                         trainingDomains: env.trainingDomains.count, cacheBytes: cacheBytes)
                s.setData(dataset, choice: DataChoice(descriptor: descriptor, testDomains: testNames), environments: env)
                s.hyperparameters.batchPerDomain = args.batch
                inv.print(describeData(s))
                return dataValue(s)
            })
    }

    static func describeData(_ s: Session) -> String {
        guard let d = s.dataset, let e = s.environments else { return "no data loaded" }
        let splits = d.domainBedSplits(trialSeed: s.settings.trialSeed)
        var rows: [[String]] = []
        for (i, dom) in d.domains.enumerated() {
            rows.append([String(i), dom.name, e.testDomains.contains(i) ? "test (OOD)" : "train",
                         String(dom.count), String(splits[i].inIndices.count), String(splits[i].outIndices.count)])
        }
        let shape = d.imageShape.map(String.init).joined(separator: "×")
        var text = "\(d.name): \(d.domains.count) domains, \(d.classCount) classes, images \(shape), batch \(s.hyperparameters.batchPerDomain) per training domain\n"
        text += Render.table(["env", "domain", "role", "images", "in (80%)", "out (20%)"], rows)
        return text
    }

    static func dataValue(_ s: Session) -> Value {
        guard let d = s.dataset, let e = s.environments else { return .none }
        return .record(Record([
            ("name", .string(d.name)),
            ("domains", .list(d.domainNames.map { .string($0) })),
            ("test", .list(e.testDomains.map { .string(d.domainNames[$0]) })),
            ("train", .list(e.trainingDomains.map { .string(d.domainNames[$0]) })),
            ("classes", .int(d.classCount)),
            ("images", .int(d.totalCount)),
        ]))
    }
}
