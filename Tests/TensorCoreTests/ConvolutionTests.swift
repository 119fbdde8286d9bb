import XCTest
@testable import TensorCore

/// The fast im2col + GEMM convolution against the direct Double reference, forward and both gradients.
/// Tolerance: max |fast − ref| / max(1, |ref|) < 1e-4 (float32 GEMM sums of up to a few hundred terms).
final class ConvolutionTests: XCTestCase {
    struct Case { var n, cin, cout, h, w, k, stride, padding: Int; var bias: Bool }

    static let cases: [Case] = [
        Case(n: 2, cin: 3, cout: 4, h: 7, w: 7, k: 3, stride: 1, padding: 1, bias: true),
        Case(n: 3, cin: 2, cout: 5, h: 8, w: 6, k: 3, stride: 2, padding: 1, bias: false),
        Case(n: 2, cin: 4, cout: 3, h: 5, w: 5, k: 1, stride: 1, padding: 0, bias: true),
        Case(n: 2, cin: 4, cout: 6, h: 9, w: 9, k: 1, stride: 2, padding: 0, bias: false),
        Case(n: 1, cin: 3, cout: 4, h: 15, w: 13, k: 7, stride: 2, padding: 3, bias: false),
        Case(n: 2, cin: 2, cout: 3, h: 6, w: 6, k: 3, stride: 1, padding: 0, bias: true),
        Case(n: 2, cin: 1, cout: 2, h: 5, w: 5, k: 3, stride: 3, padding: 2, bias: true),
        Case(n: 4, cin: 8, cout: 16, h: 12, w: 12, k: 3, stride: 1, padding: 1, bias: false),
    ]

    func check(_ c: Case, seed: UInt64, file: StaticString = #filePath, line: UInt = #line) {
        var rng = RNG(seed: seed)
        let x = rng.normalTensor([c.n, c.cin, c.h, c.w])
        let w = rng.normalTensor([c.cout, c.cin, c.k, c.k])
        let b: Tensor? = c.bias ? rng.normalTensor([c.cout]) : nil
        let options = Convolution2dOptions(stride: c.stride, padding: c.padding)
        let fast = convolution2d(x, weight: w, bias: b, options: options)
        let ref = convolution2dReference(x, weight: w, bias: b, options: options)
        XCTAssertEqual(fast.shape, ref.shape, "\(c)", file: file, line: line)
        let dForward = fast.maxRelativeDifference(ref)
        XCTAssertLessThan(dForward, 1e-4, "forward \(c): max rel diff \(dForward)", file: file, line: line)

        let dy = rng.normalTensor(ref.shape)
        let gFast = convolution2dBackward(x, weight: w, outputGradient: dy, options: options)
        let gRef = convolution2dReferenceBackward(x, weight: w, outputGradient: dy, options: options)
        let dInput = gFast.input!.maxRelativeDifference(gRef.input!)
        let dWeight = gFast.weight.maxRelativeDifference(gRef.weight)
        let dBias = gFast.bias.maxRelativeDifference(gRef.bias)
        XCTAssertLessThan(dInput, 1e-4, "dx \(c): max rel diff \(dInput)", file: file, line: line)
        XCTAssertLessThan(dWeight, 1e-4, "dW \(c): max rel diff \(dWeight)", file: file, line: line)
        XCTAssertLessThan(dBias, 1e-4, "db \(c): max rel diff \(dBias)", file: file, line: line)

        let noInput = convolution2dBackward(x, weight: w, outputGradient: dy, options: options,
                                            computeInputGradient: false)
        XCTAssertNil(noInput.input)
        XCTAssertLessThan(noInput.weight.maxRelativeDifference(gRef.weight), 1e-4, "dW without dx \(c)", file: file, line: line)
    }

    func testFastMatchesReference() {
        for (i, c) in Self.cases.enumerated() { check(c, seed: UInt64(100 + i)) }
    }

    /// A tiny column budget forces one image per chunk: results must not change.
    func testChunkedBatchMatchesReference() {
        let saved = Convolution.columnBudget
        defer { Convolution.columnBudget = saved }
        Convolution.columnBudget = 1
        for (i, c) in Self.cases.enumerated() { check(c, seed: UInt64(200 + i)) }
        Convolution.columnBudget = 300
        for (i, c) in Self.cases.enumerated() { check(c, seed: UInt64(300 + i)) }
    }

    /// The reference itself against a hand-computed value, so a shared mistake cannot hide.
    func testReferenceOnHandComputedExample() {
        // x = 1..9 as 3×3, w = all ones 2×2, stride 1, no padding: each output sums a 2×2 window.
        let x = Tensor(shape: [1, 1, 3, 3], data: (1...9).map(Float.init))
        let w = Tensor(shape: [1, 1, 2, 2], repeating: 1)
        let y = convolution2dReference(x, weight: w, bias: Tensor(shape: [1], data: [0.5]))
        XCTAssertEqual(y.data, [12.5, 16.5, 24.5, 28.5])
        let yf = convolution2d(x, weight: w, bias: Tensor(shape: [1], data: [0.5]))
        XCTAssertEqual(yf.data, [12.5, 16.5, 24.5, 28.5])
        // padding 1, stride 2 on the same input: windows at (−1,−1), (−1,1), (1,−1), (1,1)
        let yp = convolution2dReference(x, weight: w, options: .init(stride: 2, padding: 1))
        XCTAssertEqual(yp.data, [1, 5, 11, 28])
    }

    func testEmptyBatch() {
        let x = Tensor.zeros([0, 2, 4, 4]), w = Tensor(shape: [3, 2, 3, 3], repeating: 1)
        let y = convolution2d(x, weight: w, options: .init(padding: 1))
        XCTAssertEqual(y.shape, [0, 3, 4, 4])
        let g = convolution2dBackward(x, weight: w, outputGradient: y, options: .init(padding: 1))
        XCTAssertEqual(g.input?.shape, [0, 2, 4, 4])
        XCTAssertEqual(g.weight.squaredNorm(), 0)
    }
}
