// The one call site for BLAS. Everything that multiplies matrices goes through `gemm`, so threading
// and accounting live in one place, and one slow reference (Tests/ReferenceKernels) checks it.
import COpenBLAS

public enum BLAS {
    /// Number of threads OpenBLAS may use inside one gemm call.
    public static func setThreads(_ n: Int) {
        openblas_set_num_threads(Int32(max(1, n)))
    }

    public static var threads: Int { Int(openblas_get_num_threads()) }
}

/// C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C, all row-major.
/// `lda`, `ldb`, `ldc` are the row strides of A, B and C as stored (before the transpose).
@inline(__always)
public func gemm(transA: Bool = false, transB: Bool = false,
                 m: Int, n: Int, k: Int,
                 alpha: Float = 1,
                 a: UnsafePointer<Float>, lda: Int,
                 b: UnsafePointer<Float>, ldb: Int,
                 beta: Float = 0,
                 c: UnsafeMutablePointer<Float>, ldc: Int) {
    if m == 0 || n == 0 { return }
    if k == 0 {
        // BLAS would still scale C by beta; do it here to avoid a call with a zero dimension.
        for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
        return
    }
    cblas_sgemm(CblasRowMajor,
                transA ? CblasTrans : CblasNoTrans,
                transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha,
                a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

extension Tensor {
    /// Matrix product of two rank-2 tensors, optionally transposed: the Linear layer's product. On the
    /// oneDNN backend it runs on oneDNN's sgemm (falling back to OpenBLAS if that call fails); `gemm`
    /// above, which the im2col convolutions use, is always OpenBLAS.
    public static func matmul(_ a: Tensor, _ b: Tensor, transA: Bool = false, transB: Bool = false) -> Tensor {
        precondition(a.rank == 2 && b.rank == 2, "matmul wants rank-2 tensors, got \(a.shape) and \(b.shape)")
        let m = transA ? a.shape[1] : a.shape[0]
        let k = transA ? a.shape[0] : a.shape[1]
        let kb = transB ? b.shape[1] : b.shape[0]
        let n = transB ? b.shape[0] : b.shape[1]
        precondition(k == kb, "matmul inner dimensions differ: \(a.shape)\(transA ? "ᵀ" : "") × \(b.shape)\(transB ? "ᵀ" : "")")
        var c = Tensor(shape: [m, n])
        if Backend.current == .onednn, OneDNNMatmul.multiply(a, b, transA: transA, transB: transB, m: m, n: n, k: k, into: &c) {
            return c
        }
        a.data.withUnsafeBufferPointer { pa in
            b.data.withUnsafeBufferPointer { pb in
                c.data.withUnsafeMutableBufferPointer { pc in
                    gemm(transA: transA, transB: transB, m: m, n: n, k: k,
                         a: pa.baseAddress!, lda: a.shape[1],
                         b: pb.baseAddress!, ldb: b.shape[1],
                         c: pc.baseAddress!, ldc: n)
                }
            }
        }
        return c
    }
}
