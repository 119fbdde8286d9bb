import XCTest
@testable import Datasets
import TensorCore

final class ImageFolderTests: XCTestCase {
    /// <root>/office_home/{Art, Real World, Clipart}/{dog, cat}/…, PNG and BMP files, one nested folder.
    func makeTree(_ folder: TemporaryFolder) {
        let red = ImageEncoders.png(width: 6, height: 4, channels: 3, pixels: ImageEncoders.solid(width: 6, height: 4, 255, 0, 0))
        let grey = ImageEncoders.png(width: 5, height: 5, channels: 1, pixels: [UInt8](repeating: 128, count: 25))
        let blue = ImageEncoders.bmp(width: 3, height: 7, rgb: ImageEncoders.solid(width: 3, height: 7, 0, 0, 255))
        for domain in ["Art", "Real World", "Clipart"] {
            folder.write("office_home/\(domain)/dog/b.png", red)
            folder.write("office_home/\(domain)/dog/a.bmp", blue)
            folder.write("office_home/\(domain)/dog/sub/c.png", grey)
            folder.write("office_home/\(domain)/dog/notes.txt", Array("not an image".utf8))
            folder.write("office_home/\(domain)/cat/z.PNG", grey)
        }
        folder.write("office_home/Art/cat/.hidden.png", [1, 2, 3])
    }

    func testReadsDomainBedLayoutInPythonSortedOrder() throws {
        let folder = TemporaryFolder("office")
        defer { folder.remove() }
        makeTree(folder)
        let data = try DomainBedFolders.load(root: folder.path, dataset: "OfficeHome",
                                             options: ImageFolderOptions(imageSize: 8, normalization: nil))
        XCTAssertEqual(data.domainNames, ["Art", "Clipart", "Real World"])
        XCTAssertEqual(data.classNames, ["cat", "dog"])
        XCTAssertEqual(data.imageShape, [3, 8, 8])
        XCTAssertEqual(data.domains[2].labels, [0, 1, 1, 1])
        guard case .files(let store) = data.domains[2].images else { return XCTFail("folder domains are lazy") }
        // Files sorted by name within a folder, sub-folders after (torchvision make_dataset order).
        XCTAssertEqual(store.paths.map { ($0 as NSString).lastPathComponent }, ["z.PNG", "a.bmp", "b.png", "c.png"])
        XCTAssertEqual(try data.domainIndex(named: "Real World"), 2)

        // Evaluation batch: solid colours stay solid after the resize; values are in [0, 1].
        let batch = try data.batch(domain: 2, indices: [1, 2, 0])
        XCTAssertEqual(batch.images.shape, [3, 3, 8, 8])
        XCTAssertEqual(batch.labels, [1, 1, 0])
        let plane = 64
        XCTAssertEqual(batch.images.data[0..<plane].max()!, 0, accuracy: 1e-6)               // blue: R = 0
        XCTAssertEqual(batch.images.data[(2 * plane)..<(3 * plane)].min()!, 1, accuracy: 1e-6) // blue: B = 1
        XCTAssertEqual(batch.images.data[(3 * plane)..<(4 * plane)].min()!, 1, accuracy: 1e-6) // red: R = 1
        XCTAssertEqual(batch.images.data[6 * plane], 128 / 255, accuracy: 1e-6)                 // grey
    }

    func testImageNetNormalisationAndDecodedPixels() throws {
        let folder = TemporaryFolder("norm")
        defer { folder.remove() }
        makeTree(folder)
        let data = try DomainBedFolders.load(folder: folder.file("office_home"), options: ImageFolderOptions(imageSize: 4))
        let batch = try data.batch(domain: 0, indices: [2])   // red PNG
        let n = Normalization.imageNet
        XCTAssertEqual(batch.images.data[0], (1 - n.mean[0]) / n.std[0], accuracy: 1e-5)
        XCTAssertEqual(batch.images.data[16], (0 - n.mean[1]) / n.std[1], accuracy: 1e-5)
        // stb decodes our PNG and BMP losslessly.
        let noise = ImageEncoders.noise(width: 9, height: 5, seed: 4)
        folder.write("noise.png", ImageEncoders.png(width: 9, height: 5, channels: 3, pixels: noise))
        folder.write("noise.bmp", ImageEncoders.bmp(width: 9, height: 5, rgb: noise))
        for name in ["noise.png", "noise.bmp"] {
            let image = try ImageDecoder.decode(path: folder.file(name))
            XCTAssertEqual(image.width, 9)
            XCTAssertEqual(image.height, 5)
            XCTAssertEqual(image.pixels, noise, name)
        }
    }

