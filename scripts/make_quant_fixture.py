#!/usr/bin/env python3
"""PyTorch reference for Tests/QuantTests/Fixtures/lsq_conv_block.safetensors.

An LSQ-quantized conv block, written from the LSQ definition (docs/quantization.md §1):
    x' = LSQ(x; s_a)  input, unsigned 4-bit, per tensor      [0, 15]
    w' = LSQ(W; s_w)  weight, signed 4-bit, per output channel [-8, 7]
    y  = ReLU(BN_eval(conv2d(x', w', bias, stride 1, padding 1)))
    L  = sum(y * c)   with a fixed random upstream gradient c
Saved: all inputs (x, W, bias, s_a, s_w, BN gamma/beta/running stats, c) and PyTorch's y, dL/dx,
dL/dW, dL/ds_a, dL/ds_w, dL/dbias. The Swift test rebuilds the block with Quant + NN and compares.

LSQ here: v = clamp(x / s, Qn, Qp); y = round_pass(v) * s with round_pass(v) = (round(v) - v).detach() + v
(torch.round is round-half-to-even); s enters through a gradient-scale function that is the identity
forward and multiplies the gradient by g = 1/sqrt(Qp * numel(x)) backward (N = the whole tensor, as
in the authors' LSQ fork). A custom autograd function keeps s's forward value bit-exact (LSQF's
`(s - s*g).detach() + s*g` can move it by one ulp).

Inputs are drawn so that no x/s lies within 0.02 of a rounding boundary (half-integer) or a clamp
bound, so Float32 differences in x/s cannot flip a rounding decision between the two implementations.

Run: python3 scripts/make_quant_fixture.py   (needs torch and numpy; writes the fixture, ~10 KB)
"""
import json
import os
import struct

import numpy as np
import torch

torch.manual_seed(0)
rng = np.random.default_rng(0)


class GradScale(torch.autograd.Function):
    @staticmethod
    def forward(ctx, s, g):
        ctx.g = g
        return s.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.g, None


def round_pass(v):
    return (torch.round(v) - v).detach() + v


def lsq(x, s, qn, qp, per_channel):
    g = 1.0 / (qp * x.numel()) ** 0.5
    s = GradScale.apply(s, g)
    if per_channel:
        s = s.view(-1, *([1] * (x.dim() - 1)))
    v = torch.clamp(x / s, qn, qp)
    return round_pass(v) * s


def away_from_boundaries(values, scale, qn, qp, margin=0.02):
    """Nudges each value so v = values/scale is >= margin from half-integers and clamp bounds."""
    v = values / scale
    frac = v - np.floor(v)
    for bad in (0.5,):
        near = np.abs(frac - bad) < margin
        v[near] += 2 * margin * np.sign(frac[near] - bad + 1e-12)
    near_bound = (np.abs(v - qn) < margin) | (np.abs(v - qp) < margin)
    v[near_bound] += 3 * margin
    return (v * scale).astype(np.float32)


N, CIN, COUT, H, W, K = 2, 3, 4, 6, 6, 3
s_a = np.array([0.15], dtype=np.float32)
s_w = np.array([0.05, 0.08, 0.03, 0.06], dtype=np.float32)

x = np.abs(rng.normal(0, 1.0, (N, CIN, H, W))).astype(np.float32)
x[0, 0, 0, :3] = 3.0  # a few inputs above 15 * s_a = 2.25: clipped
x = away_from_boundaries(x, s_a[0], 0, 15)
weight = rng.normal(0, 0.2, (COUT, CIN, K, K)).astype(np.float32)
for c in range(COUT):
    weight[c] = away_from_boundaries(weight[c], s_w[c], -8, 7)
bias = rng.normal(0, 0.1, COUT).astype(np.float32)
gamma = rng.uniform(0.5, 1.5, COUT).astype(np.float32)
beta = rng.normal(0, 0.1, COUT).astype(np.float32)
running_mean = rng.normal(0, 0.2, COUT).astype(np.float32)
running_var = rng.uniform(0.5, 2.0, COUT).astype(np.float32)
upstream = rng.normal(0, 1, (N, COUT, H, W)).astype(np.float32)

tx = torch.tensor(x, requires_grad=True)
tw = torch.tensor(weight, requires_grad=True)
tb = torch.tensor(bias, requires_grad=True)
tsa = torch.tensor(s_a, requires_grad=True)
tsw = torch.tensor(s_w, requires_grad=True)
bn = torch.nn.BatchNorm2d(COUT, eps=1e-5)
with torch.no_grad():
    bn.weight.copy_(torch.tensor(gamma))
    bn.bias.copy_(torch.tensor(beta))
    bn.running_mean.copy_(torch.tensor(running_mean))
    bn.running_var.copy_(torch.tensor(running_var))
bn.eval()

xq = lsq(tx, tsa, 0, 15, per_channel=False)
wq = lsq(tw, tsw, -8, 7, per_channel=True)
y = torch.relu(bn(torch.nn.functional.conv2d(xq, wq, tb, stride=1, padding=1)))
(y * torch.tensor(upstream)).sum().backward()

tensors = {
    "x": x, "weight": weight, "bias": bias, "s_a": s_a, "s_w": s_w,
    "bn_weight": gamma, "bn_bias": beta, "bn_running_mean": running_mean, "bn_running_var": running_var,
    "upstream": upstream,
    "y": y.detach().numpy(), "grad_x": tx.grad.numpy(), "grad_weight": tw.grad.numpy(),
    "grad_bias": tb.grad.numpy(), "grad_s_a": tsa.grad.numpy(), "grad_s_w": tsw.grad.numpy(),
}


def write_safetensors(path, named, metadata):
    header = {"__metadata__": metadata}
    offset = 0
    blobs = []
    for name in sorted(named):
        arr = np.ascontiguousarray(named[name], dtype="<f4")
        raw = arr.tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "QuantTests", "Fixtures",
                   "lsq_conv_block.safetensors")
write_safetensors(out, tensors, {
    "torch": torch.__version__,
    "block": "LSQ(x; s_a, unsigned 4-bit) -> conv3x3(LSQ(W; s_w per-channel signed 4-bit), bias, pad 1) -> BN eval -> ReLU",
    "loss": "sum(y * upstream)",
})
print("wrote", os.path.normpath(out), "grad_s_a", tsa.grad.numpy(), "grad_s_w", tsw.grad.numpy())
