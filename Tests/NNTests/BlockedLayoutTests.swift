import XCTest
import TensorCore
@testable import NN

/// The layers that run on blocked activations (docs/backends.md, "Blocked activations") against the
/// same layers on plain NCHW: BatchNorm's blocked kernels, the option-A shortcut, pooling, whole
/// residual blocks, and whole networks on oneDNN with the blocked layout on and off. The blocked
/// kernels sum in a different order, so results agree within float32 rounding, not bit for bit.
final class BlockedLayoutTests: XCTestCase {
    /// max |a − b| ≤ tolerance · max(1, max |b|), a bound that holds for any summation order.
    func assertClose(_ a: Tensor, _ b: Tensor, _ tolerance: Float, _ label: String,
                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.shape, b.shape, label, file: file, line: line)
        var worst: Float = 0
        for i in 0..<min(a.count, b.count) { worst = max(worst, abs(a.data[i] - b.data[i])) }
        XCTAssertLessThanOrEqual(worst, tolerance * max(1, b.maxAbs()), "\(label): max difference \(worst)", file: file, line: line)
    }

    /// Runs `module` with x in `layout` (reordering in and out) and backward with dy: (y, dx), plain.
    func run(_ module: LayoutAwareModule, _ x: Tensor, _ dy: Tensor, _ ctx: ForwardContext,
             _ layout: ActivationLayout) -> (Tensor, Tensor) {
        let (y, out) = module.forward(x.reordered(from: .plain, to: layout), ctx, layout: layout)
        let dx = module.backward(dy.reordered(from: .plain, to: out))
        return (y.reordered(from: out, to: .plain), dx.reordered(from: layout, to: .plain))
    }

    /// Shapes: an odd pixel count (an 8-channel block leaves a scalar tail of 8 floats) and a slab of
    /// more than 64 vectors (the Float partial sums flush into Double mid-slab).
    func testBatchNormOnBlockedLayoutMatchesPlainInEveryMode() {
        for shape in [[3, 32, 5, 5], [2, 32, 12, 12]] { checkBatchNorm(shape) }
    }

    func checkBatchNorm(_ shape: [Int]) {
        var rng = RNG(seed: 41)
        let x = rng.normalTensor(shape, mean: 0.5, std: 2), dy = rng.normalTensor(shape)
        let gamma = rng.normalTensor([32]), beta = rng.normalTensor([32])
        let runningMean = rng.normalTensor([32]), runningVar = rng.uniformTensor([32], 0.5, 2)
        func make() -> BatchNorm2d {
            let bn = BatchNorm2d(name: "bn", channels: 32)
            bn.weight.value = gamma; bn.bias.value = beta
            bn.runningMean.value = runningMean; bn.runningVar.value = runningVar
            return bn
        }
        let modes: [(String, ForwardContext, Bool)] = [
            ("batch statistics", ForwardContext(training: true), false),
            ("frozen", ForwardContext(training: true), true),
            ("eval", ForwardContext(training: false, needsBackward: true), false),
        ]
        for layout in [ActivationLayout.blocked(16), .blocked(8)] {
            for (label, ctx, frozen) in modes {
                let plain = make(), blocked = make()
                plain.frozen = frozen; blocked.frozen = frozen
                let (yp, dxp) = run(plain, x, dy, ctx, .plain)
                let (yb, dxb) = run(blocked, x, dy, ctx, layout)
                let name = "\(shape) \(layout) \(label)"
                assertClose(yb, yp, 1e-5, "\(name) y")
                assertClose(dxb, dxp, 1e-5, "\(name) dx")
                assertClose(blocked.weight.grad, plain.weight.grad, 1e-5, "\(name) dγ")
                assertClose(blocked.bias.grad, plain.bias.grad, 1e-5, "\(name) dβ")
                assertClose(blocked.runningMean.value, plain.runningMean.value, 1e-6, "\(name) running mean")
                assertClose(blocked.runningVar.value, plain.runningVar.value, 1e-6, "\(name) running variance")
            }
        }
    }

    /// The option-A shortcut is a copy (exact on any layout; 16 → 32 channels puts the copied
    /// channels at 8..<24, across a 16-channel block); pooling agrees within rounding.
    func testShortcutAndPoolingOnBlockedLayout() {
        var rng = RNG(seed: 42)
        let x = rng.normalTensor([2, 16, 7, 7]), dy = rng.normalTensor([2, 32, 4, 4])
        for layout in [ActivationLayout.blocked(16), .blocked(8)] {
            let (yp, dxp) = run(ZeroPadShortcut(inChannels: 16, outChannels: 32, stride: 2), x, dy, ForwardContext(training: true), .plain)
            let (yb, dxb) = run(ZeroPadShortcut(inChannels: 16, outChannels: 32, stride: 2), x, dy, ForwardContext(training: true), layout)
            XCTAssertEqual(yb, yp, "\(layout) shortcut y")
            XCTAssertEqual(dxb, dxp, "\(layout) shortcut dx")
            let pool = GlobalAvgPool(), dPool = rng.normalTensor([2, 16])
            let (pp, gp) = run(pool, x, dPool, ForwardContext(training: true), .plain)
            let (pb, gb) = run(pool, x, dPool, ForwardContext(training: true), layout)
            assertClose(pb, pp, 1e-6, "\(layout) pool y")
            assertClose(gb, gp, 1e-6, "\(layout) pool dx")
        }
    }

    /// Whole residual blocks on blocked activations against plain ones, on each backend: outputs,
    /// input gradients and every parameter gradient.
    func testResidualBlocksOnBlockedLayoutMatchPlain() throws {
        func blocks() -> [(String, LayoutAwareModule)] {
            var rng = RNG(seed: 43)
            return [
                ("basic identity", BasicBlock(name: "a", inChannels: 16, outChannels: 16, stride: 1, shortcut: .zeroPadding, rng: &rng)),
                ("basic option A", BasicBlock(name: "b", inChannels: 16, outChannels: 32, stride: 2, shortcut: .zeroPadding, rng: &rng)),
                ("basic projection", BasicBlock(name: "c", inChannels: 16, outChannels: 32, stride: 2, shortcut: .projection, rng: &rng)),
                ("bottleneck", Bottleneck(name: "d", inChannels: 32, planes: 16, stride: 2, rng: &rng)),
            ]
        }
        var rng = RNG(seed: 44)
        let inputs = [rng.normalTensor([2, 16, 8, 8]), rng.normalTensor([2, 16, 8, 8]), rng.normalTensor([2, 16, 8, 8]),
                      rng.normalTensor([2, 32, 8, 8])]
        try forEachBackend { backend in
            let plain = blocks(), blocked = blocks()
            for i in plain.indices {
                let (label, p) = plain[i], b = blocked[i].1
                XCTAssertTrue(b.accepts(.blocked(16)) && b.accepts(.blocked(8)), label)
                let x = inputs[i]
                let ctx = ForwardContext(training: true)
                let dy = randomTensor((p as! DescribedModule).outputShape(for: x.shape), seed: UInt64(50 + i))
                let (yp, dxp) = run(p, x, dy, ctx, .plain)
                for layout in [ActivationLayout.blocked(16), .blocked(8)] {
                    b.zeroGrad()
                    let (yb, dxb) = run(b, x, dy, ctx, layout)
                    let name = "\(backend) \(label) \(layout)"
                    assertClose(yb, yp, 1e-4, "\(name) y")
                    assertClose(dxb, dxp, 1e-4, "\(name) dx")
                    for (pp, pb) in zip(p.parameters, b.parameters) {
                        XCTAssertEqual(pp.name, pb.name)
                        assertClose(pb.grad, pp.grad, 1e-4, "\(name) \(pp.name)")
                    }
                }
            }
        }
    }

    /// Finite differences through a residual stage that runs blocked (oneDNN, the default layout):
    /// the blocked path's gradients are the loss's, not only equal to the plain path's.
    func testBlockedStageGradientsMatchFiniteDifferences() throws {
        guard Backend.oneDNNAvailable else { throw XCTSkip("oneDNN not loaded (OneDNNConvolutionTests fails for that)") }
        try Backend.with(.onednn) {
            let saved = Backend.keepActivationsBlocked
            defer { Backend.keepActivationsBlocked = saved }
            Backend.keepActivationsBlocked = true
            var rng = RNG(seed: 45)
            let stage = Sequential([
                ("0", BasicBlock(name: "0", inChannels: 16, outChannels: 32, stride: 2, shortcut: .zeroPadding, rng: &rng)),
                ("1", BasicBlock(name: "1", inChannels: 32, outChannels: 32, stride: 1, shortcut: .zeroPadding, rng: &rng)),
                ("pool", GlobalAvgPool()),
            ])
            let before = Backend.blockedConvolutionShapes
            let x = rng.normalTensor([3, 16, 6, 6])
            // The criteria of ModelTests.testBlocksAgainstFiniteDifferences.
            for training in [true, false] {
                var check = GradientCheck(step: 1e-3, fallbackSteps: [3e-4, 1e-4, 3e-3], tolerance: 1e-2, maxElements: 40)
                check.context = { ForwardContext(training: training, updateRunningStats: false, needsBackward: true) }
                check.assertGradients(stage, input: x, "blocked stage, training \(training)")
                let errors = check.directionalErrors(stage, input: x)
                XCTAssertLessThan(errors.max()!, 2e-2, "training \(training): directional derivative relative errors \(errors)")
            }
            XCTAssertGreaterThan(Backend.blockedConvolutionShapes, before, "the stage did not run on blocked activations")
        }
    }

    /// Whole networks on oneDNN with activations blocked and plain: the same logits and gradients
    /// within rounding, and the blocked runs really used blocked convolutions. (The torchvision models
    /// get 64×64 inputs: at 32×32 their last stage is 1×1 with a batch of 2, where BatchNorm's batch
    /// statistics of two values amplify any rounding difference in the gradients by orders of magnitude.)
    func testNetworksOnBlockedLayoutMatchPlain() throws {
        guard Backend.oneDNNAvailable else { throw XCTSkip("oneDNN not loaded (OneDNNConvolutionTests fails for that)") }
        let saved = Backend.keepActivationsBlocked
        defer { Backend.keepActivationsBlocked = saved }
        let cases: [(String, Int, Double, [Int])] = [("resnet20", 1, 1, [4, 1, 12, 12]), ("resnet18", 3, 0.25, [2, 3, 64, 64]),
                                                    ("resnet50", 3, 0.25, [2, 3, 64, 64])]
        try Backend.with(.onednn) {
            for (arch, channels, width, shape) in cases {
                let x = randomTensor(shape, seed: 46)
                var results: [(Tensor, Tensor, [Tensor])] = []
                for blocked in [false, true] {
                    Backend.keepActivationsBlocked = blocked
                    let net = try Network.make(architecture: arch, inChannels: channels, classes: 5, width: width, seed: 7)
                    let before = Backend.blockedConvolutionShapes
                    let logits = net.forward(x, ForwardContext(training: true))
                    let dx = net.backward(randomTensor(logits.shape, seed: 47))
                    if blocked {
                        XCTAssertGreaterThan(Backend.blockedConvolutionShapes, before, "\(arch): no blocked convolution ran")
                    }
                    results.append((logits, dx, net.parameters.map(\.grad)))
                    // Evaluation mode too (running statistics, no caches).
                    _ = net.forward(x, .eval)
                }
                let (p, b) = (results[0], results[1])
                assertClose(b.0, p.0, 1e-4, "\(arch) logits")
                assertClose(b.1, p.1, 1e-3, "\(arch) dx")
                for (i, (gp, gb)) in zip(p.2, b.2).enumerated() { assertClose(gb, gp, 1e-3, "\(arch) gradient \(i)") }
            }
        }
    }
}

