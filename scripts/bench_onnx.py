#!/usr/bin/env python3
"""ONNX Runtime throughput of an exported model (docs/export.md, "Speed"); not run by the tests.

    .venv-test/bin/python scripts/bench_onnx.py MODEL.onnx --size 32 --batch 64 --threads 1,2

Random N(0, 1) input of (batch, C, size, size), C from the model; per thread count: ORT's default
graph optimisations, intra-op threads = that count, inter-op 1, 3 warm-up runs, then the median of
`--repeats` timed runs. Prints images per second and CPU time per wall time (how much of the cores
the process got: the machine is shared).
"""
import argparse
import os
import time

import numpy as np
import onnx
import onnxruntime as ort


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--repeats", type=int, default=10)
    a = p.parse_args()
    m = onnx.load(a.model)
    channels = m.graph.input[0].type.tensor_type.shape.dim[1].dim_value
    x = np.random.default_rng(0).standard_normal((a.batch, channels, a.size, a.size), dtype=np.float32)
    for t in [int(s) for s in a.threads.split(",")]:
        o = ort.SessionOptions()
        o.intra_op_num_threads, o.inter_op_num_threads = t, 1
        s = ort.InferenceSession(a.model, o, providers=["CPUExecutionProvider"])
        for _ in range(3):
            s.run(None, {"input": x})
        walls, cpus = [], []
        for _ in range(a.repeats):
            w0, c0 = time.perf_counter(), time.process_time()
            s.run(None, {"input": x})
            walls.append(time.perf_counter() - w0)
            cpus.append(time.process_time() - c0)
        w = float(np.median(walls))
        print(f"{os.path.basename(a.model)}  batch {a.batch}  {channels}x{a.size}x{a.size}  threads {t}  "
              f"{a.batch / w:9.1f} img/s  cpu_per_wall {sum(cpus) / sum(walls):.2f}")


if __name__ == "__main__":
    main()
