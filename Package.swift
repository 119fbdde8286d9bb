// swift-tools-version:6.0
// fqat-shell: an interactive shell and batch runner for flatness-oriented quantization-aware
// training (FQAT) over one CPU engine. Arrows only point down: the language knows nothing of
// tensors; the engine prints nothing. See docs/architecture.md. Each target declares exactly the
// modules its files import (nothing reaches a module through another's dependency).
import PackageDescription

/// Numeric targets are compiled with optimisation even in debug builds: plain Swift loops run
/// 100-500x slower at -Onone, which would make the test suite (finite differences, small training
/// runs) take hours. Release builds are unaffected.
let numeric: [SwiftSetting] = [
    .unsafeFlags(["-O"], .when(configuration: .debug)),
    .unsafeFlags(["-Ounchecked"], .when(configuration: .release)),
]

/// Targets converted to the Swift 6 language mode (full data-race checking); the rest are still in
/// Swift 5 mode while their conversion lands (docs/architecture.md, "Concurrency").
let swift6: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "fqat-shell",
    products: [
        .executable(name: "fqat-shell", targets: ["fqat-shell"]),
        .executable(name: "fqat-bench", targets: ["fqat-bench"]),
    ],
    dependencies: [
        /// fqat-shell's own flags (`--threads`, `--check`, …) and `fqat-shell sweep …`'s: their help text and usage errors.
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // MARK: System-library shims (Debian packages; scripts/setup.sh installs them)
        /// cblas.h from libopenblas-dev: the only BLAS call site is TensorCore's `gemm`.
        .systemLibrary(name: "COpenBLAS", providers: [.apt(["libopenblas-dev"])]),
        /// editline/readline.h from libedit-dev: the REPL's line editing and history.
        .systemLibrary(name: "CEditLine", providers: [.apt(["libedit-dev"])]),
        /// zlib.h: gzip IDX files (Foundation on Linux has no decompression).
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        /// stb_image.h + libstb.so from libstb-dev: JPEG/PNG decoding for DomainBed folders.
        .systemLibrary(name: "CStb", providers: [.apt(["libstb-dev"])]),

        /// oneDNN (libdnnl-dev) loaded with dlopen, so OMP_WAIT_POLICY can be set before its OpenMP
        /// runtime starts and a machine without it falls back to OpenBLAS: TensorCore's conv backend.
        .target(name: "CDNNL", linkerSettings: [.linkedLibrary("dl")]),
        /// posix_spawn with a working directory and default signal state (Plot's Subprocess).
        .target(name: "CSpawn"),
        /// cpuid/xgetbv: the CPU's instruction sets, for TensorCore's ComputeInfo.
        .target(name: "CCPUInfo"),

        // MARK: Engine, lowest first
        /// Tensor (shape + contiguous Float storage), seeded RNG, gemm, im2col/col2im, kernels.
        .target(name: "TensorCore", dependencies: ["COpenBLAS", "CCPUInfo", "CDNNL"], swiftSettings: numeric + swift6),
        /// Parameters, layers with hand-written backward, models, losses, safetensors.
        .target(name: "NN", dependencies: ["TensorCore"], swiftSettings: numeric + swift6),
        /// LSQ and EWGS quantizers, range initialisation, placement, integer export.
        .target(name: "Quant", dependencies: ["NN", "TensorCore"], swiftSettings: numeric + swift6),
        /// SGD, Adam, parameter groups, the SAGM step, gradient disorder and freeze policies.
        .target(name: "Optim", dependencies: ["NN", "TensorCore"], swiftSettings: numeric + swift6),
        /// Built-in multi-domain benchmarks, DomainBed folders, splits, samplers, augmentation.
        .target(name: "Datasets", dependencies: ["TensorCore", "CZlib", "CStb"], swiftSettings: numeric + swift6),
        /// The run loop (ERM, QAT, QAT+SAGM, FQAT, ablations), evaluation, selection, records.
        .target(name: "Training", dependencies: ["Datasets", "NN", "Optim", "Quant", "TensorCore"], swiftSettings: numeric + swift6),
        /// Filter-normalised loss landscapes through the fake-quantized model.
        .target(name: "Landscape", dependencies: ["NN", "TensorCore"], swiftSettings: numeric + swift6),

        // MARK: Front end (Foundation only)
        /// The one escaping loop behind gnuplot strings, HTML text and the language's string literals.
        .target(name: "TextEscaping", swiftSettings: swift6),
        /// Plot specs -> gnuplot scripts; live gnuplot process and a recording stand-in.
        .target(name: "Plot", dependencies: ["CSpawn", "TextEscaping"], swiftSettings: swift6),
        /// Lexer, parser, checker, interpreter and the command registry. Knows nothing of tensors.
        .target(name: "ShellLanguage", dependencies: ["TextEscaping"], swiftSettings: swift6),
        /// The command tables binding the language to the engine, and the shared Session.
        /// `fqat-shell sweep …`'s command line (SweepCLI) is a swift-argument-parser command group.
        .target(name: "ShellCommands", dependencies: ["Datasets", "Landscape", "NN", "Optim", "Plot", "Quant", "ShellLanguage", "TensorCore", "Training",
                                                      .product(name: "ArgumentParser", package: "swift-argument-parser")],
                swiftSettings: swift6),
        .executableTarget(name: "fqat-shell", dependencies: ["CEditLine", "ShellCommands", "ShellLanguage",
                                                             .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: swift6),
        /// Its command line (Options.swift) is a swift-argument-parser command.
        .executableTarget(name: "fqat-bench", dependencies: ["Datasets", "Landscape", "NN", "Optim", "Quant", "TensorCore",
                                                            .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: numeric + swift6),
        /// libFuzzer harnesses (scripts/fuzz.sh builds them with -sanitize=fuzzer); a plain build replays inputs.
        .executableTarget(name: "fqat-fuzz", dependencies: ["Datasets", "NN", "ShellCommands", "ShellLanguage"], swiftSettings: swift6),

        // MARK: Tests
        /// Slow reference kernels (direct loops, Double sums) the tests check the fast kernels against;
        /// only test targets depend on it (like llm.c's dev/).
        .target(name: "ReferenceKernels", dependencies: ["TensorCore"], path: "Tests/ReferenceKernels", swiftSettings: numeric + swift6),
        .testTarget(name: "TensorCoreTests", dependencies: ["ReferenceKernels", "TensorCore"], swiftSettings: numeric),
        .testTarget(name: "NNTests", dependencies: ["NN", "ReferenceKernels", "TensorCore"], resources: [.copy("Fixtures")], swiftSettings: numeric),
        .testTarget(name: "QuantTests", dependencies: ["NN", "Quant", "ReferenceKernels", "TensorCore"], resources: [.copy("Fixtures")], swiftSettings: numeric),
        .testTarget(name: "OptimTests", dependencies: ["NN", "Optim", "TensorCore"], swiftSettings: numeric),
        .testTarget(name: "DatasetsTests", dependencies: ["Datasets", "TensorCore"], swiftSettings: numeric),
        .testTarget(name: "TrainingTests", dependencies: ["Datasets", "Landscape", "NN", "Optim", "Quant", "TensorCore", "Training"], swiftSettings: numeric),
        .testTarget(name: "PlotTests", dependencies: ["Plot"]),
        .testTarget(name: "ShellLanguageTests", dependencies: ["ShellLanguage"], exclude: ["Fixtures"]),
        .testTarget(name: "ShellCommandsTests", dependencies: ["Datasets", "NN", "Plot", "ShellCommands", "ShellLanguage", "TensorCore"], resources: [.copy("Scripts")]),
    ],
    swiftLanguageModes: [.v6]
)