/// The residual blocks run their ReLUs and the residual add inside BatchNorm's pass; the result must be
/// bit for bit that of the separate layers, on both layouts.
final class FusedEpilogueTests: XCTestCase {
    /// The BasicBlock computed layer by layer with the public modules (a separate ReLU and add).
    func separateLayers(_ b: BasicBlock, _ x: Tensor, _ dy: Tensor, _ ctx: ForwardContext) -> (Tensor, Tensor) {
        let relu1 = ReLU(), relu2 = ReLU()
        // The projection's layers one by one (a Sequential would choose its own layout).
        let shortcut: Module? = b.downsample.map { Sequential($0.layers.map { ($0.0, PlainOnly($0.1)) }) } ?? b.zeroPad
        var h = relu1.forward(b.bn1.forward(b.conv1.forward(x, ctx), ctx), ctx)
        h = b.bn2.forward(b.conv2.forward(h, ctx), ctx)
        h.add(shortcut?.forward(x, ctx) ?? x)
        let y = relu2.forward(h, ctx)
        let g = relu2.backward(dy)
        var dx = b.conv1.backward(b.bn1.backward(relu1.backward(b.conv2.backward(b.bn2.backward(g)))))
        dx.add(shortcut?.backward(g) ?? g)
        return (y, dx)
    }

