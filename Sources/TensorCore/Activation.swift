// Elementwise ReLU kernels in explicit 16-lane SIMD: the scalar `v > 0 ? v : 0` loop compiles to
// branches on this target (baseline x86-64), which mispredict on activations.

/// y[i] = max(x[i], 0) for i in 0..<count (NaN passes through).
@inlinable
public func reluForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    while i + 16 <= count {
        let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self)
        UnsafeMutableRawPointer(y + i).storeBytes(of: v.replacing(with: 0, where: v .< 0), as: SIMD16<Float>.self)
        i += 16
    }
    while i < count { let v = x[i]; y[i] = v < 0 ? 0 : v; i += 1 }
}

/// dx[i] = y[i] > 0 ? dy[i] : 0 for i in 0..<count, where y is the ReLU output.
@inlinable
public func reluBackward(output y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    while i + 16 <= count {
        let v = UnsafeRawPointer(y + i).loadUnaligned(as: SIMD16<Float>.self)
        let g = UnsafeRawPointer(dy + i).loadUnaligned(as: SIMD16<Float>.self)
        UnsafeMutableRawPointer(dx + i).storeBytes(of: g.replacing(with: 0, where: .!(v .> 0)), as: SIMD16<Float>.self)
        i += 16
    }
    while i < count { dx[i] = y[i] > 0 ? dy[i] : 0; i += 1 }
}
