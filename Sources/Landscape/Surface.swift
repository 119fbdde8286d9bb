// Loss landscapes on demand (Li et al. 2018; docs/landscape.md): 1-D lines, 2-D planes and the
// interpolation line between two models, evaluated through whatever model is given (the
// fake-quantized one when quantizers are attached: their step sizes are parameters, so they either
// stay fixed or move with the directions, and quantization is re-applied in every forward pass).
//
// The evaluation of one point is the caller's closure (the data module builds it); this file owns the
// loop: set θ(α, β), evaluate, record, report progress, poll for a stop, resume from and write to the
// cache, and put the original tensors back exactly whatever happens.
import Foundation
import NN
import TensorCore

/// Everything besides the model's tensors that determines a surface. Part of the cache key.
public struct LandscapeRequest: Codable, Hashable, Sendable {
    public enum Kind: String, Codable, CaseIterable, Hashable, Sendable {
        /// 1-D along one random direction.
        case line
        /// 2-D over two random directions.
        case plane
        /// 1-D from the current model (α = 0) to an endpoint model (α = 1).
        case interpolation
    }

    public var kind: Kind
    /// α axis.
    public var x: GridAxis
    /// β axis (planes only).
    public var y: GridAxis?
    /// Random-direction options; interpolation uses only `target` and `includeBuffers`.
    public var directions: DirectionOptions
    /// The caller's description of the evaluation set (split, domains, batch size, transform, …).
    public var evaluation: String
    /// The caller's description of what the tensors alone do not say: architecture, quantizer bit
    /// widths and granularity, BN mode. Two models with equal tensors but different bits must differ here.
    public var model: String

    public init(kind: Kind, x: GridAxis, y: GridAxis? = nil, directions: DirectionOptions = DirectionOptions(),
                evaluation: String, model: String = "") {
        self.kind = kind
        self.x = x
        self.y = y
        self.directions = directions
        self.evaluation = evaluation
        self.model = model
    }

    public static func line(_ x: GridAxis, directions: DirectionOptions = DirectionOptions(), evaluation: String,
                            model: String = "") -> LandscapeRequest {
        LandscapeRequest(kind: .line, x: x, directions: directions, evaluation: evaluation, model: model)
    }

    public static func plane(x: GridAxis, y: GridAxis, directions: DirectionOptions = DirectionOptions(),
                             evaluation: String, model: String = "") -> LandscapeRequest {
        LandscapeRequest(kind: .plane, x: x, y: y, directions: directions, evaluation: evaluation, model: model)
    }

    /// The line θ₁ → θ₂ (the original's --model_file2, e.g. x = -0.5:1.5:401). Buffers move by default
    /// (--dir_type states).
    public static func interpolation(_ x: GridAxis, target: PerturbationTarget = .both, includeBuffers: Bool = true,
                                     evaluation: String, model: String = "") -> LandscapeRequest {
        LandscapeRequest(kind: .interpolation, x: x,
                         directions: DirectionOptions(target: target, includeBuffers: includeBuffers),
                         evaluation: evaluation, model: model)
    }

    public var totalPoints: Int { x.count * (y?.count ?? 1) }

    func validate() throws {
        switch kind {
        case .plane:
            guard y != nil else { throw LandscapeError.invalidRequest("a 2-D landscape needs a y axis (y = min:max:count)") }
        case .line, .interpolation:
            guard y == nil else { throw LandscapeError.invalidRequest("a \(kind.rawValue) landscape has no y axis; use a plane for 2-D") }
        }
    }
}

/// A computed (or partly computed) surface: the values, how they were made, and its cache key.
public struct LandscapeSurface: Codable, Sendable {
    public static let currentFormatVersion = 1
    public var formatVersion: Int
    public var key: LandscapeKey
    public var request: LandscapeRequest
    /// α values (x axis).
    public var alphas: [Double]
    /// β values (y axis); nil for 1-D surfaces.
    public var betas: [Double]?
    /// loss[yIndex][xIndex] (one row for 1-D); NaN where not evaluated yet.
    public var loss: [[Double]]
    /// accuracy[yIndex][xIndex], in the closure's units (percent by convention).
    public var accuracy: [[Double]]
    /// Points done, in flat order k = yIndex·nx + xIndex (x fastest, as meshgrid(x, y).ravel()).
    public var completedPoints: Int
    /// cos ∠(δ, η) for planes.
    public var cosine: Double?
    /// ‖δ‖ (and ‖η‖).
    public var directionNorms: [Double]
    /// Elements moved per point (nonzero direction entries).
    public var movingElements: Int
    /// Names of the moved state entries (the interpolation endpoint's description is the caller's).
    public var movingEntries: [String]
    /// Wall time spent computing, summed over resumed runs.
    public var computeSeconds: Double

    public var totalPoints: Int { alphas.count * (betas?.count ?? 1) }
    public var isComplete: Bool { completedPoints >= totalPoints }
    public var dimension: Int { betas == nil ? 1 : 2 }