    /// A real baseline JPEG written by Pillow/libjpeg: stb's decoding agrees with libjpeg's within a
    /// few levels (the decoders' IDCT and chroma upsampling differ): mean |Δ| < 2, max |Δ| ≤ 24.
    func testDecodesJPEGLikeLibjpeg() throws {
        let image = try ImageDecoder.decode(bytes: bytes(hex: PillowFixture.jpeg32x24), path: "fixture.jpg")
        XCTAssertEqual(image.width, 32)
        XCTAssertEqual(image.height, 24)
        let reference = bytes(hex: PillowFixture.jpeg32x24Decoded)
        let differences = zip(image.pixels, reference).map { abs(Int($0) - Int($1)) }
        let mean = Double(differences.reduce(0, +)) / Double(differences.count)
        XCTAssertLessThan(mean, 2, "mean difference \(mean)")
        XCTAssertLessThanOrEqual(differences.max()!, 24, "max difference \(differences.max()!)")

        let folder = TemporaryFolder("jpeg")
        defer { folder.remove() }
        folder.write("PACS/photo/dog/pic.jpg", bytes(hex: PillowFixture.jpeg32x24))
        let data = try DomainBedFolders.load(root: folder.path, dataset: "pacs", options: ImageFolderOptions(imageSize: 16))
        XCTAssertEqual(try data.batch(domain: 0, indices: [0]).images.shape, [1, 3, 16, 16])
    }

    func testTrainingAugmentationIsSeededAndVaries() throws {
        let folder = TemporaryFolder("augment")
        defer { folder.remove() }
        for i in 0..<4 {
            folder.write("data/photo/thing/\(i).png",
                         ImageEncoders.png(width: 40, height: 30, channels: 3, pixels: ImageEncoders.noise(width: 40, height: 30, seed: UInt64(i))))
        }
        let data = try DomainBedFolders.load(folder: folder.file("data"), options: ImageFolderOptions(imageSize: 16))
        var r1 = RNG(seed: 9), r2 = RNG(seed: 9), r3 = RNG(seed: 10)
        let a = try data.batch(domain: 0, indices: [0, 1, 2, 3, 0], augment: true, rng: &r1)
        let b = try data.batch(domain: 0, indices: [0, 1, 2, 3, 0], augment: true, rng: &r2)
        let c = try data.batch(domain: 0, indices: [0, 1, 2, 3, 0], augment: true, rng: &r3)
        XCTAssertEqual(a.images, b.images, "same RNG, same augmented batch (also across threads)")
        XCTAssertNotEqual(a.images, c.images)
        let size = 3 * 16 * 16
        XCTAssertNotEqual(Array(a.images.data[0..<size]), Array(a.images.data[(4 * size)..<(5 * size)]),
                          "the same image drawn twice is augmented differently")
        let plain = try data.batch(domain: 0, indices: [0])
        XCTAssertNotEqual(Array(a.images.data[0..<size]), plain.images.data)
        XCTAssertTrue(a.images.isFinite)
    }

    func testRandomResizedCropFollowsTorchvisionBounds() {
        var rng = RNG(seed: 1)
        for _ in 0..<500 {
            let box = Augmentation.randomResizedCropBox(width: 227, height: 200, scale: [0.7, 1], ratio: [0.75, 4.0 / 3.0], rng: &rng)
            XCTAssertGreaterThanOrEqual(box.top, 0)
            XCTAssertGreaterThanOrEqual(box.left, 0)
            XCTAssertLessThanOrEqual(box.top + box.height, 200)
            XCTAssertLessThanOrEqual(box.left + box.width, 227)
            let area = Double(box.width * box.height) / Double(227 * 200)
            XCTAssertGreaterThan(area, 0.68)
        }
        // Impossible ratios fall back to the centre crop clamped to the ratio range.
        let fallback = Augmentation.randomResizedCropBox(width: 100, height: 10, scale: [0.99, 1], ratio: [1, 1], rng: &rng)
        XCTAssertEqual(fallback, CropBox(top: 0, left: 45, height: 10, width: 10))
    }

    func testColorAdjustmentsOnKnownPixels() {
        var image: [Float] = [1, 0, 0, 0.2, 0.4, 0.6]
        Augmentation.adjustHue(&image, 1.0 / 3.0)   // red → green
        XCTAssertEqual(image[0], 0, accuracy: 1e-5)
        XCTAssertEqual(image[1], 1, accuracy: 1e-5)
        XCTAssertEqual(image[2], 0, accuracy: 1e-5)
        var grey: [Float] = [0.3, 0.3, 0.3]
        Augmentation.adjustSaturation(&grey, 1.3)
        XCTAssertEqual(grey, [0.3, 0.3, 0.3])
        var bright: [Float] = [0.5, 0.9, 0.1]
        Augmentation.adjustBrightness(&bright, 1.3)
        XCTAssertEqual(bright[0], 0.65, accuracy: 1e-6)
        XCTAssertEqual(bright[1], 1)
        var flat: [Float] = [0.2, 0.2, 0.2, 0.6, 0.6, 0.6]
        Augmentation.adjustContrast(&flat, 0)   // factor 0: every pixel becomes the (byte-rounded) mean grey
        XCTAssertEqual(flat[0], 102 / 255, accuracy: 1e-6)
        XCTAssertEqual(flat[5], 102 / 255, accuracy: 1e-6)
    }

