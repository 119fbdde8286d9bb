// What the FQAT paper plots, recorded while training (Fig. 2: g_QAT and g_flat per scale factor;
// Fig. 3: disorder per layer over training; Fig. 4: the gradient actually applied with and without
// freezing), with bounded memory.
//
// Per step and per scale factor the trace stores summaries, not tensors: for a per-channel scale
// with M elements, the mean over elements (keeps the sign, comparable with the scalar plots) and the
// L2 norm (magnitude); for a scalar scale the mean is the value and the norm its absolute value.
// Plus the cosine between g_QAT and g_flat (0 when either is zero; the "cancelling" layers have a
// cosine near −1), the frozen and skipped flags (averaged: the fraction of steps frozen), the mean
// scale value after the step, and the step's losses. Per disorder window: D of every factor.
//
// Downsampling: the most recent `recentSteps` rows (default 2000) are kept at full resolution.
// Older rows are averaged into buckets of equal width w (starting at 1); when the archive holds more
// than `archiveBuckets` buckets, adjacent pairs are merged and w doubles. So memory is bounded by
// (recent + archive) rows whatever the run length, the archive is uniformly spaced (easy to plot)
// and its resolution halves each time the run length doubles. Means of averages are exact
// (weighted by step counts, in Double). Disorder windows are kept the same way (4096 recent windows).
//
// Cost: O(#scale elements) per step for the summaries, O(#factors) to append a row.
import TensorCore

/// A plottable series: x (step; bucket centre for averaged points), y, and how many rows each
/// point averages (1 at full resolution).
public struct TraceSeries: Codable, Equatable, Sendable {
    public var steps: [Double]
    public var values: [Float]
    public var counts: [Int]
}

/// The disorder heatmap: factors × windows.
public struct DisorderHeatmap: Codable, Equatable, Sendable {
    /// Row labels.
    public var factors: [String]
    /// Column x: the window's end step (centre of averaged windows).
    public var windowEndSteps: [Double]
    /// values[factor][window], each in [0, 1].
    public var values: [[Float]]
}

/// A per-factor quantity the trace records each step.
public enum TraceMetric: String, Codable, CaseIterable, Sendable {
    case qatMean, qatNorm
    case flatMean, flatNorm
    case appliedMean, appliedNorm
    /// Cosine similarity of g_QAT and g_flat.
    case cosine
    /// 1 when g_QAT was frozen this step (averaged: fraction of steps).
    case frozen
    /// 1 when the optimizer update was skipped (Freeze Both).
    case skipped
    /// Mean of the scale's value after the step.
    case scaleMean
}

public enum TraceError: Error, Equatable, CustomStringConvertible {
    case unknownFactor(String, known: [String])

    public var description: String {
        switch self {
        case .unknownFactor(let n, let known):
            let sample = known.prefix(6).joined(separator: ", ") + (known.count > 6 ? ", …" : "")
            return "the trace has no scale factor '\(n)'; recorded factors are \(sample.isEmpty ? "(none)" : sample)"
        }
    }
}

public struct GradientTrace: Codable, Equatable, Sendable {
    public let factorNames: [String]
    private var steps: DownsampledRows
    private var windows: DownsampledRows
    private static let metricCount = TraceMetric.allCases.count
    /// Columns 0 and 1 of a step row are the losses; then metricCount columns per factor.
    private static let lossColumns = 2

    public init(factorNames: [String], recentSteps: Int = 2000, archiveBuckets: Int = 2000,
                recentWindows: Int = 4096, archiveWindows: Int = 1024) {
        self.factorNames = factorNames
        steps = DownsampledRows(columns: GradientTrace.lossColumns + factorNames.count * GradientTrace.metricCount,
                                recentCapacity: recentSteps, archiveCapacity: archiveBuckets)
        windows = DownsampledRows(columns: factorNames.count, recentCapacity: recentWindows, archiveCapacity: archiveWindows)
    }

    /// A trace with the same factors and capacities and nothing recorded.
    public func emptied() -> GradientTrace {
        GradientTrace(factorNames: factorNames, recentSteps: steps.recentCapacity, archiveBuckets: steps.archiveCapacity,
                      recentWindows: windows.recentCapacity, archiveWindows: windows.archiveCapacity)
    }

    /// Steps recorded so far.
    public var stepsRecorded: Int { steps.totalRows }
    /// Disorder windows recorded so far.
    public var windowsRecorded: Int { windows.totalRows }

