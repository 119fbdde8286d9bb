// Integer inference for a quantized convolution, plugged in as the Conv2d's `inferenceOverride`
// (used when no backward is needed). From the export alone:
//   a = round½even(clamp(x/s_a, Qn_a, Qp_a))          integer activation codes (the quantizer's own arithmetic)
//   acc[co, p] = Σ_k W[co, k] · col(a)[k, p]            Int8 weight codes × activation codes, Int32 accumulators
//   y[co, p] = Float(acc) · (s_w[co] · s_a) + bias[co]
// with col the im2col of the code image (padding with code 0, which is the value 0: zero point 0).
// Bounds: |W| ≤ 128, |a| ≤ 255, so |acc| ≤ 128·255·K < 2^31 for K = Cin·k·k ≤ 65 793; `init`
// checks it. Float(acc) is exact below 2^24; above that the rescale rounds like any Float product.
import NN
import TensorCore

public final class IntegerConv: ConvInferenceOverride {
    public let layer: String
    /// (Cout, Cin, k, k) integer weight codes.
    public let weightCodes: [Int8]
    public let weightShape: [Int]
    /// One per output channel, or one for the whole weight.
    public let weightScales: [Float]
    /// The input quantizer's integer grid: activations become codes in [lowest, highest] of step `scale`.
    public let input: IntegerGrid
    /// Weight codes widened once to Int16 for the multiply-accumulate loop.
    private let weight16: [Int16]

    public init(layer: String, weightCodes: [Int8], weightShape: [Int], weightScales: [Float], input: IntegerGrid) {
        precondition(weightShape.count == 4 && weightShape.reduce(1, *) == weightCodes.count,
                     "IntegerConv \(layer): \(weightCodes.count) codes for shape \(weightShape)")
        precondition(weightScales.count == 1 || weightScales.count == weightShape[0],
                     "IntegerConv \(layer): \(weightScales.count) weight scales for \(weightShape[0]) channels")
        let k = weightShape[1] * weightShape[2] * weightShape[3]
        let maxCode = max(abs(input.lowest), abs(input.highest))
        precondition(Int64(128) * Int64(maxCode) * Int64(k) < Int64(Int32.max),
                     "IntegerConv \(layer): Int32 accumulators could overflow for K = \(k), codes up to \(maxCode)")
        self.layer = layer
        self.weightCodes = weightCodes
        self.weightShape = weightShape
        self.weightScales = weightScales
        self.input = input
        self.weight16 = weightCodes.map { Int16($0) }
    }

    /// Built from a fake-quantized conv (both quantizers present, weight codes within Int8).
    public convenience init(conv: Conv2d) {
        guard let wq = conv.weightQuantizer as? Quantizer, let aq = conv.inputQuantizer as? Quantizer else {
            preconditionFailure("IntegerConv: \(conv.name) needs a weight and an input Quantizer")
        }
        precondition(wq.lowest >= -128 && wq.highest <= 127, "IntegerConv: \(conv.name) weight codes [\(wq.lowest), \(wq.highest)] exceed Int8")
        let codes = wq.integerCodes(conv.weight.value).data.map { Int8($0) }
        let scales = wq.effectiveScales
        self.init(layer: conv.name, weightCodes: codes, weightShape: conv.weight.shape,
                  weightScales: scales,
                  input: IntegerGrid(scale: aq.effectiveScales[0], lowest: aq.lowest, highest: aq.highest))
    }

    public func forward(_ x: Tensor, conv: Conv2d) -> Tensor {
        let cout = weightShape[0], cin = weightShape[1], kernel = weightShape[2]
        precondition(x.rank == 4 && x.shape[1] == cin, "IntegerConv \(layer): input \(x.shape) for weight \(weightShape)")
        precondition(conv.kernelSize == kernel && conv.outChannels == cout, "IntegerConv \(layer): attached to a conv of another shape")
        let batch = x.shape[0]
        let g = ConvGeometry(channels: cin, height: x.shape[2], width: x.shape[3], kernelH: kernel, kernelW: kernel,
                             strideH: conv.stride, strideW: conv.stride, padH: conv.padding, padW: conv.padding)
        let k = g.colRows, ohw = g.colCols
        let codes = input.codes(x)
        let bias = conv.bias?.value.data
        let rescale = (0..<cout).map { weightScales.count == 1 ? weightScales[0] * input.scale : weightScales[$0] * input.scale }
        var y = Tensor(shape: [batch, cout, g.outHeight, g.outWidth])
        let imageSize = cin * g.height * g.width
        y.data.withUnsafeMutableBufferPointer { yp in
            let ybase = yp.baseAddress!
            codes.withUnsafeBufferPointer { cp in
                weight16.withUnsafeBufferPointer { wp in
                    // One image per work item: columns (K, OH·OW) of Int16 codes, then Int32 GEMM.
                    Parallel.forEach(batch, costPerItem: cout * k * ohw) { images in
                        var col = [Int16](repeating: 0, count: k * ohw)
                        var acc = [Int32](repeating: 0, count: ohw)
                        for n in images {
                            col.withUnsafeMutableBufferPointer { colp in
                                integerIm2col(cp.baseAddress! + n * imageSize, g, colp.baseAddress!)
                            }
                            for co in 0..<cout {
                                acc.withUnsafeMutableBufferPointer { ap in
                                    col.withUnsafeBufferPointer { colp in
                                        integerRowTimesColumns(weights: wp.baseAddress! + co * k, k: k,
                                                               columns: colp.baseAddress!, width: ohw, acc: ap.baseAddress!)
                                    }
                                }
                                let out = ybase + (n * cout + co) * ohw
                                let r = rescale[co], b = bias?[co] ?? 0
                                for p in 0..<ohw { out[p] = Float(acc[p]) * r + b }
                            }
                        }
                    }
                }
            }
        }
        return y
    }
}

