// `step`, `disorder`, `freeze`, `unfreeze`, `policy`: the FQAT machinery at the prompt.
import Foundation
import NN
import Optim
import Quant
import ShellLanguage
import TensorCore
import Training

extension ShellCommands {
    struct StepArguments: CommandArguments {
        @Positional(help: "method (default: the current run's)") var method: TrainingMethod?
        @Option(.pattern, help: "scale factors to print (glob)", completion: .dynamic("scales")) var show = "*"
        @Option(.int(1...100_000), help: "steps to take") var n = 1
        @Group var hyperparameters: HyperparameterArguments
    }

    static func stepCommand(_ s: Session) -> CommandSpec {
        CommandSpec(
            name: "step", summary: "take one training step by hand and print the loss and the gradients of chosen scale factors",
            discussion: """
            Runs one step of the method (default: the current run's, else fqat) on the next batch and prints, per
            matching scale factor, g_QAT (pass 1), g_flat (pass 2), the gradient actually applied, their cosine,
            and whether g_QAT was frozen. Values are means over the factor's elements (per-channel scales) after
            LSQ's gradient scaling. `step n=10` takes ten steps and prints the last.
            """,
            group: "fqat",
            arguments: StepArguments.self,
            examples: ["step fqat show=layer3.*", "step n=5 show=*.a.s"],
            run: { args, inv in
                applyHyperparameters(args.hyperparameters, s)
                let method = args.method ?? s.run?.method ?? (s.isQuantized ? .fqat : .erm)
                let (run, isNew) = try s.runFor(method: method)
                if isNew { inv.print("new \(method.rawValue) run — \(runDescription(run))") }
                var report: StepReport?
                for _ in 0..<args.n {
                    try inv.checkInterrupt()
                    report = try run.takeStep()
                }
                guard let r = report else { return .none }
                var line = "step \(r.step)  loss \(Render.number(Double(r.loss), "%.5f"))"
                if let p = r.perturbedLoss { line += "  perturbed loss \(Render.number(Double(p), "%.5f"))  ‖g‖ \(Render.number(r.gradientNorm))  ‖e‖ \(Render.number(r.perturbationNorm))" }
                if let w = r.completedWindow { line += "  (window ended: mean disorder \(Render.number(Double(w.disorder.reduce(0, +)) / Double(max(w.disorder.count, 1)), "%.3f")))" }
                inv.print(line)
                let pattern = try NamePattern(args.show)
                var rows: [[String]] = []
                var values: [Value] = []
                if let trace = run.stepper.trace {
                    for name in run.scales.map(\.name) where pattern.matches(name) {
                        func last(_ m: TraceMetric) -> Double { Double((try? trace.series(m, factor: name))?.values.last ?? .nan) }
                        let q = last(.qatMean), f = last(.flatMean), a = last(.appliedMean), c = last(.cosine)
                        let frozen = r.frozen.contains(name), skipped = r.skipped.contains(name)
                        rows.append([name, Render.number(q, "%+.3e"), Render.number(f, "%+.3e"), skipped ? "skip" : Render.number(a, "%+.3e"),
                                     Render.number(c, "%+.2f"), frozen ? "yes" : ""])
                        values.append(.record(Record([("name", .string(name)), ("g_qat", .number(q)), ("g_flat", .number(f)),
                                                      ("applied", .number(a)), ("frozen", .bool(frozen))])))
                    }
                }
                if !rows.isEmpty { inv.print(Render.table(["scale factor", "g_QAT", "g_flat", "applied", "cos", "frozen"], rows)) }
                return .record(Record([("step", .int(r.step)), ("loss", .number(Double(r.loss))), ("scales", .list(values))]))
            })
    }

    static func requireQuantizedRun(_ s: Session) throws -> Run {
        guard let run = s.run, run.method.isQuantized else {
            throw CommandError("no quantized training run yet; `quantize …` then `train fqat steps=…` (or `step`) first")
        }
        return run
    }

    struct DisorderArguments: CommandArguments {
        enum Order: String, ChoiceArgument { case name, disorder, qat, flat, cosine, frozen }
        @Positional(.pattern, help: "scale factors to show (glob)", completion: .dynamic("scales")) var filter = "*"
        @Option(help: "sort order") var sort = Order.name
        @Option(.int(min: 1), help: "show only the first N rows") var top: Int?
        @Option(.int(min: 1), help: "steps averaged for the gradient columns") var recent = 20
    }

