import XCTest
@testable import TensorCore
import ReferenceKernels

final class GemmTests: XCTestCase {
    /// Tensor.matmul (the Linear layer's product) on each backend, at 1 and 2 threads, against the
    /// Double reference; on oneDNN it must really run there (its call counter moves).
    func testMatmulMatchesReferenceOnEveryBackend() throws {
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        let backends: [ComputeBackend] = Backend.oneDNNAvailable ? [.openblas, .onednn] : [.openblas]
        for backend in backends {
            for threads in [1, 2] {
                Parallel.threads = threads
                let before = OneDNNMatmul.completed.load(ordering: .relaxed)
                try Backend.with(backend) { checkMatmulAgainstReference(shapes: [(1, 1, 1), (3, 5, 7), (17, 9, 33), (64, 65, 31), (96, 100, 512)]) }
                let ran = OneDNNMatmul.completed.load(ordering: .relaxed) - before
                XCTAssertEqual(ran > 0, backend == .onednn, "\(backend) at \(threads) threads: \(ran) oneDNN products")
            }
        }
    }

    /// Same inputs and thread count, same bits, on oneDNN's sgemm (a reduction over k split across
    /// threads would show here).
    func testOneDNNMatmulIsDeterministicAtTwoThreads() throws {
        try XCTSkipUnless(Backend.oneDNNAvailable, "oneDNN is not available")
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        Parallel.threads = 2
        var rng = RNG(seed: 9)
        let a = rng.normalTensor([128, 2048]), b = rng.normalTensor([1000, 2048])
        try Backend.with(.onednn) {
            let first = Tensor.matmul(a, b, transB: true)
            for _ in 0..<3 { XCTAssertEqual(Tensor.matmul(a, b, transB: true), first) }
            let dw = Tensor.matmul(first, a, transA: true)
            XCTAssertEqual(Tensor.matmul(first, a, transA: true), dw)
        }
    }

    /// One product of `Tensor.matmul` against the Double reference: its operands, sizes and transposes.
    struct Product {
        var a, b, fast: Tensor
        var reference: [Float]
        var m, n, k: Int
        var transA, transB: Bool
        var name: String { "m=\(m) n=\(n) k=\(k) ta=\(transA) tb=\(transB)" }
    }

    /// Every shape with every transpose, operands drawn from one seeded stream, product and reference.
    func forEachProduct(shapes: [(Int, Int, Int)], _ check: (Product) -> Void) {
        var rng = RNG(seed: 1)
        for (m, n, k) in shapes {
            for ta in [false, true] { for tb in [false, true] {
                let a = rng.normalTensor(ta ? [k, m] : [m, k])
                let b = rng.normalTensor(tb ? [n, k] : [k, n])
                var ref = [Float](repeating: 0, count: m * n)
                gemmReference(transA: ta, transB: tb, m: m, n: n, k: k, a: a.data, lda: a.shape[1],
                              b: b.data, ldb: b.shape[1], c: &ref, ldc: n)
                check(Product(a: a, b: b, fast: Tensor.matmul(a, b, transA: ta, transB: tb), reference: ref,
                              m: m, n: n, k: k, transA: ta, transB: tb))
            } }
        }
    }

    func checkMatmulAgainstReference(shapes: [(Int, Int, Int)], file: StaticString = #filePath, line: UInt = #line) {
        forEachProduct(shapes: shapes) { p in
            // The classical bound for any summation order: |fl(Σ aᵢbᵢ) − Σ aᵢbᵢ| ≤ γₖ Σ|aᵢbᵢ|, γₖ = k·u/(1 − k·u).
            var bound = [Float](repeating: 0, count: p.m * p.n)
            gemmReference(transA: p.transA, transB: p.transB, m: p.m, n: p.n, k: p.k, a: p.a.data.map(abs), lda: p.a.shape[1],
                          b: p.b.data.map(abs), ldb: p.b.shape[1], c: &bound, ldc: p.n)
            let u = Double(Float.ulpOfOne) / 2, gamma = Double(p.k + 1) * u / (1 - Double(p.k + 1) * u)
            var worst = 0.0
            for i in 0..<(p.m * p.n) {
                let error = Double(abs(p.fast.data[i] - p.reference[i]))
                worst = max(worst, error / (gamma * Double(bound[i]) + 1e-30))
            }
            XCTAssertLessThanOrEqual(worst, 1, "\(Backend.current) \(p.name): error / bound \(worst)", file: file, line: line)
        }
    }

    func testGemmMatchesReferenceAllTransposes() {
        forEachProduct(shapes: [(1, 1, 1), (3, 5, 7), (17, 9, 33), (64, 65, 31)]) { p in
            let d = p.fast.maxRelativeDifference(Tensor(shape: [p.m, p.n], data: p.reference))
            XCTAssertLessThan(d, 1e-5, "gemm \(p.name): max rel diff \(d)")
        }
    }

    func testRNGIsDeterministicAndWellSpread() {
        var a = RNG(seed: 42), b = RNG(seed: 42), c = RNG(seed: 43)
        let xa = (0..<100).map { _ in a.next() }
        XCTAssertEqual(xa, (0..<100).map { _ in b.next() })
        XCTAssertNotEqual(xa, (0..<100).map { _ in c.next() })
        var r = RNG(seed: 7)
        let t = r.normalTensor([20000])
        XCTAssertEqual(t.mean(), 0, accuracy: 0.03)
        XCTAssertEqual(t.squaredNorm() / 20000, 1, accuracy: 0.05)
        let p = r.permutation(50)
        XCTAssertEqual(p.sorted(), Array(0..<50))
    }
}