/// A per-tensor quantizer's integer grid (zero point 0): x becomes round½even(clamp(x/scale, lowest, highest)).
public struct IntegerGrid: Sendable, Equatable {
    public var scale: Float
    public var lowest: Int
    public var highest: Int

    public init(scale: Float, lowest: Int, highest: Int) {
        self.scale = scale
        self.lowest = lowest
        self.highest = highest
    }

    /// The integer codes of x (same arithmetic as `Quantizer.integerCodes`).
    func codes(_ x: Tensor) -> [Int16] {
        var codes = [Float](repeating: 0, count: x.count)
        x.data.withUnsafeBufferPointer { xp in
            codes.withUnsafeMutableBufferPointer { cp in
                QuantizerKernels.codes(x: xp.baseAddress!, codes: cp.baseAddress!, count: x.count, scales: [scale],
                                       lowest: Float(lowest), highest: Float(highest))
            }
        }
        return codes.map { Int16($0) }
    }
}

/// acc[p] = Σ_k w[k]·col[k·width + p] in Int32 (wrapping ops: the bound is checked at init).
@inline(__always)
func integerRowTimesColumns(weights w: UnsafePointer<Int16>, k: Int, columns col: UnsafePointer<Int16>,
                            width: Int, acc: UnsafeMutablePointer<Int32>) {
    for p in 0..<width { acc[p] = 0 }
    for kk in 0..<k {
        let wv = Int32(w[kk])
        if wv == 0 { continue }
        let row = col + kk * width
        for p in 0..<width { acc[p] &+= wv &* Int32(row[p]) }
    }
}

/// im2col over an Int16 code image (C, H, W) into (C·kh·kw, OH·OW); padding is code 0.
func integerIm2col(_ x: UnsafePointer<Int16>, _ g: ConvGeometry, _ col: UnsafeMutablePointer<Int16>) {
    let oh = g.outHeight, ow = g.outWidth, ld = oh * ow
    for c in 0..<g.channels {
        let xc = x + c * g.height * g.width
        for i in 0..<g.kernelH {
            for j in 0..<g.kernelW {
                let dst = col + ((c * g.kernelH + i) * g.kernelW + j) * ld
                for yy in 0..<oh {
                    let iy = yy * g.strideH + i - g.padH
                    let d = dst + yy * ow
                    if iy < 0 || iy >= g.height {
                        for x0 in 0..<ow { d[x0] = 0 }
                        continue
                    }
                    let src = xc + iy * g.width
                    for x0 in 0..<ow {
                        let ix = x0 * g.strideW + j - g.padW
                        d[x0] = (ix >= 0 && ix < g.width) ? src[ix] : 0
                    }
                }
            }
        }
    }
}

/// Plugs an `IntegerConv` into every conv that has both a weight and an input `Quantizer`, from
/// the current fake-quantized state. Returns the layers converted. `removeQuantizers` or
/// `removeIntegerInference` undoes it.
@discardableResult
public func attachIntegerInference(to model: Module) -> [String] {
    var converted: [String] = []
    for conv in convolutions(in: model) {
        guard let wq = conv.weightQuantizer as? Quantizer, conv.inputQuantizer is Quantizer,
              wq.lowest >= -128, wq.highest <= 127 else { continue }
        conv.inferenceOverride = IntegerConv(conv: conv)
        converted.append(conv.name)
    }
    return converted
}

public func removeIntegerInference(from model: Module) {
    for conv in convolutions(in: model) { conv.inferenceOverride = nil }
}