    static func disorderCommand(_ s: Session) -> CommandSpec {
        CommandSpec(
            name: "disorder", summary: "table of scale factors: gradient disorder, frozen or not, |g_QAT|, |g_flat|, their cosine",
            discussion: """
            D is the share of sign flips between consecutive g_QAT over the last completed window of K steps
            (Definition 4.1; mean over elements for per-channel scales). `now` is the window in progress.
            Signs that flip at random give D ≈ 0.5; FQAT freezes g_QAT where D < τ. |g| columns are means of
            the per-step gradient norms over the last `recent` steps; cos is their mean cosine (negative: the
            two gradients cancel, the paper's scale-gradient conflict).
            """,
            group: "fqat",
            arguments: DisorderArguments.self,
            examples: ["disorder", "disorder *.a.s sort=disorder top=10"],
            run: { args, inv in
                let run = try requireQuantizedRun(s)
                let controller = run.stepper.controller
                let names = controller.names
                let pattern = try NamePattern(args.filter)
                let window = controller.lastWindow
                let now = controller.tracker.currentDisorder()
                let frozen = controller.frozen
                let recent = args.recent
                struct Row { var name: String; var d: Double; var now: Double; var frozen: Bool; var q: Double; var f: Double; var c: Double }
                var rows: [Row] = []
                for (i, name) in names.enumerated() where pattern.matches(name) {
                    func mean(_ m: TraceMetric) -> Double {
                        guard let v = (try? run.stepper.trace?.series(m, factor: name))??.values.suffix(recent).filter({ !$0.isNaN }), !v.isEmpty else { return .nan }
                        return Double(v.reduce(0, +)) / Double(v.count)
                    }
                    rows.append(Row(name: name, d: window.map { Double($0.disorder[i]) } ?? .nan, now: Double(now[i]),
                                    frozen: frozen[i], q: mean(.qatNorm), f: mean(.flatNorm), c: mean(.cosine)))
                }
                switch args.sort {
                case .disorder: rows.sort { ($0.d.isNaN ? 2 : $0.d) < ($1.d.isNaN ? 2 : $1.d) }
                case .qat: rows.sort { $0.q > $1.q }
                case .flat: rows.sort { $0.f > $1.f }
                case .cosine: rows.sort { $0.c < $1.c }
                case .frozen: rows.sort { ($0.frozen ? 0 : 1, $0.name) < ($1.frozen ? 0 : 1, $1.name) }
                case .name: break
                }
                if let top = args.top { rows = Array(rows.prefix(top)) }
                let h = run.hyperparameters
                inv.print("step \(run.step), policy \(controller.settings.policy.rawValue) τ \(Value.format(Double(controller.settings.threshold))) K \(controller.settings.windowLength); last window ended at step \(window.map { String($0.endStep) } ?? "— (none yet)"); frozen \(frozen.filter { $0 }.count)/\(names.count)")
                _ = h
                inv.print(Render.table(["scale factor", "D", "D now", "frozen", "|g_QAT|", "|g_flat|", "cos"],
                                       rows.map { [$0.name, Render.number($0.d, "%.3f"), Render.number($0.now, "%.3f"), $0.frozen ? "yes" : "",
                                                   Render.number($0.q, "%.2e"), Render.number($0.f, "%.2e"), Render.number($0.c, "%+.2f")] }))
                return .list(rows.map { r in .record(Record([("name", .string(r.name)), ("disorder", .number(r.d)), ("frozen", .bool(r.frozen)),
                                                             ("g_qat", .number(r.q)), ("g_flat", .number(r.f)), ("cosine", .number(r.c))])) })
            })
    }

    struct FreezeArguments: CommandArguments {
        @Positional(.pattern, help: "scale factors (glob, e.g. layer3.*.a.s)", completion: .dynamic("scales")) var pattern = "*"
        @Option(.int(min: 1), help: "for this many steps (default: until told)") var steps: Int?
    }

    struct UnfreezeArguments: CommandArguments {
        @Group var target: FreezeArguments
        @Option(help: "remove manual overrides instead") var release = false
    }

    static func freezeCommand(_ s: Session) -> CommandSpec {
        CommandSpec(
            name: "freeze",
            summary: "freeze the QAT gradient of scale factors by name pattern (for N steps or until released)",
            discussion: "A frozen scale factor is updated with g_flat only (with policy freeze-both it is not updated at all). Manual freezes sit on top of any policy; the newest matching override wins. Freezing is idempotent.",
            group: "fqat",
            arguments: FreezeArguments.self,
            examples: ["freeze layer3.*.w.s steps=100", "freeze *.a.s"],
            run: { args, inv in try freezeOrUnfreeze(s, freeze: true, args, release: false, inv) })
    }

