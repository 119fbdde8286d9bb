import XCTest
@testable import TensorCore

/// The blocked activation layouts: the reorder's index map, and blocked convolutions against plain
/// ones on both backends (docs/backends.md, "Blocked activations").
final class ActivationLayoutTests: XCTestCase {
    /// Element (n, c, h, w) lands where the layout's formula says, and the round trip is exact.
    func testReorderFollowsTheIndexMapAndRoundTrips() {
        var rng = RNG(seed: 31)
        let x = rng.normalTensor([3, 32, 5, 7])
        for layout in [ActivationLayout.blocked(16), .blocked(8)] {
            let b = x.reordered(from: .plain, to: layout)
            XCTAssertEqual(b.shape, x.shape)
            for n in 0..<3 { for c in 0..<32 { for h in 0..<5 { for w in 0..<7 {
                XCTAssertEqual(b.data[layout.offset(in: x.shape, n, c, h, w)], x.data[ActivationLayout.plain.offset(in: x.shape, n, c, h, w)])
            } } } }
            XCTAssertEqual(b.reordered(from: layout, to: .plain), x)
        }
        // Between two blocked layouts, through plain.
        XCTAssertEqual(x.reordered(from: .plain, to: .blocked(16)).reordered(from: .blocked(16), to: .blocked(8)),
                       x.reordered(from: .plain, to: .blocked(8)))
        XCTAssertEqual(x.reordered(from: .blocked(16), to: .blocked(16)), x)
        XCTAssertTrue(ActivationLayout.blocked(16).holds(channels: 32))
        XCTAssertFalse(ActivationLayout.blocked(16).holds(channels: 24))
        XCTAssertTrue(ActivationLayout.plain.holds(channels: 3))
        XCTAssertEqual(ActivationLayout.blocked(16).description, "nChw16c")
    }

    /// A convolution on blocked activations is the plain one with its operands reordered: the same
    /// oneDNN primitive computes both, so the results are bit-identical; on OpenBLAS (and when oneDNN
    /// refuses the shape) the blocked call reorders around the plain computation, bit-identical too.
    func testBlockedConvolutionEqualsPlainOnEveryBackend() throws {
        var rng = RNG(seed: 32)
        let options = Convolution2dOptions(stride: 2, padding: 1)
        let x = rng.normalTensor([3, 16, 9, 9]), w = rng.normalTensor([32, 16, 3, 3], std: 0.1)
        let bias = rng.normalTensor([32])
        let dy = rng.normalTensor([3, 32, 5, 5])
        var backends: [ComputeBackend] = [.openblas]
        if Backend.oneDNNAvailable { backends.append(.onednn) }
        for backend in backends {
            try Backend.with(backend) {
                for layout in [ActivationLayout.blocked(16), .blocked(8)] {
                    let plainY = convolution2d(x, weight: w, bias: bias, options: options)
                    let blockedY = convolution2d(x.reordered(from: .plain, to: layout), weight: w, bias: bias,
                                                 options: options, layout: layout)
                    XCTAssertEqual(blockedY.reordered(from: layout, to: .plain), plainY, "\(backend) \(layout) forward")
                    let plainG = convolution2dBackward(x, weight: w, outputGradient: dy, options: options)
                    let blockedG = convolution2dBackward(x.reordered(from: .plain, to: layout), weight: w,
                                                         outputGradient: dy.reordered(from: .plain, to: layout),
                                                         options: options, layout: layout)
                    XCTAssertEqual(blockedG.input?.reordered(from: layout, to: .plain), plainG.input, "\(backend) \(layout) dx")
                    XCTAssertEqual(blockedG.weight, plainG.weight, "\(backend) \(layout) dW")
                    XCTAssertEqual(blockedG.bias, plainG.bias, "\(backend) \(layout) db")
                }
            }
        }
    }

    /// oneDNN refusing a blocked shape: the convolution still answers (plain OpenBLAS, reordered).
    func testBlockedConvolutionFallsBackWhenOneDNNRefuses() throws {
        guard Backend.oneDNNAvailable else { throw XCTSkip("oneDNN not loaded (OneDNNConvolutionTests fails for that)") }
        var rng = RNG(seed: 33)
        let x = rng.normalTensor([2, 16, 6, 6]), w = rng.normalTensor([16, 16, 3, 3], std: 0.1)
        let options = Convolution2dOptions(stride: 1, padding: 1)
        let reference = try Backend.with(.openblas) { convolution2d(x, weight: w, options: options) }
        OneDNNConvolution.clearCache()
        OneDNNConvolution.simulateCreationFailure = true
        defer { OneDNNConvolution.simulateCreationFailure = false; OneDNNConvolution.clearCache() }
        let y = try Backend.with(.onednn) {
            convolution2d(x.reordered(from: .plain, to: .blocked(16)), weight: w, options: options, layout: .blocked(16))
        }
        XCTAssertEqual(y.reordered(from: .blocked(16), to: .plain), reference)
    }

    /// The layout the engine keeps: blocked only on oneDNN, when oneDNN prefers a block, and while
    /// `keepActivationsBlocked` is on; the compute line names it.
    func testActivationLayoutFollowsBackendAndSwitch() throws {
        try Backend.with(.openblas) { XCTAssertEqual(Backend.activationLayout, .plain) }
        guard Backend.oneDNNAvailable else { return }
        XCTAssertTrue([8, 16].contains(Backend.oneDNNPreferredBlock), "oneDNN prefers \(Backend.oneDNNPreferredBlock)")
        try Backend.with(.onednn) {
            let saved = Backend.keepActivationsBlocked
            defer { Backend.keepActivationsBlocked = saved }
            Backend.keepActivationsBlocked = true
            XCTAssertEqual(Backend.activationLayout, .blocked(Backend.oneDNNPreferredBlock))
            XCTAssertTrue(Backend.summary.contains("activations nChw\(Backend.oneDNNPreferredBlock)c"), Backend.summary)
            Backend.keepActivationsBlocked = false
            XCTAssertEqual(Backend.activationLayout, .plain)
            XCTAssertTrue(Backend.summary.contains("activations nchw"), Backend.summary)
        }
    }
}