    /// Records one step: the gradients from `result`, the controller's `decision`, and optionally
    /// the scales' values after the optimizer step (aligned with `factorNames`). Also records the
    /// decision's completed disorder window, if any.
    public mutating func record(result: GradientStepResult, decision: FreezeDecision, scaleValues: [Tensor]? = nil) {
        precondition(decision.names == factorNames && result.scales.map(\.name) == factorNames,
                     "trace for \(factorNames) got a step for \(decision.names)")
        var row = [Float](repeating: .nan, count: steps.columns)
        row[0] = result.loss
        row[1] = result.perturbedLoss ?? .nan
        for f in factorNames.indices {
            let base = GradientTrace.lossColumns + f * GradientTrace.metricCount
            func put(_ m: TraceMetric, _ v: Float) { row[base + TraceMetric.allCases.firstIndex(of: m)!] = v }
            let g = result.scales[f]
            let (qm, qn) = GradientTrace.meanAndNorm(g.qat)
            put(.qatMean, qm); put(.qatNorm, qn)
            if let flat = g.flat {
                let (fm, fn) = GradientTrace.meanAndNorm(flat)
                put(.flatMean, fm); put(.flatNorm, fn)
                let denominator = Double(qn) * Double(fn)
                put(.cosine, denominator > 0 ? Float(g.qat.dot(flat) / denominator) : 0)
            }
            switch decision.applied[f] {
            case .gradient(let a):
                let (am, an) = GradientTrace.meanAndNorm(a)
                put(.appliedMean, am); put(.appliedNorm, an); put(.skipped, 0)
            case .skip:
                put(.appliedMean, 0); put(.appliedNorm, 0); put(.skipped, 1)
            }
            put(.frozen, decision.frozen[f] ? 1 : 0)
            if let values = scaleValues { put(.scaleMean, Float(values[f].mean())) }
        }
        steps.append(step: decision.step, values: row)
        if let w = decision.completedWindow { recordWindow(w) }
    }

    /// Records a disorder window (done by `record` when a decision completes one).
    public mutating func recordWindow(_ window: DisorderWindow) {
        precondition(window.disorder.count == factorNames.count, "disorder window has \(window.disorder.count) factors, trace \(factorNames.count)")
        windows.append(step: window.endStep, values: window.disorder)
    }

    private static func meanAndNorm(_ t: Tensor) -> (Float, Float) {
        (Float(t.mean()), Float(t.norm()))
    }

    private func factorIndex(_ name: String) throws -> Int {
        guard let i = factorNames.firstIndex(of: name) else { throw TraceError.unknownFactor(name, known: factorNames) }
        return i
    }

    // MARK: Queries (valid during and after training)

    /// A per-step metric of one factor, oldest first.
    public func series(_ metric: TraceMetric, factor: String) throws -> TraceSeries {
        let f = try factorIndex(factor)
        return steps.column(GradientTrace.lossColumns + f * GradientTrace.metricCount
                            + TraceMetric.allCases.firstIndex(of: metric)!)
    }

    /// The training loss (pass 1) per step.
    public func loss() -> TraceSeries { steps.column(0) }

    /// The perturbed loss (SAGM pass 2) per step; NaN for single-pass steps.
    public func perturbedLoss() -> TraceSeries { steps.column(1) }

    /// The disorder of one factor per window.
    public func disorder(factor: String) throws -> TraceSeries {
        windows.column(try factorIndex(factor))
    }

    /// Disorder of every factor over every window (rows: factors, columns: windows).
    public func disorderHeatmap() -> DisorderHeatmap {
        let columns = factorNames.indices.map { windows.column($0) }
        return DisorderHeatmap(factors: factorNames, windowEndSteps: columns.first?.steps ?? [],
                               values: columns.map(\.values))
    }
}

/// An array whose NaNs ("not recorded", e.g. no g_flat in a single-pass step) are written as JSON
/// null, which JSON can represent and NaN it cannot, and read back as NaN; two arrays are equal when
/// every element is, NaN matching NaN. Lets `DownsampledRows` use the synthesized Codable and ==.
@propertyWrapper
struct NaNAsNull<T: BinaryFloatingPoint & Codable & Sendable>: Codable, Equatable, Sendable {
    var wrappedValue: [T]

    init(wrappedValue: [T]) { self.wrappedValue = wrappedValue }

    init(from decoder: Decoder) throws {
        wrappedValue = try decoder.singleValueContainer().decode([T?].self).map { $0 ?? .nan }
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(wrappedValue.map { $0.isNaN ? nil : $0 })
    }

    static func == (a: NaNAsNull, b: NaNAsNull) -> Bool {
        a.wrappedValue.count == b.wrappedValue.count
            && zip(a.wrappedValue, b.wrappedValue).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) }
    }
}

/// Rows of Float columns keyed by step: the newest `recentCapacity` rows at full resolution, older
/// rows averaged into equal-width buckets whose width doubles when more than `archiveCapacity`
/// buckets accumulate (adjacent pairs merge).
struct DownsampledRows: Codable, Equatable, Sendable {
    let columns: Int
    let recentCapacity: Int
    let archiveCapacity: Int
    private(set) var totalRows = 0

    // Recent rows: a ring of up to recentCapacity rows; logical row k is physical (start + k) % capacity.
    private var recentSteps: [Int] = []
    @NaNAsNull private var recentValues: [Float] = []
    private var recentStart = 0

