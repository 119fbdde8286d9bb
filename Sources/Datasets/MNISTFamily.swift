// Fashion-MNIST (Debian's dataset-fashion-mnist) and MNIST (a user folder) as 70,000 images:
// the 60,000 training images followed by the 10,000 test images, as DomainBed's MNIST recipe
// concatenates them (docs/data.md §4). Decoded sets are cached per process and folder, so
// building several benchmarks costs one gunzip.
import Foundation
import Synchronization

public enum MNISTFamily {
    /// Where Debian's `dataset-fashion-mnist` package installs the gzip IDX files.
    public static let fashionMNISTDirectory = "/usr/share/datasets/fashion-mnist"

    /// Fashion-MNIST class names, label order (Xiao et al. 2017).
    public static let fashionClassNames = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    /// MNIST class names: the digits.
    public static let digitClassNames = (0..<10).map(String.init)

    /// The four standard file stems; each may be stored raw or with a `.gz` suffix.
    static let trainImages = "train-images-idx3-ubyte"
    static let trainLabels = "train-labels-idx1-ubyte"
    static let testImages = "t10k-images-idx3-ubyte"
    static let testLabels = "t10k-labels-idx1-ubyte"

    /// Loaded sets by standardized folder path.
    private static let cache = Mutex<[String: IDXImageSet]>([:])

    /// Fashion-MNIST train+test (70,000 28×28 images), from `directory`.
    public static func fashionMNIST(directory: String = fashionMNISTDirectory) throws -> IDXImageSet {
        try load(directory: directory, dataset: "Fashion-MNIST",
                 remedy: directory == fashionMNISTDirectory
                    ? "install it with `apt-get install dataset-fashion-mnist`"
                    : "put train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz there (or `apt-get install dataset-fashion-mnist` for \(fashionMNISTDirectory))")
    }

    /// MNIST train+test (70,000 images) from a folder holding the four IDX files (raw or .gz),
    /// directly or in torchvision's `MNIST/raw/` subfolder.
    public static func mnist(directory: String) throws -> IDXImageSet {
        let candidates = [directory, (directory as NSString).appendingPathComponent("MNIST/raw"),
                          (directory as NSString).appendingPathComponent("raw")]
        let found = candidates.first { locate(trainImages, in: $0) != nil } ?? directory
        return try load(directory: found, dataset: "MNIST",
                        remedy: "download the four MNIST IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) into that folder")
    }

    /// Drops every cached set (tests use it to measure a cold load).
    public static func clearCache() {
        cache.withLock { $0.removeAll() }
    }

    /// Loads train then test from `directory`, cached by the folder's standardized path.
    static func load(directory: String, dataset: String, remedy: String) throws -> IDXImageSet {
        let key = (directory as NSString).standardizingPath
        if let hit = cache.withLock({ $0[key] }) { return hit }

        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: key, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw DatasetError.datasetMissing(dataset: dataset, path: directory, remedy: remedy)
        }
        func need(_ stem: String) throws -> String {
            guard let path = locate(stem, in: key) else {
                throw DatasetError.datasetMissing(dataset: dataset, path: (key as NSString).appendingPathComponent(stem + ".gz"), remedy: remedy)
            }
            return path
        }
        let paths = try [trainImages, trainLabels, testImages, testLabels].map(need)
        // The two halves are independent files: gunzip them concurrently (2 cores here).
        let results = Mutex<[Result<IDXImageSet, Error>]>(Array(repeating: .failure(DatasetError.samplerMismatch(reason: "")), count: 2))
        DispatchQueue.concurrentPerform(iterations: 2) { half in
            let result = Result { try IDXImageSet.read(images: paths[2 * half], labels: paths[2 * half + 1]) }
            results.withLock { $0[half] = result }
        }
        let halves = results.withLock { $0 }
        var set = try halves[0].get()
        let test = try halves[1].get()
        guard test.rows == set.rows && test.columns == set.columns else {
            throw DatasetError.mismatchedIDXFiles(images: paths[0], labels: paths[2],
                                                  reason: "training images are \(set.rows)x\(set.columns), test images \(test.rows)x\(test.columns)")
        }
        set.append(test)
        cache.withLock { $0[key] = set }
        return set
    }

    /// `stem.gz` or `stem` inside `directory`, whichever exists (gzip preferred).
    static func locate(_ stem: String, in directory: String) -> String? {
        for name in [stem + ".gz", stem] {
            let path = (directory as NSString).appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: path) { return path }
        }
        return nil
    }
}
