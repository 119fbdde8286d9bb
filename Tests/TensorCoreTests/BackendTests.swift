import XCTest
@testable import TensorCore

/// The oneDNN backend against the same direct Double reference as the OpenBLAS path (ConvolutionTests),
/// its determinism, its primitive cache and its selection. setup.sh installs libdnnl-dev, so oneDNN
/// not loading here is a failure, not a skip.
final class OneDNNConvolutionTests: XCTestCase {
    override func setUp() {
        super.setUp()
        XCTAssertTrue(Backend.oneDNNAvailable, "oneDNN did not load: \(Backend.oneDNNUnavailableReason ?? "")")
    }

    /// Every ConvolutionTests case (kernels 1, 3, 7; strides 1–3; paddings 0–3; with and without
    /// bias) at 1 and 2 threads, forward and both gradients, within the OpenBLAS path's tolerance.
    func testMatchesReference() throws {
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        var seed: UInt64 = 500
        for threads in [1, 2] {
            Parallel.threads = threads
            try Backend.with(.onednn) {
                for c in ConvolutionTests.cases { ConvolutionTests.check(c, seed: seed); seed += 1 }
                // ResNet-20-like widths (the blocked layouts pad channels to 16: 16, 24 and 1 channels).
                ConvolutionTests.check(.init(n: 3, cin: 16, cout: 32, h: 9, w: 9, k: 3, stride: 2, padding: 1, bias: false), seed: seed)
                ConvolutionTests.check(.init(n: 2, cin: 24, cout: 16, h: 6, w: 6, k: 3, stride: 1, padding: 1, bias: true), seed: seed + 1)
                ConvolutionTests.check(.init(n: 2, cin: 1, cout: 16, h: 10, w: 10, k: 3, stride: 1, padding: 1, bias: false), seed: seed + 2)
            }
            seed += 3
        }
        XCTAssertFalse(OneDNNConvolution.implementations.isEmpty)
    }

    /// Same inputs and thread count, same bits: forward, dx, dW and db, run to run and after the
    /// cache is rebuilt, at 2 threads (backward weights reduces over the batch across threads).
    func testDeterministicAtTwoThreads() throws {
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        Parallel.threads = 2
        var rng = RNG(seed: 77)
        let x = rng.normalTensor([16, 16, 14, 14]), w = rng.normalTensor([32, 16, 3, 3]), b = rng.normalTensor([32])
        let opts = Convolution2dOptions(stride: 1, padding: 1)
        let dy = rng.normalTensor([16, 32, 14, 14])
        try Backend.with(.onednn) {
            let y1 = convolution2d(x, weight: w, bias: b, options: opts)
            let g1 = convolution2dBackward(x, weight: w, outputGradient: dy, options: opts)
            for rebuild in [false, true] {
                if rebuild { OneDNNConvolution.clearCache() }
                XCTAssertEqual(convolution2d(x, weight: w, bias: b, options: opts), y1, "forward differs (rebuilt: \(rebuild))")
                let g = convolution2dBackward(x, weight: w, outputGradient: dy, options: opts)
                XCTAssertEqual(g.input, g1.input, "dx differs (rebuilt: \(rebuild))")
                XCTAssertEqual(g.weight, g1.weight, "dW differs (rebuilt: \(rebuild))")
                XCTAssertEqual(g.bias, g1.bias, "db differs (rebuilt: \(rebuild))")
            }
            // Without dx, dW and db are the same numbers.
            let noInput = convolution2dBackward(x, weight: w, outputGradient: dy, options: opts, computeInputGradient: false)
            XCTAssertNil(noInput.input)
            XCTAssertEqual(noInput.weight, g1.weight)
            XCTAssertEqual(noInput.bias, g1.bias)
        }
    }

    /// One handle per (shape, threads): a second call reuses it; a new thread count makes another.
    func testPrimitivesCachedPerShapeAndThreads() throws {
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        OneDNNConvolution.clearCache()
        XCTAssertEqual(OneDNNConvolution.cachedHandles, 0)
        var rng = RNG(seed: 3)
        let x = rng.normalTensor([2, 16, 8, 8]), w = rng.normalTensor([16, 16, 3, 3])
        try Backend.with(.onednn) {
            Parallel.threads = 1
            _ = convolution2d(x, weight: w, options: .init(padding: 1))
            _ = convolution2d(x, weight: w, options: .init(padding: 1))
            XCTAssertEqual(OneDNNConvolution.cachedHandles, 1)
            _ = convolution2d(x, weight: w, options: .init(stride: 2, padding: 1))
            XCTAssertEqual(OneDNNConvolution.cachedHandles, 2)
            Parallel.threads = 2
            _ = convolution2d(x, weight: w, options: .init(padding: 1))
            XCTAssertEqual(OneDNNConvolution.cachedHandles, 3)
        }
    }

    /// When oneDNN refuses a shape, that convolution runs on OpenBLAS (same numbers as selecting it)
    /// and the summary says so; the backend stays onednn.
    func testFallbackWhenPrimitiveCreationFails() throws {
        var rng = RNG(seed: 5)
        let x = rng.normalTensor([2, 5, 7, 7]), w = rng.normalTensor([6, 5, 3, 3]), dy = rng.normalTensor([2, 6, 4, 4])
        let opts = Convolution2dOptions(stride: 2, padding: 1)
        let y0 = try Backend.with(.openblas) { convolution2d(x, weight: w, options: opts) }
        let g0 = try Backend.with(.openblas) { convolution2dBackward(x, weight: w, outputGradient: dy, options: opts) }
        OneDNNConvolution.clearCache()
        OneDNNConvolution.simulateCreationFailure = true
        defer { OneDNNConvolution.simulateCreationFailure = false; OneDNNConvolution.clearCache() }
        try Backend.with(.onednn) {
            XCTAssertEqual(convolution2d(x, weight: w, options: opts), y0)
            let g = convolution2dBackward(x, weight: w, outputGradient: dy, options: opts)
            XCTAssertEqual(g.input, g0.input)
            XCTAssertEqual(g.weight, g0.weight)
            XCTAssertEqual(OneDNNConvolution.cachedHandles, 0)
            XCTAssertTrue(Backend.summary.contains("fell back to openblas for 5→6 k3 s2 at 7×7: simulated failure"), Backend.summary)
            XCTAssertEqual(ComputeInfo.current().recordFields["onednn_fallback"], "5→6 k3 s2 at 7×7: simulated failure")
        }
    }

    /// Selecting backends, and the provenance summary naming the library and its kernels.
    func testSelectionAndSummary() throws {
        var rng = RNG(seed: 4)
        let x = rng.normalTensor([2, 3, 6, 6]), w = rng.normalTensor([4, 3, 3, 3])
        try Backend.with(.openblas) {
            XCTAssertEqual(Backend.current, .openblas)
            XCTAssertEqual(Backend.summary, "openblas")
        }
        try Backend.with(.onednn) {
            _ = convolution2d(x, weight: w, options: .init(padding: 1))
            XCTAssertEqual(Backend.current, .onednn)
            let s = Backend.summary
            XCTAssertTrue(s.hasPrefix("onednn (oneDNN "), s)
            XCTAssertTrue(s.contains("conv "), s)
            XCTAssertTrue(s.contains("OMP_WAIT_POLICY="), s)
        }
        XCTAssertEqual(Backend.waitPolicy.isEmpty, false)
    }
}
