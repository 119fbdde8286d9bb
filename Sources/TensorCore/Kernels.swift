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
        data.withUnsafeBufferPointer { p in
            var acc = SIMD8<Double>()
            let n8 = p.count / 8 * 8
            var i = 0
            while i < n8 {
                acc += SIMD8<Double>(Double(p[i]), Double(p[i+1]), Double(p[i+2]), Double(p[i+3]),
                                     Double(p[i+4]), Double(p[i+5]), Double(p[i+6]), Double(p[i+7]))
                i += 8
            }
            var s = acc.sum()
            while i < p.count { s += Double(p[i]); i += 1 }
            return s
        }
    }

    public func mean() -> Double { count == 0 ? 0 : sum() / Double(count) }

    /// Sum of squares, accumulated in Double.
    public func squaredNorm() -> Double {
        data.withUnsafeBufferPointer { p in
            var acc = SIMD4<Double>()
            let n4 = p.count / 4 * 4
            var i = 0
            while i < n4 {
                let v = SIMD4<Double>(Double(p[i]), Double(p[i+1]), Double(p[i+2]), Double(p[i+3]))
                acc += v * v
                i += 4
            }
            var s = acc.sum()
            while i < p.count { s += Double(p[i]) * Double(p[i]); i += 1 }
            return s
        }
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