    func testBasicBlockEpilogueEqualsSeparateLayers() {
        for shortcut in ResidualShortcut.allCases {
            for layout in [ActivationLayout.plain, .blocked(16)] {
                for training in [true, false] {
                    var rng = RNG(seed: 60)
                    let fused = BasicBlock(name: "f", inChannels: 16, outChannels: 32, stride: 2, shortcut: shortcut, rng: &rng)
                    rng = RNG(seed: 60)
                    let separate = BasicBlock(name: "f", inChannels: 16, outChannels: 32, stride: 2, shortcut: shortcut, rng: &rng)
                    let x = randomTensor([2, 16, 8, 8], seed: 61), dy = randomTensor([2, 32, 4, 4], seed: 62)
                    let ctx = ForwardContext(training: training, needsBackward: true)
                    let (yf, out) = fused.forward(x.reordered(from: .plain, to: layout), ctx, layout: layout)
                    let dxf = fused.backward(dy.reordered(from: .plain, to: out)).reordered(from: layout, to: .plain)
                    // The reference runs plain: compare with the fused block on the same layout only
                    // where layouts agree bit for bit (plain); blocked is compared within rounding.
                    let (ys, dxs) = separateLayers(separate, x, dy, ctx)
                    let label = "\(shortcut) \(layout) training \(training)"
                    if layout == .plain {
                        XCTAssertEqual(yf, ys, "\(label) y")
                        XCTAssertEqual(dxf, dxs, "\(label) dx")
                        for (a, b) in zip(fused.parameters, separate.parameters) { XCTAssertEqual(a.grad, b.grad, "\(label) \(a.name)") }
                    } else {
                        XCTAssertLessThan(yf.reordered(from: out, to: .plain).maxRelativeDifference(ys), 1e-4, "\(label) y")
                        XCTAssertLessThan(dxf.maxRelativeDifference(dxs), 1e-4, "\(label) dx")
                    }
                }
            }
        }
    }