    /// (α, β, yIndex, xIndex) of flat point k.
    public func point(_ k: Int) -> (alpha: Double, beta: Double, row: Int, column: Int) {
        let nx = alphas.count
        let row = k / nx, column = k % nx
        return (alphas[column], betas?[row] ?? 0, row, column)
    }

    init(key: LandscapeKey, request: LandscapeRequest) {
        formatVersion = Self.currentFormatVersion
        self.key = key
        self.request = request
        alphas = request.x.values
        betas = request.y?.values
        let rows = betas?.count ?? 1
        loss = Array(repeating: Array(repeating: .nan, count: alphas.count), count: rows)
        accuracy = loss
        completedPoints = 0
        cosine = nil
        directionNorms = []
        movingElements = 0
        movingEntries = []
        computeSeconds = 0
    }
}

/// Reported after every evaluated point.
public struct LandscapeProgress: Sendable {
    /// Points finished, counting points resumed from the cache.
    public var done: Int
    public var total: Int
    /// Seconds since this computation started.
    public var elapsed: Double
    /// Points taken from a cached partial surface at the start.
    public var resumed: Int
    public var alpha: Double
    public var beta: Double?
    public var loss: Double
    public var accuracy: Double

    /// Estimated seconds left at the current pace (nil before the first evaluated point).
    public var remaining: Double? {
        let evaluated = done - resumed
        guard evaluated > 0 else { return nil }
        return elapsed / Double(evaluated) * Double(total - done)
    }
}

/// What `Landscape.compute` returns.
public struct LandscapeResult: Sendable {
    public var surface: LandscapeSurface
    /// The complete surface came from the cache; nothing was evaluated.
    public var cacheHit: Bool
    /// Points taken from a cached partial surface.
    public var resumedPoints: Int
    /// Points evaluated in this call.
    public var evaluatedPoints: Int
    /// False when `shouldStop` ended the computation early (the partial surface is kept and cached).
    public var completed: Bool { surface.isComplete }
    /// Seconds in this call, and the part spent outside the evaluation closure (setting weights, bookkeeping).
    public var seconds: Double
    public var overheadSeconds: Double
    /// The cache file written or read, if a cache was given.
    public var cacheFile: URL?

    public var pointsPerSecond: Double { seconds > 0 ? Double(evaluatedPoints) / seconds : 0 }
}

public enum Landscape {
    /// Computes (or loads, or resumes) the surface `request` describes for `model`.
    ///
    /// - `endpoint`: θ₂ by name (a state dict) for `.interpolation`; ignored otherwise.
    /// - `cache`: where surfaces are looked up by content key and written (atomically); nil = no cache.
    /// - `progress`: called after each evaluated point. `shouldStop`: polled before each point; when it
    ///   returns true the partial surface is returned (and cached, so a later call resumes it).
    /// - `evaluate`: evaluates the model as it currently is (loss, accuracy) — e.g. mean cross-entropy
    ///   and percent correct over a split in eval mode. It may throw `LandscapeStopRequested` (checked per
    ///   batch, so a stop does not wait for a whole point): the point in progress is dropped and the
    ///   computation ends as if `shouldStop` had answered true before it.
    /// Every parameter and buffer is restored to its exact original tensor before returning or
    /// throwing. Errors from `evaluate` are rethrown after the points so far are cached.
    public static func compute(model: Module, request: LandscapeRequest, endpoint: [String: Tensor]? = nil,
                               cache: LandscapeCache? = nil,
                               progress: ((LandscapeProgress) -> Void)? = nil,
                               shouldStop: (() -> Bool)? = nil,
                               evaluate: () throws -> (loss: Double, accuracy: Double)) throws -> LandscapeResult {
        try compute(state: LandscapeState(module: model), request: request, endpoint: endpoint, cache: cache,
                    progress: progress, shouldStop: shouldStop, evaluate: evaluate)
    }