    /// The closed-form hue rotation against a textbook HSV round trip in Double (sector switch).
    func testHueRotationMatchesReference() {
        func reference(_ rgb: [Double], _ shift: Double) -> [Double] {
            let (r, g, b) = (rgb[0], rgb[1], rgb[2])
            let v = max(r, g, b), m = min(r, g, b), d = v - m
            if d == 0 { return rgb }
            let s = d / v
            var h = v == r ? (g - b) / d : (v == g ? 2 + (b - r) / d : 4 + (r - g) / d)
            h = (h / 6 + shift).truncatingRemainder(dividingBy: 1)
            if h < 0 { h += 1 }
            let i = Int(h * 6) % 6, f = h * 6 - Double(Int(h * 6))
            let p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f))
            switch i {
            case 0: return [v, t, p]
            case 1: return [q, v, p]
            case 2: return [p, v, t]
            case 3: return [p, q, v]
            case 4: return [t, p, v]
            default: return [v, p, q]
            }
        }
        var generator = SplitMix(11)
        var worst: Float = 0
        for _ in 0..<2000 {
            let rgb = (0..<3).map { _ in Float(generator.next() >> 40) / 16_777_216 }
            let shift = Float(generator.next() >> 40) / 16_777_216 - 0.5
            var image = rgb
            Augmentation.adjustHue(&image, shift)
            let expected = reference(rgb.map(Double.init), Double(shift))
            for k in 0..<3 { worst = max(worst, abs(image[k] - Float(expected[k]))) }
        }
        XCTAssertLessThan(worst, 1e-4, "max |Δ| \(worst)")
    }

    func testFolderErrorsNameTheProblem() throws {
        let folder = TemporaryFolder("errors")
        defer { folder.remove() }
        let png = ImageEncoders.png(width: 2, height: 2, channels: 1, pixels: [0, 1, 2, 3])
        folder.write("PACS/photo/dog/a.png", png)
        folder.write("PACS/photo/dog/broken.png", Array(png.prefix(20)))
        folder.write("PACS/sketch/dog/a.png", png)
        let data = try DomainBedFolders.load(root: folder.path, dataset: "PACS", options: ImageFolderOptions(imageSize: 4))
        assertDatasetError(try data.batch(domain: 0, indices: [0, 1]), contains: ["cannot decode image", "photo/dog/broken.png"])
        assertDatasetError(try EnvironmentAssignment(testDomainNames: ["art_painting"], in: data),
                           contains: ["unknown domain \"art_painting\"", "\"photo\", \"sketch\""])

        folder.makeFolder("PACS/cartoon/dog")
        assertDatasetError(try DomainBedFolders.load(root: folder.path, dataset: "PACS"), contains: ["PACS/cartoon/dog", "holds no image files"])
        folder.write("PACS/cartoon/dog/a.png", png)
        folder.write("PACS/cartoon/horse/a.png", png)
        assertDatasetError(try DomainBedFolders.load(root: folder.path, dataset: "PACS"),
                           contains: ["domain photo", "missing horse"])
        folder.makeFolder("PACS/art_painting")
        assertDatasetError(try DomainBedFolders.load(root: folder.path, dataset: "PACS"), contains: ["PACS/art_painting", "holds no class folders"])
        assertDatasetError(try DomainBedFolders.load(root: folder.path, dataset: "DomainNet"),
                           contains: ["DomainNet not found", "domain_net", "<root>/<Dataset>/<domain>/<class>/<image>"])
        folder.write("tiff/d/c/x.tif", [0, 1])
        assertDatasetError(try DomainBedFolders.load(folder: folder.file("tiff")), contains: ["x.tif", ".tif is not supported"])
        folder.makeFolder("empty")
        assertDatasetError(try DomainBedFolders.load(folder: folder.file("empty")), contains: ["holds no domain folders"])
    }

    /// Fuzzing finding (the long campaign): an 18-byte 16-bit PGM declaring 2552552×5 pixels made
    /// stb read past the end of the file (SEGV). A PGM/PPM's samples must be in the file; complete
    /// 8- and 16-bit files, with a comment in the header, still decode.
    func testTruncatedPNMIsRefusedBeforeStbReadsIt() throws {
        let crash = Array("P52552552\n5\n52552\n".utf8)
        XCTAssertThrowsError(try ImageDecoder.decode(bytes: crash, path: "crash.pgm")) { error in
            XCTAssertTrue("\(error)".contains("declares 2552552×5 pixels"), "\(error)")
        }
        XCTAssertThrowsError(try ImageDecoder.decode(bytes: Array("P6 2 2 255\n".utf8) + [1, 2, 3], path: "short.ppm")) { error in
            XCTAssertTrue("\(error)".contains("truncated"), "\(error)")
        }
        XCTAssertThrowsError(try ImageDecoder.decode(bytes: Array("P5 2 2 70000\n".utf8) + [UInt8](repeating: 0, count: 8), path: "bad.pgm"))
        let gray8 = try ImageDecoder.decode(bytes: Array("P5\n# made by hand\n2 1\n255\n".utf8) + [10, 200], path: "ok.pgm")
        XCTAssertEqual(gray8.pixels, [10, 10, 10, 200, 200, 200])
        let gray16 = try ImageDecoder.decode(bytes: Array("P5 2 1 65535\n".utf8) + [0xff, 0xff, 0x00, 0x00], path: "ok16.pgm")
        XCTAssertEqual(gray16.pixels, [255, 255, 255, 0, 0, 0])
        let rgb = try ImageDecoder.decode(bytes: Array("P6 1 1 255 ".utf8) + [1, 2, 3], path: "ok.ppm")
        XCTAssertEqual(rgb.pixels, [1, 2, 3])
    }

    /// Issue 17 fuzzing finding: a 54-byte BMP declaring 5832706×54 pixels made stb allocate and fill
    /// ~1 GB. The header's size is checked first.
    func testHugeDeclaredImagesAreRefusedFromTheHeader() {
        let header: [UInt8] = [0x42, 0x4d, 0x46, 0x00, 0x00, 0x00, 0xfb, 0x00, 0x00, 0x00, 0x36, 0x00, 0x00, 0x00, 0x28, 0x00,
                               0x00, 0x00, 0x02, 0x00, 0x59, 0x00, 0x36, 0x00, 0x00, 0x00, 0x01, 0x00, 0x18, 0x00, 0x00, 0xf7,
                               0xff, 0xff, 0xef, 0x00, 0x00, 0x00, 0x13, 0x0b, 0x01, 0x00, 0x13, 0x42, 0x4d, 0x46, 0x00, 0x00,
                               0x00, 0x00, 0x00, 0x0b, 0x00, 0x00]
        XCTAssertThrowsError(try ImageDecoder.decode(bytes: header, path: "bomb.bmp")) { error in
            XCTAssertTrue("\(error)".contains("the header declares 5832706×54 pixels"), "\(error)")
        }
        // A top-down BMP (negative height in the header): 33×16777214 pixels declared in 29 bytes.
        let topDown: [UInt8] = [0x42, 0x4d, 0x46, 0x44, 0x6f, 0x75, 0x1e, 0x00, 0x65, 0x00, 0x32, 0x00, 0x00, 0x00, 0x28, 0x00,
                                0x00, 0x00, 0x21, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0xff, 0x01, 0x00, 0x08]
        XCTAssertThrowsError(try ImageDecoder.decode(bytes: topDown, path: "topdown.bmp")) { error in
            XCTAssertTrue("\(error)".contains("the header declares 33×16777214 pixels"), "\(error)")
        }
    }

    func testPythonSortedIsCodePointOrder() {
        XCTAssertEqual(DomainBedFolders.pythonSorted(["b", "B", "a b", "a_b", "ab", "Real World", "Product", "é", "z"]),
                       ["B", "Product", "Real World", "a b", "a_b", "ab", "b", "z", "é"])
    }

    func testCacheKeepsWithinBudget() throws {
        let folder = TemporaryFolder("cache")
        defer { folder.remove() }
        for i in 0..<6 {
            folder.write("d/x/c/\(i).png", ImageEncoders.png(width: 10, height: 10, channels: 3, pixels: ImageEncoders.noise(width: 10, height: 10, seed: UInt64(i))))
        }
        // 300 bytes per decoded image, budget 1000: at most 3 cached.
        let data = try DomainBedFolders.load(folder: folder.file("d"), options: ImageFolderOptions(imageSize: 4, cacheBytes: 1000))
        guard case .files(let store) = data.domains[0].images else { return XCTFail() }
        let first = try store.decoded(0)
        for i in 0..<6 { _ = try store.decoded(i) }
        XCTAssertEqual(try store.decoded(0), first)
        let again = try data.batch(domain: 0, indices: Array(0..<6))
        let fresh = try DomainBedFolders.load(folder: folder.file("d"), options: ImageFolderOptions(imageSize: 4, cacheBytes: 0))
        XCTAssertEqual(try fresh.batch(domain: 0, indices: Array(0..<6)).images, again.images, "cache does not change results")
    }
}
