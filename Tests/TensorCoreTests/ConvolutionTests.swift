import XCTest
@testable import TensorCore
import ReferenceKernels

/// The fast im2col + GEMM convolution against the direct Double reference, forward and both gradients.
/// Tolerance: max |fast − ref| / max(1, |ref|) < 1e-4 (float32 GEMM sums of up to a few hundred terms).
/// These tests run the OpenBLAS backend; OneDNNConvolutionTests (BackendTests.swift) runs `check` on oneDNN.
final class ConvolutionTests: XCTestCase {
    struct Case { var n, cin, cout, h, w, k, stride, padding: Int; var bias: Bool }

    private var savedBackend = ComputeBackend.openblas
    override func setUpWithError() throws {
        savedBackend = Backend.current
        try Backend.select(.openblas)
    }
    override func tearDownWithError() throws { try Backend.select(savedBackend) }

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
        Self.check(c, seed: seed, file: file, line: line)
    }

    /// Forward, dx, dW and db of case `c` on the selected backend against the reference.
    static func check(_ c: Case, seed: UInt64, file: StaticString = #filePath, line: UInt = #line) {
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

    /// Every strategy, with budgets that give one image per chunk, a few, and the whole batch.
    func testFastMatchesReference() {
        let saved = (Convolution.strategy, Convolution.columnBudget, Convolution.chunkBudget)
        defer { (Convolution.strategy, Convolution.columnBudget, Convolution.chunkBudget) = saved }
        var seed: UInt64 = 100
        for strategy in Convolution.Strategy.allCases {
            for budget in [1, 300, 1 << 25] {
                Convolution.strategy = strategy
                Convolution.columnBudget = budget
                Convolution.chunkBudget = budget
                for c in Self.cases { check(c, seed: seed); seed += 1 }
            }
        }
    }

    /// Shapes large enough that Parallel.forEach really splits the batch across workers (the small
    /// cases run inline), for both strategies; the parallel result must also be bit-identical to the
    /// single-worker one.
    func testParallelPathsMatchReference() {
        let saved = (Convolution.strategy, Parallel.threads)
        defer { (Convolution.strategy, Parallel.threads) = saved }
        let big = Case(n: 6, cin: 8, cout: 8, h: 20, w: 20, k: 3, stride: 1, padding: 1, bias: true)
        let strided = Case(n: 5, cin: 6, cout: 10, h: 23, w: 23, k: 3, stride: 2, padding: 1, bias: false)
        for strategy in Convolution.Strategy.allCases {
            Convolution.strategy = strategy
            Parallel.threads = 3
            check(big, seed: 7)
            check(strided, seed: 8)
            var rng = RNG(seed: 9)
            let x = rng.normalTensor([big.n, big.cin, big.h, big.w]), w = rng.normalTensor([big.cout, big.cin, 3, 3])
            let dy = rng.normalTensor([big.n, big.cout, big.h, big.w])
            let opts = Convolution2dOptions(stride: 1, padding: 1)
            let y3 = convolution2d(x, weight: w, options: opts)
            let g3 = convolution2dBackward(x, weight: w, outputGradient: dy, options: opts)
            Parallel.threads = 1
            XCTAssertEqual(convolution2d(x, weight: w, options: opts), y3, "\(strategy) forward differs across thread counts")
            let g1 = convolution2dBackward(x, weight: w, outputGradient: dy, options: opts)
            XCTAssertEqual(g1.input, g3.input, "\(strategy) dx differs across thread counts")
            if strategy == .batched {
                XCTAssertEqual(g1.weight, g3.weight, "dW differs across thread counts")
            } else {
                // Per-worker partial sums change the summation order of dW; still within rounding.
                XCTAssertLessThan(g1.weight.maxRelativeDifference(g3.weight), 1e-5)
            }
        }
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

/// im2col/col2im (shared kernels, rewritten for speed) against a naive definition, including
/// rectangular kernels and unequal strides/paddings, at a column offset inside a wider matrix.
final class Im2colTests: XCTestCase {
    func testIm2colAndCol2imMatchDefinition() {
        var rng = RNG(seed: 5)
        let geometries = [
            ConvGeometry(channels: 2, height: 7, width: 7, kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, padH: 1, padW: 1),
            ConvGeometry(channels: 2, height: 6, width: 9, kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, padH: 1, padW: 1),
            ConvGeometry(channels: 3, height: 5, width: 8, kernelH: 1, kernelW: 1),
            ConvGeometry(channels: 1, height: 6, width: 5, kernelH: 5, kernelW: 3, strideH: 1, strideW: 1, padH: 2, padW: 1),
            ConvGeometry(channels: 2, height: 9, width: 7, kernelH: 3, kernelW: 2, strideH: 2, strideW: 1, padH: 1, padW: 0),
            ConvGeometry(channels: 2, height: 9, width: 9, kernelH: 7, kernelW: 7, strideH: 2, strideW: 2, padH: 3, padW: 3),
            ConvGeometry(channels: 1, height: 4, width: 4, kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, padH: 2, padW: 2),
            ConvGeometry(channels: 1, height: 3, width: 3, kernelH: 3, kernelW: 3, strideH: 1, strideW: 3, padH: 0, padW: 2),
        ]
        for g in geometries {
            let image = rng.normalTensor([g.channels, g.height, g.width])
            let offset = 3, ld = g.colCols + 5
            var col = [Float](repeating: .nan, count: g.colRows * ld)
            image.data.withUnsafeBufferPointer { px in
                col.withUnsafeMutableBufferPointer { im2col(px.baseAddress!, g, $0.baseAddress!, colOffset: offset, ldc: ld) }
            }
            // Definition: col[(c·kh + i)·kw + j, y·OW + x] = x[c, y·sh + i − ph, x·sw + j − pw] or 0.
            var expected = [Float](repeating: 0, count: g.colRows * g.colCols)
            for c in 0..<g.channels { for i in 0..<g.kernelH { for j in 0..<g.kernelW {
                for y in 0..<g.outHeight { for x in 0..<g.outWidth {
                    let h = y * g.strideH + i - g.padH, w = x * g.strideW + j - g.padW
                    let v: Float = (h >= 0 && h < g.height && w >= 0 && w < g.width) ? image.data[(c * g.height + h) * g.width + w] : 0
                    expected[((c * g.kernelH + i) * g.kernelW + j) * g.colCols + y * g.outWidth + x] = v
                } }
            } } }
            for r in 0..<g.colRows {
                XCTAssertEqual(Array(col[(r * ld + offset)..<(r * ld + offset + g.colCols)]),
                               Array(expected[(r * g.colCols)..<((r + 1) * g.colCols)]), "im2col \(g) row \(r)")
                XCTAssertTrue(col[r * ld..<(r * ld + offset)].allSatisfy(\.isNaN), "im2col wrote before its offset")
            }
            // col2im is the adjoint: <im2col(x), c> == <x, col2im(c)> for random c.
            let cTensor = rng.normalTensor([g.colRows, ld])
            var back = [Float](repeating: 0, count: image.count)
            cTensor.data.withUnsafeBufferPointer { pc in
                back.withUnsafeMutableBufferPointer { col2im(pc.baseAddress!, g, $0.baseAddress!, colOffset: offset, ldc: ld) }
            }
            var lhs = 0.0, rhs = 0.0
            for r in 0..<g.colRows { for k in 0..<g.colCols { lhs += Double(expected[r * g.colCols + k]) * Double(cTensor.data[r * ld + offset + k]) } }
            for k in 0..<image.count { rhs += Double(image.data[k]) * Double(back[k]) }
            XCTAssertEqual(lhs, rhs, accuracy: 1e-4 * max(1, abs(lhs)), "col2im is not the adjoint of im2col for \(g)")
        }
    }
}
