// `export onnx`: the model as a standard ONNX graph (QuantizeLinear/DequantizeLinear for the
// quantized layers, plain Conv/Gemm for full-precision ones), checked here against our own integer
// path, with an optional reference batch (inputs and fqat-shell's logits) for checks in a runtime.
import Datasets
import Foundation
import NN
import Quant
import ShellLanguage
import TensorCore
import Training

extension ShellCommands {
    struct ExportONNXArguments: CommandArguments {
        @Positional(.path, help: "the .onnx file to write") var path: String
        @Option(.int(0...100_000), help: "images for the integer-path check (0 skips it)") var check = 512
        @Option(.path, help: "also write a reference batch (inputs and logits) as safetensors") var reference: String?
        @Option(.int(1...4096), help: "images in the reference batch") var images = 32
    }

    static func exportONNXCommand(_ s: Session) -> CommandSpec {
        CommandSpec(
            name: "onnx", summary: "export the model as an ONNX graph (Q/DQ for quantized layers), opset 13",
            discussion: """
            A quantized input becomes Clip → QuantizeLinear → DequantizeLinear (per-tensor scale, zero point 0,
            int8 for a signed range, uint8 for an unsigned one); a quantized weight is stored as int8 codes with
            a DequantizeLinear (per-channel scales on axis 0); full-precision layers are plain Conv/Gemm, and a
            full-precision model is plain ONNX. BatchNorm is kept as BatchNormalization. Metadata: bit widths,
            ranges and method per layer, architecture, provenance. A quantized model is also checked here:
            the integer path against the fake-quantized model on `check` images (as `export integer`).
            `reference=FILE` writes `images` evaluation images and fqat-shell's logits for them as
            safetensors ("input", "logits"), to compare a runtime's outputs with (docs/export.md).
            """,
            arguments: ExportONNXArguments.self,
            examples: ["export onnx runs/w4a4.onnx", "export onnx runs/w4a4.onnx reference=runs/w4a4.ref.safetensors images=64"],
            run: { args, inv in
                let net = try s.requireNetwork()
                let path = args.path
                if args.reference != nil && s.dataset == nil {
                    throw inv.error("reference= needs evaluation images: load data first (`data …`)", argument: args.$reference)
                }
                let dir = (path as NSString).deletingLastPathComponent
                if !dir.isEmpty { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
                let label = s.quantization.map(quantLabel) ?? (s.isQuantized ? "quantized" : "full precision")
                var metadata: [(String, String)] = [
                    ("fqat.architecture", net.architecture), ("fqat.width", String(s.modelWidth)),
                    ("fqat.in_channels", String(net.inChannels)), ("fqat.classes", String(net.classes)),
                    ("fqat.quantization", label),
                ]
                if let q = s.quantization { metadata.append(("fqat.method", q.method.rawValue)) }
                metadata.append(("fqat.provenance", try ModelFile.encodeJSON(s.modelProvenance)))
                let summary: ONNXExportSummary
                do {
                    summary = try exportONNX(net, to: path, metadata: metadata,
                                             docString: "\(net.architecture) \(label), exported by fqat-shell (docs/export.md)")
                } catch let e as ONNXExportError {
                    throw inv.error(e.description, argument: args.$path)
                }
                let ops = summary.opCounts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
                inv.print("exported \(net.architecture) (\(label)) to \(path): \(summary.nodes) nodes, \(summary.bytes) bytes, opset \(ONNXModel.opsetVersion)")
                inv.print("  \(summary.quantizedLayers.count) quantized layers; \(ops)")
                var fields: [(String, Value)] = [("path", .string(path)), ("bytes", .int(summary.bytes)),
                                                 ("nodes", .int(summary.nodes)),
                                                 ("quantized_layers", .int(summary.quantizedLayers.count))]
                if s.isQuantized && args.check > 0 && s.dataset != nil {
                    // Our integer path needs our own integer export; written to a temporary file.
                    let tmp = FileManager.default.temporaryDirectory
                        .appendingPathComponent("fqat-onnx-check-\(ProcessInfo.processInfo.processIdentifier)-\(UInt32.random(in: 0...UInt32.max)).safetensors").path
                    defer { try? FileManager.default.removeItem(atPath: tmp) }
                    if (try? exportIntegerModel(net, to: tmp, width: s.modelWidth)) != nil {
                        fields += try integerPathCheck(s, net, exportPath: tmp, images: args.check, inv)
                    } else {
                        inv.print("  (no integer-path check: the model has no integer-exportable quantized layer)")
                    }
                }
                if let ref = args.reference {
                    let (images, logits, codes) = try referenceBatch(s, net, count: args.images)
                    let rdir = (ref as NSString).deletingLastPathComponent
                    if !rdir.isEmpty { try FileManager.default.createDirectory(atPath: rdir, withIntermediateDirectories: true) }
                    try SafeTensors.write([("input", .float(images)), ("logits", .float(logits))] + codes,
                                          metadata: ["onnx": (path as NSString).lastPathComponent,
                                                     "what": "evaluation images, fqat-shell's eval-mode logits for them and every quantized input's codes"],
                                          to: URL(fileURLWithPath: ref))
                    inv.print("  reference batch: \(images.shape[0]) images and their logits in \(ref)")
                    fields.append(("reference", .string(ref)))
                }
                return .record(Record(fields))
            })
    }

    /// The first `count` held-out-split images of every domain in turn, the model's eval logits and
    /// the integer codes of every quantized input ("<layer>.input_codes").
    static func referenceBatch(_ s: Session, _ net: Network, count: Int) throws -> (Tensor, Tensor, [(String, SafeTensorValue)]) {
        let (dataset, _) = try s.requireData()
        let splits = dataset.domainBedSplits(trialSeed: s.settings.trialSeed)
        var data: [Float] = []
        var shape: [Int] = []
        var taken = 0
        outer: for d in 0..<dataset.domains.count {
            var it = EvaluationSet(domain: d, part: .out, indices: splits[d].outIndices).batches(of: dataset, batchSize: 64)
            while let b = try it.next() {
                let per = b.images.count / b.images.shape[0]
                shape = Array(b.images.shape.dropFirst())
                for i in 0..<b.images.shape[0] {
                    data += b.images.data[i * per..<(i + 1) * per]
                    taken += 1
                    if taken >= count { break outer }
                }
            }
        }
        guard taken > 0 else { throw CommandError("no evaluation images for the reference batch") }
        let images = Tensor(shape: [taken] + shape, data: data)
        // Every quantized input's integer codes on this batch (the quantizer's own arithmetic), so a
        // runtime's QuantizeLinear outputs can be compared code by code.
        var codes: [(String, SafeTensorValue)] = []
        var saved: [(Quantizer, ((Tensor, Tensor) -> Void)?)] = []
        for conv in convolutions(in: net) {
            guard let q = conv.inputQuantizer as? Quantizer, q.quantizationEnabled else { continue }
            saved.append((q, q.observer))
            let name = "\(conv.name).input_codes", unsigned = q.range == .unsigned
            q.observer = { x, _ in
                let c = q.integerCodes(x)
                codes.append((name, unsigned ? .uint8(c.data.map { UInt8($0) }, shape: c.shape)
                                             : .int8(c.data.map { Int8($0) }, shape: c.shape)))
            }
        }
        defer { for (q, o) in saved { q.observer = o } }
        let logits = net.forward(images, .eval)
        return (images, logits, codes)
    }
}
