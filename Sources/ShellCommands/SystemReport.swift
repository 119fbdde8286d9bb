// The compute path as the shell renders it: `show system`, `fqat-shell --version`, and the start-up
// warning when OpenBLAS runs a generic core on a CPU with wide vector units (TensorCore.ComputeInfo).
import TensorCore

public enum SystemReport {
    /// "compute: backend openblas; OpenBLAS 0.3.21, core Haswell (…); CPU …; threads 2 (BLAS 2), cores 2".
    public static func computeLine() -> String { ComputeInfo.current().line }

    /// The warning printed once at the start of a REPL or batch run, or nil when the kernels suit the CPU.
    public static func startupWarning() -> String? { ComputeInfo.current().genericCoreWarning }

    /// A warning when FQAT_BACKEND asked for a backend that could not be used, or nil.
    public static func backendWarning() -> String? {
        Backend.environmentNote.map { "warning: \($0) (docs/backends.md)" }
    }
}
