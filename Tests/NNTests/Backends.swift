import XCTest
import TensorCore

/// The compute backends the numerics tests run on: OpenBLAS always, oneDNN when it loads (setup.sh
/// installs it; OneDNNConvolutionTests fails when it does not).
var testBackends: [ComputeBackend] { Backend.oneDNNAvailable ? [.openblas, .onednn] : [.openblas] }

/// Runs `body` once per backend with that backend selected, printing which one runs.
func forEachBackend(_ body: (ComputeBackend) throws -> Void) throws {
    for backend in testBackends {
        print("backend: \(backend.rawValue)")
        try Backend.with(backend) { try body(backend) }
    }
}
