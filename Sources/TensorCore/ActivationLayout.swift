// How an image batch's elements lie in memory. The logical shape is always (N, C, H, W); the layout
// says in which order `Tensor.data` holds the elements:
//   plain       NCHW: element (n, c, h, w) at ((n·C + c)·H + h)·W + w
//   blocked(b)  oneDNN's nChw{b}c: channels in blocks of b, the b channels of one pixel adjacent:
//               element (n, c, h, w) at (((n·C/b + c/b)·H + h)·W + w)·b + c mod b   (C a multiple of b)
// On the oneDNN backend the residual stages keep their activations blocked between layers, so the
// convolutions read and write them without reordering (docs/backends.md, "Blocked activations").
// A blocked tensor never leaves the module that made it: every Module's forward(_:_:) takes and
// returns plain tensors.
import Synchronization

/// Reorders performed so far (tests check that a network step needs none inside the engine).
private let reorderCounter = Atomic<Int>(0)

/// The memory order of a rank-4 activation tensor.
public enum ActivationLayout: Hashable, Sendable, CustomStringConvertible {
    /// NCHW.
    case plain
    /// oneDNN's nChw{b}c with channel block b (8 or 16).
    case blocked(Int)

    /// The channel block: 0 for plain.
    public var block: Int {
        switch self {
        case .plain: return 0
        case .blocked(let b): return b
        }
    }

    /// Whether a tensor with `channels` channels can be held in this layout (no padding: blocked
    /// layouts need a multiple of the block).
    public func holds(channels: Int) -> Bool {
        switch self {
        case .plain: return true
        case .blocked(let b): return b > 0 && channels % b == 0
        }
    }

    /// Index in `data` of element (n, c, h, w) of a tensor of `shape` (N, C, H, W) in this layout.
    @inlinable
    public func offset(in shape: [Int], _ n: Int, _ c: Int, _ h: Int, _ w: Int) -> Int {
        switch self {
        case .plain: return ((n * shape[1] + c) * shape[2] + h) * shape[3] + w
        case .blocked(let b): return (((n * (shape[1] / b) + c / b) * shape[2] + h) * shape[3] + w) * b + c % b
        }
    }

    /// Where the (H, W) plane of image n, channel c starts in a tensor of `shape` in this layout, and
    /// the distance between its consecutive pixels (1 plain, b blocked).
    @inlinable
    public func plane(in shape: [Int], _ n: Int, _ c: Int) -> (base: Int, stride: Int) {
        switch self {
        case .plain: return ((n * shape[1] + c) * shape[2] * shape[3], 1)
        case .blocked(let b): return ((n * (shape[1] / b) + c / b) * shape[2] * shape[3] * b + c % b, b)
        }
    }

    /// Calls of `Tensor.reordered` that moved data, since the process started.
    public static var reorders: Int { reorderCounter.load(ordering: .relaxed) }

    public var description: String {
        switch self {
        case .plain: return "nchw"
        case .blocked(let b): return "nChw\(b)c"
        }
    }
}

extension Tensor {
    /// The same (N, C, H, W) tensor with its elements moved from layout `from` to layout `to`.
    /// Both layouts must hold the channel count; the same layout returns `self`.
    public func reordered(from: ActivationLayout, to: ActivationLayout) -> Tensor {
        if from == to { return self }
        precondition(rank == 4, "reorder \(from) -> \(to) needs (N, C, H, W), got \(shape)")
        reorderCounter.wrappingAdd(1, ordering: .relaxed)
        let n = shape[0], c = shape[1], hw = shape[2] * shape[3]
        precondition(from.holds(channels: c) && to.holds(channels: c),
                     "reorder \(from) -> \(to): \(c) channels do not fit")
        if case .blocked = from, case .blocked = to {
            return reordered(from: from, to: .plain).reordered(from: .plain, to: to)
        }
        let toBlocked = to != .plain
        let b = toBlocked ? to.block : from.block
        let blocks = c / b
        var out = Tensor(uninitializedShape: shape)
        data.withUnsafeBufferPointer { src in
        out.data.withUnsafeMutableBufferPointer { dst in
            // One item = the b channels of one channel block of one image: b·hw elements either side.
            Parallel.forEach(n * blocks, costPerItem: b * hw, minimumWork: 1 << 16) { range in
                for item in range {
                    let image = item / blocks, cb = item % blocks
                    // plain side: channel cb·b + ci of this image starts at ((image·C + cb·b + ci)·hw)
                    let plainBase = (image * c + cb * b) * hw
                    // blocked side: this block's hw·b run
                    let blockedBase = (image * blocks + cb) * hw * b
                    if toBlocked {
                        let s = src.baseAddress! + plainBase, d = dst.baseAddress! + blockedBase
                        for ci in 0..<b {
                            let sc = s + ci * hw
                            for p in 0..<hw { d[p * b + ci] = sc[p] }
                        }
                    } else {
                        let s = src.baseAddress! + blockedBase, d = dst.baseAddress! + plainBase
                        for ci in 0..<b {
                            let dc = d + ci * hw
                            for p in 0..<hw { dc[p] = s[p * b + ci] }
                        }
                    }
                }
            }
        }}
        return out
    }
}
