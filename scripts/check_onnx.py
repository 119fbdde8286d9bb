#!/usr/bin/env python3
"""Checks an `export onnx` file in ONNX Runtime against fqat-shell's own outputs.

    scripts/check_onnx.py MODEL.onnx REFERENCE.safetensors

REFERENCE is written by `export onnx MODEL.onnx reference=REFERENCE.safetensors`: evaluation images
("input"), fqat-shell's eval-mode logits ("logits") and, for a quantized model, every quantized
input's integer codes ("<layer>.input_codes"). Checks (docs/export.md, "How close ORT comes"):
  1. onnx.checker.check_model(full_check=True) passes; opset >= 13; metadata names the format.
  2. ORT's QuantizeLinear codes against fqat-shell's: the first quantized input (the image, computed
     identically) must match exactly, and at the first quantized input where any code differs, codes
     differ by one step at most (before the first flip both sides compute the same values up to float
     rounding, so only a value within rounding of a .5 tie can round the other way; later differences
     follow from that one). The share of differing codes is printed.
  3. ORT's logits have the same argmax as fqat-shell's on every image (an image whose own top-2
     margin is below 2·max|Δ logits| is a near tie: reported, not failed), and
     max |Δ logits| <= 1e-4·max|logit| for a full-precision model (float rounding only), or
     <= 0.1·max|logit| for a quantized one (the budget of a few one-step flips; see the docs).
Prints one line per check; exits 1 on a failure, 0 when all pass.
"""
import json
import struct
import sys

import numpy as np
import onnx
import onnxruntime as ort

DTYPES = {"F32": np.float32, "I8": np.int8, "U8": np.uint8, "I64": np.int64}


def read_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    out = {}
    for name, e in header.items():
        a, b = e["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype=DTYPES[e["dtype"]]).reshape(e["shape"])
    return out, meta


def check(model_path, reference_path, log=print):
    failures = []

    def verdict(ok, text):
        log(("ok    " if ok else "FAIL  ") + text)
        if not ok:
            failures.append(text)

    model = onnx.load(model_path)
    try:
        onnx.checker.check_model(model, full_check=True)
        verdict(True, "onnx.checker.check_model(full_check=True)")
    except Exception as e:  # noqa: BLE001 - report whatever the checker says
        verdict(False, f"onnx.checker.check_model: {e}")
    opset = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    meta = {p.key: p.value for p in model.metadata_props}
    verdict(opset >= 13 and meta.get("fqat.format") == "fqat-shell.onnx.v1",
            f"opset {opset}, format {meta.get('fqat.format')}, {meta.get('fqat.architecture')} {meta.get('fqat.quantization')}")

    ref, _ = read_safetensors(reference_path)
    x, want = ref["input"].astype(np.float32), ref["logits"]
    quantized = any(n.op_type == "QuantizeLinear" for n in model.graph.node)

    # 2. Codes: the QuantizeLinear outputs as extra graph outputs.
    if quantized:
        probe = onnx.ModelProto()
        probe.CopyFrom(model)
        names = []
        for node in probe.graph.node:
            if node.op_type == "QuantizeLinear" and node.output[0].endswith(".input_quantized"):
                layer = node.output[0][: -len(".input_quantized")]
                if f"{layer}.input_codes" in ref:
                    names.append((layer, node.output[0]))
                    elem = onnx.TensorProto.UINT8 if ref[f"{layer}.input_codes"].dtype == np.uint8 else onnx.TensorProto.INT8
                    probe.graph.output.append(onnx.helper.make_tensor_value_info(node.output[0], elem, None))
        session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
        outs = session.run([n for _, n in names], {"input": x})
        total = differ = 0
        first = None   # (layer, largest step) of the first quantized input whose codes differ
        for i, ((layer, _), got) in enumerate(zip(names, outs)):
            ours = ref[f"{layer}.input_codes"]
            d = np.abs(got.astype(np.int32) - ours.astype(np.int32))
            total += d.size
            differ += int((d > 0).sum())
            if i == 0:
                verdict(int(d.max()) == 0, f"{layer}: codes of the first quantized input identical "
                        f"({int((d > 0).sum())} of {d.size} differ)")
            if first is None and d.max() > 0:
                first = (layer, int(d.max()), int((d > 0).sum()))
        log(f"      codes at {len(names)} quantized inputs: {differ} of {total} differ "
            f"({100.0 * differ / max(total, 1):.4f}%)")
        if first is None:
            verdict(len(names) > 0, "every code identical")
        else:
            verdict(first[1] == 1, f"first differing codes at {first[0]}: {first[2]} code(s), by at most {first[1]} "
                    "step (a tie rounded the other way; later differences follow from it)")

    # 3. Logits from the model as exported (ORT's default graph optimisations).
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    got = session.run(["logits"], {"input": x})[0]
    scale = float(np.abs(want).max())
    diff = float(np.abs(got - want).max())
    agree = int((got.argmax(1) == want.argmax(1)).sum())
    # A near tie: fqat-shell's own top-2 margin below 2·max|Δ| — there the order of the two classes is
    # within what one flipped code moves, and is reported rather than failed (docs/export.md).
    top2 = np.sort(want, axis=1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]
    decided = margin >= 2 * diff
    disagree_decided = int(((got.argmax(1) != want.argmax(1)) & decided).sum())
    for i in np.nonzero((got.argmax(1) != want.argmax(1)) & ~decided)[0]:
        log(f"      near tie on image {i}: top-2 margin {margin[i]:.3g} < 2·max|Δ|; ORT class {got[i].argmax()}, ours {want[i].argmax()}")
    verdict(disagree_decided == 0, f"argmax agrees on {agree} of {len(want)} images "
            f"(smallest top-2 margin {float(margin.min()):.3g}; {int((~decided).sum())} near ties)")
    bound = (0.1 if quantized else 1e-4) * scale
    verdict(diff <= bound, f"max |Δ logits| {diff:.3g} <= {bound:.3g} ({'0.1' if quantized else '1e-4'} × max |logit| {scale:.3g})")
    return failures, {"max_diff": diff, "max_logit": scale, "agree": agree, "images": len(want)}


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    failures, _ = check(argv[1], argv[2])
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
