// Results records, model selection and the across-seed summary (docs/data.md §6).
//
// A record is one line of DomainBed's results.jsonl, written at each evaluation:
//   {"args": {..., "test_envs": [k], "trial_seed": 0, ...}, "env0_in_acc": 0.91, "env0_out_acc": 0.9,
//    ..., "epoch": 1.2, "hparams": {...}, "loss": 0.3, "step": 299, "steps_done": 300, ...}
// with keys sorted (json.dumps(sort_keys=True)). "step" is DomainBed's 0-based index of the step
// just taken; "steps_done" (ours) is the count, which `EvalRecord.step` holds. We add "provenance": where the starting weights
// came from (the FQAT paper traces a published disagreement to pretraining leakage).
//
// Selection (DomainBed model_selection.py):
// - training-domain validation (IIDAccuracySelectionMethod): the checkpoint with the highest mean
//   out-split accuracy over the training domains; the first such checkpoint on ties (Python max);
//   Val (I.D.) = that mean, Test (OOD) = the test domains' in-split accuracy.
// - test-domain oracle (OracleSelectionMethod): DomainBed takes the *last* checkpoint of a run and
//   ranks hyper-parameters by the test domain's out-split accuracy; labelled as an oracle.
// - best-checkpoint oracle (SWAD/SAGM `oracle`): the checkpoint with the highest test-domain
//   out-split accuracy; also an oracle.
// Summary across seeds: DomainBed's collect_results prints mean ± np.std(x / √n), i.e. the
// population standard deviation (ddof 0) divided by √n; the sample (ddof 1) and population
// standard deviations are reported too.
import Foundation

/// A JSON value, for the free-form `args`, `hparams` and `provenance` objects.
public enum RecordValue: Codable, Equatable, Sendable, CustomStringConvertible {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([RecordValue])
    case object([String: RecordValue])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int.self) { self = .int(i) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([RecordValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: RecordValue].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .int(let i): try c.encode(i)
        case .double(let d): try c.encode(d)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    /// The value as a number, when it is one.
    public var number: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return String(b)
        case .int(let i): return String(i)
        case .double(let d): return String(d)
        case .string(let s): return "\"\(s)\""
        case .array(let a): return "[" + a.map(\.description).joined(separator: ", ") + "]"
        case .object(let o): return "{" + o.keys.sorted().map { "\"\($0)\": \(o[$0]!)" }.joined(separator: ", ") + "}"
        }
    }
}

/// A `RecordValue` as run checkpoints store it: tagged with its case, so it decodes to the same case
/// (RecordValue's own JSON, DomainBed's, decodes 1.0 as an integer).
public indirect enum StoredValue: Codable, Equatable, Sendable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([StoredValue])
    case object([String: StoredValue])

    public init(_ v: RecordValue) {
        switch v {
        case .null: self = .null
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(i)
        case .double(let d): self = .double(d)
        case .string(let s): self = .string(s)
        case .array(let a): self = .array(a.map(StoredValue.init))
        case .object(let o): self = .object(o.mapValues(StoredValue.init))
        }
    }

    public var recordValue: RecordValue {
        switch self {
        case .null: return .null
        case .bool(let b): return .bool(b)
        case .int(let i): return .int(i)
        case .double(let d): return .double(d)
        case .string(let s): return .string(s)
        case .array(let a): return .array(a.map(\.recordValue))
        case .object(let o): return .object(o.mapValues(\.recordValue))
        }
    }
}

/// One evaluation of a run, in DomainBed's results.jsonl shape.
public struct EvalRecord: Equatable, Sendable {
    public var step: Int
    /// Accuracy on each domain's in split ("env{i}_in_acc"), by domain index.
    public var inAccuracy: [Int: Double]
    /// Accuracy on each domain's out split ("env{i}_out_acc").
    public var outAccuracy: [Int: Double]
    /// Other numbers at the top level: "epoch", "loss", "step_time", "env0_out_loss", …
    public var metrics: [String: Double]
    /// Held-out domains (stored as args.test_envs).
    public var testDomains: [Int]
    /// Run arguments (DomainBed: dataset, algorithm, trial_seed, seed, hparams_seed, …).
    public var args: [String: RecordValue]
    public var hparams: [String: RecordValue]
    /// Where the starting weights came from (file, hash, pretraining), and the data's provenance.
    public var provenance: [String: RecordValue]