    /// As above, over an explicit state (parameters and buffers).
    public static func compute(state: LandscapeState, request: LandscapeRequest, endpoint: [String: Tensor]? = nil,
                               cache: LandscapeCache? = nil,
                               progress: ((LandscapeProgress) -> Void)? = nil,
                               shouldStop: (() -> Bool)? = nil,
                               evaluate: () throws -> (loss: Double, accuracy: Double)) throws -> LandscapeResult {
        let start = ProcessInfo.processInfo.systemUptime
        try request.validate()
        if request.kind == .interpolation && endpoint == nil {
            throw LandscapeError.invalidRequest("an interpolation landscape needs the endpoint model's tensors (load the second model)")
        }
        let key = self.key(request: request, state: state.namedValues,
                           endpoint: request.kind == .interpolation ? endpoint : nil)
        let file = cache?.fileURL(for: key)

        var surface = LandscapeSurface(key: key, request: request)
        var resumed = 0
        if let cached = cache?.load(key: key, request: request) {
            if cached.isComplete {
                return LandscapeResult(surface: cached, cacheHit: true, resumedPoints: 0, evaluatedPoints: 0,
                                       seconds: ProcessInfo.processInfo.systemUptime - start, overheadSeconds: 0,
                                       cacheFile: file)
            }
            surface = cached
            resumed = cached.completedPoints
        }

        // Directions from the current (origin) values.
        let x: LandscapeDirection, y: LandscapeDirection?
        switch request.kind {
        case .line:
            x = try LandscapeDirection.random(state: state, options: request.directions, count: 1)[0]
            y = nil
        case .plane:
            let d = try LandscapeDirection.random(state: state, options: request.directions, count: 2)
            x = d[0]
            y = d[1]
        case .interpolation:
            x = try LandscapeDirection.between(state: state, endpoint: endpoint!, target: request.directions.target,
                                               includeBuffers: request.directions.includeBuffers)
            y = nil
        }
        surface.cosine = y.flatMap { x.cosine(with: $0) }
        surface.directionNorms = [x.norm] + (y.map { [$0.norm] } ?? [])
        surface.movingElements = x.movingElementCount + (y.map { yd in
            // elements moved by y only (not already counted for x)
            var extra = 0
            for i in yd.tensors.indices where x.tensors[i] == nil { extra += yd.tensors[i].map { $0.data.filter { $0 != 0 }.count } ?? 0 }
            return extra
        } ?? 0)
        surface.movingEntries = state.names.indices.filter { x.tensors[$0] != nil || y?.tensors[$0] != nil }.map { state.names[$0] }

        let perturbation = Perturbation(state: state, x: x, y: y)
        defer { perturbation.restore() }

        let total = surface.totalPoints
        let priorSeconds = surface.computeSeconds
        var evaluated = 0
        var evaluationSeconds = 0.0
        var lastCheckpoint = ProcessInfo.processInfo.systemUptime
        func save() throws {
            surface.computeSeconds = priorSeconds + (ProcessInfo.processInfo.systemUptime - start)
            try cache?.store(surface)
        }

        var k = surface.completedPoints
        do {
            while k < total {
                if shouldStop?() == true { break }
                let p = surface.point(k)
                perturbation.apply(alpha: p.alpha, beta: p.beta)
                let t0 = ProcessInfo.processInfo.systemUptime
                let r = try evaluate()
                evaluationSeconds += ProcessInfo.processInfo.systemUptime - t0
                surface.loss[p.row][p.column] = r.loss
                surface.accuracy[p.row][p.column] = r.accuracy
                k += 1
                evaluated += 1
                surface.completedPoints = k
                let now = ProcessInfo.processInfo.systemUptime
                progress?(LandscapeProgress(done: k, total: total, elapsed: now - start, resumed: resumed,
                                            alpha: p.alpha, beta: surface.betas == nil ? nil : p.beta,
                                            loss: r.loss, accuracy: r.accuracy))
                if let c = cache, k < total, now - lastCheckpoint >= c.checkpointInterval {
                    try save()
                    lastCheckpoint = now
                }
            }
        } catch is LandscapeStopRequested {
            // Stopped inside point k: its partial sums are dropped; points before it are kept below.
        } catch {
            perturbation.restore()
            if evaluated > 0 { try? save() }
            throw error
        }
        perturbation.restore()
        if evaluated > 0 || surface.isComplete { try save() }
        let seconds = ProcessInfo.processInfo.systemUptime - start
        return LandscapeResult(surface: surface, cacheHit: false, resumedPoints: resumed, evaluatedPoints: evaluated,
                               seconds: seconds, overheadSeconds: max(0, seconds - evaluationSeconds),
                               cacheFile: file)
    }

    /// The content key of a surface: a 64-bit hash of the format version, the request (kind, axes,
    /// direction options that matter for the kind, evaluation and model descriptors), every state
    /// tensor (name, kind order, shape, raw bits — parameters including scales, and buffers) and, for
    /// interpolation, every endpoint tensor. Any changed bit of any of these changes the key.
    public static func key(request: LandscapeRequest, state: [(name: String, value: Tensor)],
                           endpoint: [String: Tensor]? = nil) -> LandscapeKey {
        var h = ContentHasher()
        h.combine("fqat-landscape/\(LandscapeSurface.currentFormatVersion)")
        h.combine(request.kind.rawValue)
        for axis in [request.x] + (request.y.map { [$0] } ?? []) {
            h.combine(axis.minimum)
            h.combine(axis.maximum)
            h.combine(axis.count)
        }
        h.combine(request.y != nil)
        let d = request.directions
        if request.kind != .interpolation {
            h.combine(d.seed)
            h.combine(d.normalization.rawValue)
            h.combine(d.smallTensors.rawValue)
            h.combine(d.scales.rawValue)
        }
        h.combine(d.target.rawValue)
        h.combine(d.includeBuffers)
        h.combine(request.evaluation)
        h.combine(request.model)
        h.combine(state.count)
        for (name, value) in state {
            h.combine(name)
            h.combine(value)
        }
        if let endpoint {
            h.combine("endpoint")
            h.combine(endpoint.count)
            for name in endpoint.keys.sorted() {
                h.combine(name)
                h.combine(endpoint[name]!)
            }
        }
        return LandscapeKey(value: h.finalize())
    }
}