    static func unfreezeCommand(_ s: Session) -> CommandSpec {
        CommandSpec(
            name: "unfreeze",
            summary: "force scale factors unfrozen (overriding the policy) for N steps, or release overrides",
            discussion: "`unfreeze pattern` forces the factors to take both gradients whatever the policy says; `unfreeze release=true` (optionally with a pattern) removes manual overrides and hands the factors back to the policy.",
            group: "fqat",
            arguments: UnfreezeArguments.self,
            examples: ["unfreeze layer3.*", "unfreeze release=true"],
            run: { args, inv in try freezeOrUnfreeze(s, freeze: false, args.target, release: args.release, inv) })
    }

    static func freezeOrUnfreeze(_ s: Session, freeze: Bool, _ args: FreezeArguments, release: Bool, _ inv: Invocation) throws -> Value {
        let pattern = args.pattern, steps = args.steps
        guard let net = s.network, s.isQuantized else {
            throw inv.error("the model has no scale factors; `quantize …` first")
        }
        if !freeze && release {
            guard let run = s.run else { s.pendingFreezes.removeAll(); inv.print("released all pending overrides"); return .int(0) }
            let n = run.stepper.release(pattern != "*" ? pattern : nil)
            inv.print("released \(n) override\(n == 1 ? "" : "s")")
            return .int(n)
        }
        let matched: [String]
        if let run = s.run, run.method.isQuantized {
            matched = freeze ? try run.stepper.freeze(pattern, steps: steps) : try run.stepper.unfreeze(pattern, steps: steps)
        } else {
            let p = try NamePattern(pattern)
            matched = Quant.scaleParameters(in: net).map(\.name).filter(p.matches)
            guard !matched.isEmpty else {
                throw inv.error("pattern '\(pattern)' matches no scale factor; names look like \(Quant.scaleParameters(in: net).prefix(3).map(\.name).joined(separator: ", "))", argument: args.$pattern)
            }
            s.pendingFreezes.append(PendingFreeze(freeze: freeze, pattern: pattern, steps: steps))
        }
        inv.print("\(freeze ? "froze" : "unfroze") g_QAT of \(matched.count) scale factor\(matched.count == 1 ? "" : "s")\(steps.map { " for \($0) steps" } ?? " until released")" + (matched.count <= 6 ? ": " + matched.joined(separator: ", ") : ""))
        return .list(matched.map { .string($0) })
    }

    struct PolicyArguments: CommandArguments {
        @Positional(help: "policy to switch the current run to") var name: FreezePolicy?
        @Option(.number(0...1), help: "disorder threshold τ") var tau: Double?
        @Option(.int(2...1_000_000), help: "window in steps") var K: Int?
    }

    static func policyCommand(_ s: Session) -> CommandSpec {
        CommandSpec(
            name: "policy", summary: "show or set the freeze policy's τ and K (and the method's policy for the current run)",
            discussion: """
            Policies: \(FreezePolicy.allCases.map { "\n  \($0.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0)) \($0.summary)" }.joined())
            The policy follows the training method (fqat = adaptive, the ablations = their own); `policy` with a
            name switches the current run's policy mid-run. τ and K apply to the next window.
            """,
            group: "fqat",
            arguments: PolicyArguments.self,
            examples: ["policy", "policy tau=0.3 K=50", "policy adaptive tau=0.5"],
            run: { args, inv in
                if let tau = args.tau { s.hyperparameters.tau = Float(tau) }
                if let window = args.K { s.hyperparameters.window = window }
                if let run = s.run, run.method.isQuantized {
                    let current = run.stepper.controller.settings
                    let policy = args.name ?? current.policy
                    try run.setFreezeSettings(FreezeSettings(policy: policy, windowLength: s.hyperparameters.window, threshold: s.hyperparameters.tau))
                } else if args.name != nil {
                    throw inv.error("no quantized run to switch; the policy follows the method: `train fqat` (adaptive), `train reverse`, …", argument: args.$name)
                }
                let settings = s.run?.stepper.controller.settings
                inv.print("policy \(settings?.policy.rawValue ?? "(set by the method at `train`)")  τ \(Value.format(Double(s.hyperparameters.tau)))  K \(s.hyperparameters.window)")
                return .record(Record([("policy", .string(settings?.policy.rawValue ?? "")), ("tau", .number(Double(s.hyperparameters.tau))), ("K", .int(s.hyperparameters.window))]))
            })
    }
}