    /// NaN from a diverging run still reaches the output through the fused ReLU (the trainer's
    /// divergence check relies on it).
    func testFusedReLUPassesNaN() {
        var rng = RNG(seed: 63)
        let block = BasicBlock(name: "n", inChannels: 16, outChannels: 16, stride: 1, shortcut: .zeroPadding, rng: &rng)
        var x = randomTensor([1, 16, 4, 4], seed: 64)
        x.data[5] = .nan
        for layout in [ActivationLayout.plain, .blocked(16)] {
            let (y, _) = block.forward(x.reordered(from: .plain, to: layout), .eval, layout: layout)
            XCTAssertTrue(y.data.contains { $0.isNaN }, "\(layout)")
        }
    }
}

/// Wraps a module so Sequential runs it plain (it is not a LayoutAwareModule).
private final class PlainOnly: Module {
    let inner: Module
    init(_ inner: Module) { self.inner = inner }
    func forward(_ x: Tensor, _ ctx: ForwardContext) -> Tensor { inner.forward(x, ctx) }
    func backward(_ dy: Tensor) -> Tensor { inner.backward(dy) }
    var parameters: [Parameter] { inner.parameters }
}

/// Where the layout changes in whole networks, and the layers added for the stem.
final class BlockedNetworkTests: XCTestCase {
    /// On oneDNN a training step of ResNet-20 and ResNet-18 reorders no activation at all: the stem's
    /// convolution takes the plain image and writes the blocked layout, and global average pooling
    /// writes plain (N, C). With the layout off nothing is blocked either.
    func testTrainingStepReordersNothingInsideTheEngine() throws {
        guard Backend.oneDNNAvailable else { throw XCTSkip("oneDNN not loaded (OneDNNConvolutionTests fails for that)") }
        let saved = Backend.keepActivationsBlocked
        defer { Backend.keepActivationsBlocked = saved }
        try Backend.with(.onednn) {
            for (arch, shape) in [("resnet20", [3, 1, 10, 10]), ("resnet18", [3, 3, 48, 48])] {  // shapes no other test uses (fresh primitives)
                for blocked in [true, false] {
                    Backend.keepActivationsBlocked = blocked
                    let net = try Network.make(architecture: arch, inChannels: shape[1], classes: 4, width: arch == "resnet18" ? 0.25 : 1, seed: 3)
                    let before = ActivationLayout.reorders, convolutions = Backend.blockedConvolutionShapes
                    let logits = net.forward(randomTensor(shape, seed: 70), ForwardContext(training: true))
                    _ = net.backward(randomTensor(logits.shape, seed: 71))
                    _ = net.forward(randomTensor(shape, seed: 72), .eval)
                    XCTAssertEqual(ActivationLayout.reorders, before, "\(arch) blocked \(blocked): reorders inside the engine")
                    if blocked { XCTAssertGreaterThan(Backend.blockedConvolutionShapes, convolutions, arch) }
                }
            }
        }
    }

