import XCTest
@testable import Datasets
import TensorCore

final class ImageOpsTests: XCTestCase {
    func rotate(_ image: [UInt8], width: Int, height: Int, degrees: Double) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: image.count)
        image.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                ImageOps.rotate(src.baseAddress!, width: width, height: height, degrees: degrees, into: dst.baseAddress!)
            }
        }
        return out
    }

    func testZeroDegreesIsIdentityAndNinetyIsCounterClockwise() {
        let image = (0..<(5 * 5)).map { UInt8($0 + 1) }
        XCTAssertEqual(rotate(image, width: 5, height: 5, degrees: 0), image)
        XCTAssertEqual(rotate(image, width: 5, height: 5, degrees: 360), image)
        // A bright pixel in the top-right corner moves to the top-left corner when the image turns
        // 90° counter-clockwise; the top row becomes the left column read bottom-up.
        var corner = [UInt8](repeating: 0, count: 25)
        corner[4] = 255
        let turned = rotate(corner, width: 5, height: 5, degrees: 90)
        XCTAssertEqual(turned[0], 255)
        XCTAssertEqual(turned.reduce(0) { $0 + Int($1) }, 255)
        let r90 = rotate(image, width: 5, height: 5, degrees: 90)
        for y in 0..<5 { for x in 0..<5 { XCTAssertEqual(r90[y * 5 + x], image[x * 5 + (4 - y)]) } }
        // Four quarter turns give the image back; 90 then 270 too.
        var four = image
        for _ in 0..<4 { four = rotate(four, width: 5, height: 5, degrees: 90) }
        XCTAssertEqual(four, image)
        XCTAssertEqual(rotate(r90, width: 5, height: 5, degrees: 270), image)
    }

    /// Byte-exact agreement with Pillow 9.4 `Image.rotate(angle, BILINEAR, fillcolor=0)`.
    func testRotationMatchesPillow() {
        let pattern = bytes(hex: PillowFixture.pattern28)
        for (angle, hex) in PillowFixture.rotations {
            let expected = bytes(hex: hex)
            let got = rotate(pattern, width: 28, height: 28, degrees: angle)
            let mismatches = zip(got, expected).filter { $0 != $1 }.count
            let worst = zip(got, expected).map { abs(Int($0) - Int($1)) }.max()!
            XCTAssertEqual(mismatches, 0, "angle \(angle): \(mismatches) pixels differ, worst by \(worst)")
        }
        let rectangle = bytes(hex: PillowFixture.pattern21x13)
        for (angle, hex) in PillowFixture.rectangleRotations {
            XCTAssertEqual(rotate(rectangle, width: 21, height: 13, degrees: angle), bytes(hex: hex), "21x13 angle \(angle)")
        }
    }

    /// Pillow's 8-bit resize rounds between passes with fixed-point weights; ours stays in Float.
    /// Tolerance: 1 grey level after rounding.
    func testResizeMatchesPillowWithinOneLevel() {
        let source = bytes(hex: PillowFixture.rgb37x23)
        for (w, h, hex) in PillowFixture.resizes {
            var out = [Float](repeating: 0, count: w * h * 3)
            source.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    ImageOps.resize(src.baseAddress!, rowStride: 37 * 3, channels: 3, cropWidth: 37, cropHeight: 23,
                                    outWidth: w, outHeight: h, into: dst.baseAddress!)
                }
            }
            let expected = bytes(hex: hex)
            let worst = zip(out, expected).map { abs($0.rounded() - Float($1)) }.max()!
            XCTAssertLessThanOrEqual(worst, 1, "resize to \(w)x\(h): worst difference \(worst)")
        }
    }

    func testResampleTapsAreNormalisedAndShrinkingWidensThem() {
        for (input, output) in [(28, 64), (64, 28), (227, 224), (10, 3), (5, 5)] {
            let taps = ImageOps.resampleTaps(inSize: input, outSize: output)
            for o in 0..<output {
                let sum = (0..<taps.count[o]).reduce(Float(0)) { $0 + taps.weights[o * taps.width + $1] }
                XCTAssertEqual(sum, 1, accuracy: 1e-5, "\(input)→\(output) output \(o)")
                XCTAssertGreaterThanOrEqual(taps.start[o], 0)
                XCTAssertLessThanOrEqual(taps.start[o] + taps.count[o], input)
            }
        }
        // Shrinking 64 → 28 averages over more than two input pixels (antialiasing).
        XCTAssertGreaterThan(ImageOps.resampleTaps(inSize: 64, outSize: 28).count[10], 2)
        // The one-channel path equals the RGB path on a grey image replicated to three channels.
        var generator = SplitMix(5)
        let grey: [Float] = (0..<(13 * 9)).map { _ in Float(generator.next() >> 56) }
        let rgb = grey.flatMap { [$0, $0, $0] }
        for (w, h) in [(30, 20), (6, 4), (13, 9)] {
            let one = ImageOps.resized(grey, width: 13, height: 9, channels: 1, outWidth: w, outHeight: h)
            let three = ImageOps.resized(rgb, width: 13, height: 9, channels: 3, outWidth: w, outHeight: h)
            XCTAssertEqual(one, stride(from: 0, to: three.count, by: 3).map { three[$0] }, "\(w)x\(h)")
        }
        // Same size is the identity.
        let image: [Float] = (0..<30).map { Float($0) }
        XCTAssertEqual(ImageOps.resized(image, width: 5, height: 2, channels: 3, outWidth: 5, outHeight: 2), image)
    }

    func testStyleRenderingsStayInRangeAndDiffer() {
        var image = [Float](repeating: 0, count: 28 * 28)
        for y in 8..<20 { for x in 10..<18 { image[y * 28 + x] = 0.9 } }
        var rng = RNG(seed: 3)
        for style in StyleRendering.Style.allCases {
            let out = StyleRendering.render(style, image, width: 28, height: 28, rng: &rng)
            XCTAssertEqual(out.count, image.count)
            XCTAssertTrue(out.allSatisfy { $0 >= 0 && $0 <= 1 }, "\(style) leaves [0, 1]")
        }
        // Sobel of a vertical step: strong response on the edge, none in flat areas.
        let edges = StyleRendering.sobelMagnitude(image, width: 28, height: 28)
        XCTAssertEqual(edges[14 * 28 + 14], 0)
        XCTAssertGreaterThan(edges[14 * 28 + 10], 2)
        let sketch = StyleRendering.render(.sketch, image, width: 28, height: 28, rng: &rng)
        XCTAssertGreaterThan(sketch[2 * 28 + 2], 0.7, "sketch paper is light")
        XCTAssertLessThan(sketch[14 * 28 + 10], 0.6, "sketch strokes are dark")
    }
}
