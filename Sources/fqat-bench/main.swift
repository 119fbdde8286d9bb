// fqat-bench: kernel checks and throughput of the engine. See docs/benchmarks.md.
//   swift run -c release fqat-bench [--json] [--quick] [--only WORKLOAD[,WORKLOAD]]
import Foundation
import TensorCore

let args = Array(CommandLine.arguments.dropFirst())
let bench = Bench(arguments: args)
bench.run()