    // Archive: buckets of `bucketWidth` rows each, values are per-column means.
    private(set) var bucketWidth = 1
    private var archiveFirst: [Int] = []
    private var archiveLast: [Int] = []
    private var archiveCounts: [Int] = []
    @NaNAsNull private var archiveValues: [Float] = []

    // The bucket being filled from rows leaving the recent ring.
    private var pendingFirst = 0
    private var pendingLast = 0
    private var pendingCount = 0
    @NaNAsNull private var pendingSums: [Double] = []

    init(columns: Int, recentCapacity: Int, archiveCapacity: Int) {
        precondition(recentCapacity >= 1 && archiveCapacity >= 2,
                     "trace capacities must be ≥ 1 recent row and ≥ 2 archive buckets; got \(recentCapacity), \(archiveCapacity)")
        self.columns = columns
        self.recentCapacity = recentCapacity
        self.archiveCapacity = archiveCapacity
    }

    mutating func append(step: Int, values: [Float]) {
        precondition(values.count == columns, "trace row has \(values.count) values, expected \(columns)")
        totalRows += 1
        if recentSteps.count < recentCapacity {
            recentSteps.append(step)
            recentValues.append(contentsOf: values)
            return
        }
        // Evict the oldest recent row into the pending bucket, then overwrite its slot.
        let slot = recentStart
        evict(step: recentSteps[slot], values: recentValues[(slot * columns)..<((slot + 1) * columns)])
        recentSteps[slot] = step
        recentValues.replaceSubrange((slot * columns)..<((slot + 1) * columns), with: values)
        recentStart = (recentStart + 1) % recentCapacity
    }

    private mutating func evict(step: Int, values: ArraySlice<Float>) {
        if pendingCount == 0 {
            pendingFirst = step
            pendingSums = [Double](repeating: 0, count: columns)
        }
        pendingLast = step
        pendingCount += 1
        for (c, v) in values.enumerated() { pendingSums[c] += Double(v) }
        guard pendingCount == bucketWidth else { return }
        archiveFirst.append(pendingFirst)
        archiveLast.append(pendingLast)
        archiveCounts.append(pendingCount)
        archiveValues.append(contentsOf: pendingSums.map { Float($0 / Double(pendingCount)) })
        pendingCount = 0
        pendingSums = []
        if archiveCounts.count > archiveCapacity { mergePairs() }
    }

    /// Halves the archive by averaging adjacent buckets; a lone last bucket goes back to pending.
    private mutating func mergePairs() {
        let n = archiveCounts.count
        var first: [Int] = [], last: [Int] = [], counts: [Int] = [], values: [Float] = []
        for j in 0..<(n / 2) {
            let a = 2 * j, b = a + 1
            let ca = Double(archiveCounts[a]), cb = Double(archiveCounts[b])
            first.append(archiveFirst[a]); last.append(archiveLast[b]); counts.append(archiveCounts[a] + archiveCounts[b])
            for c in 0..<columns {
                let va = Double(archiveValues[a * columns + c]), vb = Double(archiveValues[b * columns + c])
                values.append(Float((va * ca + vb * cb) / (ca + cb)))
            }
        }
        if n % 2 == 1 {
            let k = n - 1
            pendingFirst = archiveFirst[k]
            pendingLast = archiveLast[k]
            pendingCount = archiveCounts[k]
            pendingSums = (0..<columns).map { Double(archiveValues[k * columns + $0]) * Double(archiveCounts[k]) }
        }
        archiveFirst = first; archiveLast = last; archiveCounts = counts; archiveValues = values
        bucketWidth *= 2
    }

    /// One column as a series, oldest first: archive buckets, the partial pending bucket, recent rows.
    func column(_ c: Int) -> TraceSeries {
        precondition(c >= 0 && c < columns, "trace column \(c) out of 0..<\(columns)")
        var out = TraceSeries(steps: [], values: [], counts: [])
        let total = archiveCounts.count + (pendingCount > 0 ? 1 : 0) + recentSteps.count
        out.steps.reserveCapacity(total); out.values.reserveCapacity(total); out.counts.reserveCapacity(total)
        for k in archiveCounts.indices {
            out.steps.append(Double(archiveFirst[k] + archiveLast[k]) / 2)
            out.values.append(archiveValues[k * columns + c])
            out.counts.append(archiveCounts[k])
        }
        if pendingCount > 0 {
            out.steps.append(Double(pendingFirst + pendingLast) / 2)
            out.values.append(Float(pendingSums[c] / Double(pendingCount)))
            out.counts.append(pendingCount)
        }
        for k in 0..<recentSteps.count {
            let slot = (recentStart + k) % recentSteps.count
            out.steps.append(Double(recentSteps[slot]))
            out.values.append(recentValues[slot * columns + c])
            out.counts.append(1)
        }
        return out
    }
}
