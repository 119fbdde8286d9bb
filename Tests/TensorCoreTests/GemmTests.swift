import XCTest
@testable import TensorCore
import ReferenceKernels

final class GemmTests: XCTestCase {
    func testGemmMatchesReferenceAllTransposes() {
        var rng = RNG(seed: 1)
        for (m, n, k) in [(1, 1, 1), (3, 5, 7), (17, 9, 33), (64, 65, 31)] {
            for ta in [false, true] { for tb in [false, true] {
                let a = rng.normalTensor(ta ? [k, m] : [m, k])
                let b = rng.normalTensor(tb ? [n, k] : [k, n])
                let fast = Tensor.matmul(a, b, transA: ta, transB: tb)
                var ref = [Float](repeating: 0, count: m * n)
                gemmReference(transA: ta, transB: tb, m: m, n: n, k: k, a: a.data, lda: a.shape[1],
                              b: b.data, ldb: b.shape[1], c: &ref, ldc: n)
                let d = fast.maxRelativeDifference(Tensor(shape: [m, n], data: ref))
                XCTAssertLessThan(d, 1e-5, "gemm m=\(m) n=\(n) k=\(k) ta=\(ta) tb=\(tb): max rel diff \(d)")
            } }
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
