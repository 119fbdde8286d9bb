// Tensor: a shape and contiguous Float32 storage, row-major (NCHW for images).
// Value semantics through Array's copy-on-write; kernels take unsafe pointers.

public struct Tensor: Equatable, Sendable {
    /// Dimensions, outermost first. Images are [N, C, H, W]; weights of a conv are [Cout, Cin, kh, kw].
    public var shape: [Int]
    /// Elements in row-major order; `data.count == shape.product`.
    public var data: [Float]

    public init(shape: [Int], data: [Float]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in shape \(shape)")
        precondition(shape.reduce(1, *) == data.count,
                     "shape \(shape) holds \(shape.reduce(1, *)) elements, data has \(data.count)")
        self.shape = shape
        self.data = data
    }

    public init(shape: [Int], repeating value: Float = 0) {
        self.shape = shape
        self.data = [Float](repeating: value, count: shape.reduce(1, *))
    }

    public static func zeros(_ shape: [Int]) -> Tensor { Tensor(shape: shape, repeating: 0) }
    public static func zeros(like t: Tensor) -> Tensor { Tensor(shape: t.shape, repeating: 0) }
    public static func scalar(_ v: Float) -> Tensor { Tensor(shape: [1], data: [v]) }

    @inlinable public var count: Int { data.count }
    @inlinable public var rank: Int { shape.count }
    /// Size of dimension `i`; negative `i` counts from the end.
    @inlinable public func dim(_ i: Int) -> Int { shape[i < 0 ? shape.count + i : i] }

    /// Same storage, new shape with the same element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        Tensor(shape: newShape, data: data)
    }

    /// Sets every element to zero, keeping the allocation.
    public mutating func zero() {
        data.withUnsafeMutableBufferPointer { p in
            for i in 0..<p.count { p[i] = 0 }
        }
    }

    public subscript(i: Int) -> Float {
        get { data[i] }
        set { data[i] = newValue }
    }

    /// Index of an element of a rank-4 tensor.
    @inlinable public func offset(_ n: Int, _ c: Int, _ h: Int, _ w: Int) -> Int {
        ((n * shape[1] + c) * shape[2] + h) * shape[3] + w
    }

    /// The slice of the outermost dimension [start, start+length).
    public func rows(_ start: Int, _ length: Int) -> Tensor {
        let inner = shape.dropFirst().reduce(1, *)
        var s = shape
        s[0] = length
        return Tensor(shape: s, data: Array(data[(start * inner)..<((start + length) * inner)]))
    }

    /// Concatenates along the outermost dimension.
    public static func concatenate(_ parts: [Tensor]) -> Tensor {
        precondition(!parts.isEmpty, "concatenate needs at least one tensor")
        let inner = Array(parts[0].shape.dropFirst())
        var out = [Float]()
        out.reserveCapacity(parts.reduce(0) { $0 + $1.count })
        var n = 0
        for p in parts {
            precondition(Array(p.shape.dropFirst()) == inner, "concatenate: shapes \(parts[0].shape) and \(p.shape) differ past dim 0")
            out.append(contentsOf: p.data)
            n += p.shape[0]
        }
        return Tensor(shape: [n] + inner, data: out)
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let head = data.prefix(8).map { String(format: "%.4g", Double($0)) }.joined(separator: ", ")
        return "Tensor(\(shape), [\(head)\(count > 8 ? ", …" : "")])"
    }
}

import Foundation
