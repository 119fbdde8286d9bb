// Elementwise and reduction kernels. Plain loops over unsafe buffers auto-vectorise at -O;
// reductions accumulate in SIMD lanes (and Double where precision matters).

extension Tensor {
    /// self += alpha · other
    public mutating func add(_ other: Tensor, scaled alpha: Float = 1) {
        precondition(count == other.count, "add: \(shape) vs \(other.shape)")
        data.withUnsafeMutableBufferPointer { d in
            other.data.withUnsafeBufferPointer { o in
                for i in 0..<d.count { d[i] += alpha * o[i] }
            }
        }
    }

    /// self *= alpha
    public mutating func scale(by alpha: Float) {
        data.withUnsafeMutableBufferPointer { d in
            for i in 0..<d.count { d[i] *= alpha }
        }
    }

    public func scaled(by alpha: Float) -> Tensor { var t = self; t.scale(by: alpha); return t }

    public static func + (a: Tensor, b: Tensor) -> Tensor { var t = a; t.add(b); return t }
    public static func - (a: Tensor, b: Tensor) -> Tensor { var t = a; t.add(b, scaled: -1); return t }

    /// Sum of all elements, accumulated in Double.
    public func sum() -> Double {
        data.withUnsafeBufferPointer { laneSum($0, lanes: SIMD8<Double>.self, { $0 }, { $0 }) }
    }

    public func mean() -> Double { count == 0 ? 0 : sum() / Double(count) }

    /// Sum of squares, accumulated in Double.
    public func squaredNorm() -> Double {
        data.withUnsafeBufferPointer { laneSum($0, lanes: SIMD4<Double>.self, { $0 * $0 }, { $0 * $0 }) }
    }

    public func norm() -> Double { squaredNorm().squareRoot() }

    /// Dot product accumulated in Double.
    public func dot(_ other: Tensor) -> Double {
        precondition(count == other.count, "dot: \(shape) vs \(other.shape)")
        return data.withUnsafeBufferPointer { a in
            other.data.withUnsafeBufferPointer { b in
                var s = 0.0
                for i in 0..<a.count { s += Double(a[i]) * Double(b[i]) }
                return s
            }
        }
    }

    public func maxAbs() -> Float {
        var m: Float = 0
        for v in data { let a = abs(v); if a > m { m = a } }
        return m
    }

    /// True when every element is finite.
    public var isFinite: Bool {
        data.withUnsafeBufferPointer { p in
            var bad = false
            for i in 0..<p.count where !p[i].isFinite { bad = true; break }
            return !bad
        }
    }

    /// Largest |a − b| / max(1, |b|) over elements, for tests.
    public func maxRelativeDifference(_ other: Tensor) -> Float {
        precondition(count == other.count, "compare: \(shape) vs \(other.shape)")
        var m: Float = 0
        for i in 0..<count {
            let d = abs(data[i] - other.data[i]) / max(1, abs(other.data[i]))
            if d > m || d.isNaN { m = d.isNaN ? .infinity : d }
        }
        return m
    }
}

/// Σ term(x) over `p` in Double: one running sum per lane of `Lanes` (element i in lane i mod width),
/// the lanes added together, then the elements past the last whole lane in order. `laneTerm` and
/// `term` compute the same term, on a lane vector and on one value.
@inline(__always)
func laneSum<Lanes: SIMD>(_ p: UnsafeBufferPointer<Float>, lanes: Lanes.Type, _ laneTerm: (Lanes) -> Lanes,
                          _ term: (Double) -> Double) -> Double where Lanes.Scalar == Double {
    let width = Lanes.scalarCount
    var acc = Lanes()
    var i = 0
    while i + width <= p.count {
        var v = Lanes()
        for k in 0..<width { v[k] = Double(p[i + k]) }
        acc += laneTerm(v)
        i += width
    }
    var s = acc.sum()
    while i < p.count { s += term(Double(p[i])); i += 1 }
    return s
}