    public init(step: Int, inAccuracy: [Int: Double], outAccuracy: [Int: Double], testDomains: [Int],
                metrics: [String: Double] = [:], args: [String: RecordValue] = [:],
                hparams: [String: RecordValue] = [:], provenance: [String: RecordValue] = [:]) {
        self.step = step; self.inAccuracy = inAccuracy; self.outAccuracy = outAccuracy
        self.testDomains = testDomains.sorted(); self.metrics = metrics; self.args = args
        self.hparams = hparams; self.provenance = provenance
    }

    /// Every domain index with an accuracy.
    public var domains: [Int] { Array(Set(inAccuracy.keys).union(outAccuracy.keys)).sorted() }
    public var trainingDomains: [Int] { domains.filter { !testDomains.contains($0) } }

    /// The JSON object, keys sorted.
    public var jsonObject: [String: RecordValue] {
        var o: [String: RecordValue] = [:]
        for (k, v) in metrics { o[k] = .double(v) }
        for (d, v) in inAccuracy { o["env\(d)_in_acc"] = .double(v) }
        for (d, v) in outAccuracy { o["env\(d)_out_acc"] = .double(v) }
        // DomainBed's "step" is the 0-based index of the step just taken (train.py's loop variable);
        // `step` here counts steps done, written as "steps_done" so a reader gets it back exactly.
        o["step"] = .int(step - 1)
        o["steps_done"] = .int(step)
        var a = args
        a["test_envs"] = .array(testDomains.map { .int($0) })
        o["args"] = .object(a)
        o["hparams"] = .object(hparams)
        if !provenance.isEmpty { o["provenance"] = .object(provenance) }
        return o
    }

    /// One line of JSON (no newline), keys sorted as DomainBed writes them.
    public func jsonLine() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(jsonObject)) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// Parses one results line; `lineNumber` names it in errors.
    public static func parse(line: String, lineNumber: Int = 1) throws -> EvalRecord {
        let object: [String: RecordValue]
        do {
            object = try JSONDecoder().decode([String: RecordValue].self, from: Data(line.utf8))
        } catch {
            throw DatasetError.malformedRecord(line: lineNumber, reason: "not a JSON object")
        }
        guard let stepNumber = object["step"]?.number else {
            throw DatasetError.malformedRecord(line: lineNumber, reason: "no numeric \"step\"")
        }
        guard Int(exactly: stepNumber) != nil else {
            throw DatasetError.malformedRecord(line: lineNumber, reason: "\"step\" is \(stepNumber), not a whole number of steps")
        }
        guard case .object(let args)? = object["args"] else {
            throw DatasetError.malformedRecord(line: lineNumber, reason: "no \"args\" object")
        }
        guard case .array(let envs)? = args["test_envs"],
              envs.allSatisfy({ $0.number.flatMap { Int(exactly: $0) }.map { (0..<100_000).contains($0) } == true }) else {
            throw DatasetError.malformedRecord(line: lineNumber, reason: "no args.test_envs list of domain numbers")
        }
        // Records written since the sweep work carry "steps_done" (and "step" = steps_done − 1, as
        // DomainBed); older records and DomainBed's own have "step" only, read as it stands.
        let stepsNumber = object["steps_done"]?.number ?? stepNumber
        guard let stepsDone = Int(exactly: stepsNumber) else {
            throw DatasetError.malformedRecord(line: lineNumber, reason: "\"steps_done\" is \(stepsNumber), not a whole number of steps")
        }
        var record = EvalRecord(step: stepsDone, inAccuracy: [:], outAccuracy: [:],
                                testDomains: envs.map { Int(exactly: $0.number!)! })
        var restArgs = args
        restArgs["test_envs"] = nil
        record.args = restArgs
        if case .object(let h)? = object["hparams"] { record.hparams = h }
        if case .object(let p)? = object["provenance"] { record.provenance = p }
        for (key, value) in object where !["step", "steps_done", "args", "hparams", "provenance"].contains(key) {
            guard let number = value.number else { continue }
            if let (domain, part) = accuracyKey(key) {
                if part == .in { record.inAccuracy[domain] = number } else { record.outAccuracy[domain] = number }
            } else {
                record.metrics[key] = number
            }
        }
        guard !record.outAccuracy.isEmpty else {
            throw DatasetError.malformedRecord(line: lineNumber, reason: "no env{i}_out_acc accuracies")
        }
        return record
    }

    /// Parses a results.jsonl text (blank lines skipped).
    public static func parse(jsonLines text: String) throws -> [EvalRecord] {
        var records: [EvalRecord] = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            records.append(try parse(line: trimmed, lineNumber: i + 1))
        }
        return records
    }

    /// "env12_out_acc" → (12, .out).
    static func accuracyKey(_ key: String) -> (Int, SplitPart)? {
        guard key.hasPrefix("env"), key.hasSuffix("_acc") else { return nil }
        let body = key.dropFirst(3).dropLast(4)
        let parts = body.split(separator: "_")
        guard parts.count == 2, let d = Int(parts[0]), let part = SplitPart(rawValue: String(parts[1])) else { return nil }
        return (d, part)
    }
}