    /// Max pooling on blocked activations is the plain one, exactly (a max and a scatter-add in the
    /// same order), for overlapping windows with padding and both block sizes.
    func testMaxPoolOnBlockedLayoutEqualsPlain() {
        let x = randomTensor([2, 32, 9, 7], seed: 73), dy = randomTensor([2, 32, 5, 4], seed: 74)
        let plain = MaxPool2d(kernel: 3, stride: 2, padding: 1)
        let y = plain.forward(x, ForwardContext(training: true)), dx = plain.backward(dy)
        for layout in [ActivationLayout.blocked(16), .blocked(8)] {
            let pool = MaxPool2d(kernel: 3, stride: 2, padding: 1)
            let (yb, out) = pool.forward(x.reordered(from: .plain, to: layout), ForwardContext(training: true), layout: layout)
            XCTAssertEqual(out, layout)
            XCTAssertEqual(yb.reordered(from: layout, to: .plain), y, "\(layout) y")
            XCTAssertEqual(pool.backward(dy.reordered(from: .plain, to: layout)).reordered(from: layout, to: .plain), dx, "\(layout) dx")
        }
    }

    /// A stem convolution (3 input channels) within a blocked run takes its input plain and writes
    /// blocked: the same numbers as the plain layer, bit for bit on each backend.
    func testStemConvolutionTakesPlainInputAndWritesBlocked() throws {
        var rng = RNG(seed: 75)
        let conv = Conv2d(name: "conv1", inChannels: 3, outChannels: 16, kernel: 7, stride: 2, padding: 3, rng: &rng)
        let x = randomTensor([2, 3, 20, 20], seed: 76), dy = randomTensor([2, 16, 10, 10], seed: 77)
        XCTAssertTrue(conv.accepts(.blocked(16)))
        XCTAssertEqual(conv.inputLayout(for: .blocked(16)), .plain)
        try forEachBackend { backend in
            let y = conv.forward(x, ForwardContext(training: true))
            conv.zeroGrad()
            let dx = conv.backward(dy)
            let dw = conv.weight.grad
            let (yb, out) = conv.forward(x, ForwardContext(training: true), layout: .blocked(16))
            XCTAssertEqual(out, .blocked(16))
            conv.zeroGrad()
            let dxb = conv.backward(dy.reordered(from: .plain, to: .blocked(16)))
            XCTAssertEqual(yb.reordered(from: .blocked(16), to: .plain), y, "\(backend) y")
            XCTAssertEqual(dxb, dx, "\(backend) dx (plain, as the input)")
            XCTAssertEqual(conv.weight.grad, dw, "\(backend) dW")
        }
    }
}
