#!/usr/bin/env python3
"""Where oneDNN's time goes: sums the per-primitive execution times of oneDNN's verbose log.

Usage:
  DNNL_VERBOSE=1 .build/release/fqat-bench --only erm --threads 1 --batch 64 --backend onednn > log.txt
  python3 scripts/onednn_profile.py log.txt

Rows: convolution forward / backward-data / backward-weights, reorders of activations (to or from the
blocked nChw16c layout, `aBcd16b` in oneDNN's notation) and other reorders (weights); the time of
each as oneDNN measured it (`onednn_verbose,exec,...,<ms>`), and its share of all oneDNN execution.
The fqat-bench line of the workload (its step time) is printed too, so the reorders can be read as a
share of the whole step: divide by the number of executions of one layer's forward to get per step.
"""
import collections
import sys


def main(path):
    time = collections.defaultdict(float)
    count = collections.Counter()
    for line in open(path, errors="replace"):
        if not line.startswith(("onednn_verbose,exec", "dnnl_verbose,exec")):
            if " batch " in line and " img/s" in line:
                print(line.rstrip()[:160])
            continue
        fields = line.rstrip().split(",")
        kind = fields[3]
        if kind == "reorder":
            kind = "reorder, activations" if "aBcd16b" in fields[6] else "reorder, weights and other"
        else:
            kind = f"{kind} {fields[5]}"
        time[kind] += float(fields[-1])
        count[kind] += 1
    total = sum(time.values())
    for kind, ms in sorted(time.items(), key=lambda kv: -kv[1]):
        print(f"{kind:34s} {count[kind]:6d} calls {ms:10.1f} ms {100 * ms / total:5.1f}%")
    print(f"{'all oneDNN execution':34s} {sum(count.values()):6d} calls {total:10.1f} ms")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