// MARK: Selection

public enum SelectionMethod: String, Codable, CaseIterable, Sendable {
    /// DomainBed IIDAccuracySelectionMethod (FQAT's protocol).
    case trainingDomainValidation = "training-domain validation"
    /// DomainBed OracleSelectionMethod: the last checkpoint, ranked by test-domain out accuracy.
    case testDomainOracle = "test-domain validation (oracle)"
    /// SWAD/SAGM `oracle`: the checkpoint with the best test-domain out accuracy.
    case testDomainOracleBestCheckpoint = "test-domain oracle, best checkpoint"

    public var isOracle: Bool { self != .trainingDomainValidation }
}

/// The checkpoint a selection method picks in one run, with its numbers.
public struct Selection: Equatable, Sendable {
    public var method: SelectionMethod
    public var record: EvalRecord
    /// Val (I.D.): mean out-split accuracy of the training domains (oracles: of the test domains).
    public var validationAccuracy: Double
    /// Test (OOD): mean in-split accuracy of the test domains.
    public var testAccuracy: Double
    /// In-split accuracy of each test domain (several for leave-one-group-out).
    public var testAccuracyByDomain: [Int: Double]
    /// "oracle" labels for test-domain methods, "" otherwise.
    public var label: String { method.isOracle ? "oracle (uses test-domain data)" : "" }
}

public enum ModelSelection {
    /// Picks a checkpoint of one run (records in evaluation order). Records without every needed
    /// accuracy are skipped; nil when none is usable.
    public static func select(_ records: [EvalRecord], method: SelectionMethod) -> Selection? {
        func mean(_ xs: [Double]) -> Double { xs.reduce(0, +) / Double(xs.count) }
        func tests(_ r: EvalRecord) -> [Int: Double]? {
            var out: [Int: Double] = [:]
            for d in r.testDomains {
                guard let a = r.inAccuracy[d] else { return nil }
                out[d] = a
            }
            return out.isEmpty ? nil : out
        }
        func validation(_ r: EvalRecord) -> Double? {
            let keys = method == .trainingDomainValidation ? r.trainingDomains : r.testDomains
            guard !keys.isEmpty else { return nil }
            var xs: [Double] = []
            for d in keys {
                guard let a = r.outAccuracy[d] else { return nil }
                xs.append(a)
            }
            return mean(xs)
        }
        let usable: [(EvalRecord, Double, [Int: Double])] = records.compactMap { r in
            guard let v = validation(r), let t = tests(r) else { return nil }
            return (r, v, t)
        }
        guard !usable.isEmpty else { return nil }
        let chosen: (EvalRecord, Double, [Int: Double])
        switch method {
        case .trainingDomainValidation, .testDomainOracleBestCheckpoint:
            // The first maximum, as Python's max().
            var best = usable[0]
            for u in usable.dropFirst() where u.1 > best.1 { best = u }
            chosen = best
        case .testDomainOracle:
            // The last checkpoint by step (a stable sort keeps the later line on equal steps).
            chosen = usable.enumerated().max { a, b in
                a.element.0.step != b.element.0.step ? a.element.0.step < b.element.0.step : a.offset < b.offset
            }!.element
        }
        return Selection(method: method, record: chosen.0, validationAccuracy: chosen.1,
                         testAccuracy: mean(chosen.0.testDomains.map { chosen.2[$0]! }), testAccuracyByDomain: chosen.2)
    }

