// fqat-bench: kernel checks and throughput of the engine. See docs/benchmarks.md.
//   swift run -c release fqat-bench [--json] [--quick] [--only WORKLOAD[,WORKLOAD]] …  (--help lists all)
import Foundation
import TensorCore

let options: BenchOptions
do {
    options = try BenchOptions.parse(Array(CommandLine.arguments.dropFirst()))
} catch {
    BenchOptions.exit(withError: error)
}
let bench = Bench(options: options)
bench.run()