    /// DomainBed's sweep: select within each hyper-parameter run, then keep the run with the best
    /// validation accuracy (the first on ties). Returns the run's position and its selection.
    public static func selectAcrossRuns(_ runs: [[EvalRecord]], method: SelectionMethod) -> (run: Int, selection: Selection)? {
        var best: (Int, Selection)?
        for (i, run) in runs.enumerated() {
            guard let s = select(run, method: method) else { continue }
            if best == nil || s.validationAccuracy > best!.1.validationAccuracy { best = (i, s) }
        }
        return best
    }
}

// MARK: Summary across seeds

/// Mean and spread of one number across trial seeds.
public struct SeedSummary: Codable, Equatable, Sendable {
    public enum Spread: String, Codable, Sendable {
        /// DomainBed collect_results: np.std(x / √n) = population std / √n.
        case domainBedStandardError
        /// ddof = 1.
        case sampleStandardDeviation
        /// ddof = 0 (np.std).
        case populationStandardDeviation
    }

    public var count: Int
    public var mean: Double
    public var sampleStandardDeviation: Double
    public var populationStandardDeviation: Double
    /// What DomainBed prints after ±.
    public var domainBedStandardError: Double

    public init(_ values: [Double]) {
        precondition(!values.isEmpty, "SeedSummary of no values")
        let n = Double(values.count)
        let m = values.reduce(0, +) / n
        let squares = values.reduce(0) { $0 + ($1 - m) * ($1 - m) }
        count = values.count
        mean = m
        populationStandardDeviation = (squares / n).squareRoot()
        sampleStandardDeviation = values.count > 1 ? (squares / (n - 1)).squareRoot() : 0
        domainBedStandardError = populationStandardDeviation / n.squareRoot()
    }

    public func spread(_ kind: Spread) -> Double {
        switch kind {
        case .domainBedStandardError: return domainBedStandardError
        case .sampleStandardDeviation: return sampleStandardDeviation
        case .populationStandardDeviation: return populationStandardDeviation
        }
    }

    /// "83.8 ± 0.4" with values scaled by `scale` (100 for accuracies in [0, 1]).
    public func formatted(_ kind: Spread = .domainBedStandardError, scale: Double = 100, decimals: Int = 1) -> String {
        String(format: "%.\(decimals)f ± %.\(decimals)f", mean * scale, spread(kind) * scale)
    }
}

/// A record as run checkpoints store it (docs/fqat.md "Training runs"): the fields by name, the
/// free-form values tagged (`StoredValue`) so that a resumed run writes the same bytes; DomainBed's
/// shape is `jsonObject`/`parse`.
extension EvalRecord: Codable {
    enum CodingKeys: String, CodingKey {
        case step, inAccuracy, outAccuracy, metrics, testDomains, args, hparams, provenance
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func values(_ key: CodingKeys) throws -> [String: RecordValue] {
            try c.decode([String: StoredValue].self, forKey: key).mapValues(\.recordValue)
        }
        self.init(step: try c.decode(Int.self, forKey: .step), inAccuracy: try c.decode([Int: Double].self, forKey: .inAccuracy),
                  outAccuracy: try c.decode([Int: Double].self, forKey: .outAccuracy),
                  testDomains: try c.decode([Int].self, forKey: .testDomains), metrics: try c.decode([String: Double].self, forKey: .metrics),
                  args: try values(.args), hparams: try values(.hparams), provenance: try values(.provenance))
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(step, forKey: .step)
        try c.encode(inAccuracy, forKey: .inAccuracy)
        try c.encode(outAccuracy, forKey: .outAccuracy)
        try c.encode(metrics, forKey: .metrics)
        try c.encode(testDomains, forKey: .testDomains)
        try c.encode(args.mapValues(StoredValue.init), forKey: .args)
        try c.encode(hparams.mapValues(StoredValue.init), forKey: .hparams)
        try c.encode(provenance.mapValues(StoredValue.init), forKey: .provenance)
    }
}
