#!/usr/bin/env python3
"""PyTorch counterpart of fqat-bench's model workloads, for side-by-side comparison on one machine.

Never needed by the tests. Usage: python3 scripts/bench_pytorch.py [--batch 64] [--threads 1,2] [--repeats 3]
       python3 scripts/bench_pytorch.py --models resnet18,resnet50 [--quantized] [--batch 32] [--threads 1,2]
Prints one JSON object per measurement with the same keys as `fqat-bench --json`:
workload (erm | lsq | fqat | eval), batch, threads, images_per_second, cpu_ms_per_image
(process CPU time per image, all threads: robust when other processes share the cores).

Model: CIFAR ResNet-20 (He et al. 2016, option-A shortcuts), 1x28x28 inputs, 10 classes, Adam.
lsq: 4-bit LSQ (per-channel weights, per-tensor unsigned activations; stem input signed, fc FP).
fqat: the same quantized model with a SAM/SAGM-style two-pass step (perturb weights, second pass).
--models resnet18,resnet50: torchvision-layout ResNets (written out here, so torchvision is not
needed) on 3x224x224 inputs with 7 classes, full precision: rows `<model>-erm` (train step, Adam)
and `<model>-eval` (forward, no grad), as `fqat-bench --only resnet18,resnet50` prints them.
--models ... --quantized: the same ResNets 4-bit LSQ-quantized as the ResNet-20 above (the stem only its
input, the classifier not): rows `<model>-lsq` and `<model>-fqat`, as `fqat-bench --only
resnet18-quant,resnet50-quant` prints them.
"""
import argparse, json, statistics, time
import torch
import torch.nn as nn
import torch.nn.functional as F


def grad_scale(x, scale):
    return (x - x * scale).detach() + x * scale


def round_pass(x):
    return (x.round() - x).detach() + x


class LSQ(nn.Module):
    def __init__(self, bits, signed, per_channel=False, channels=1):
        super().__init__()
        self.qn = -(2 ** (bits - 1)) if signed else 0
        self.qp = 2 ** (bits - 1) - 1 if signed else 2 ** bits - 1
        self.per_channel = per_channel
        self.s = nn.Parameter(torch.ones(channels, 1, 1, 1) * 0.05 if per_channel else torch.tensor(0.05))

    def forward(self, x):
        g = 1.0 / (self.qp * x.numel()) ** 0.5
        s = grad_scale(self.s, g)
        return round_pass(torch.clamp(x / s, self.qn, self.qp)) * s


class QConv(nn.Conv2d):
    def __init__(self, *a, bits=None, quant_weight=True, signed_input=False, **k):
        super().__init__(*a, **k)
        self.aq = LSQ(bits, signed_input) if bits else None
        self.wq = LSQ(bits, True, True, self.out_channels) if bits and quant_weight else None

    def forward(self, x):
        if self.aq is not None:
            x = self.aq(x)
        w = self.wq(self.weight) if self.wq is not None else self.weight
        return self._conv_forward(x, w, self.bias)


class Block(nn.Module):
    def __init__(self, cin, cout, stride, bits):
        super().__init__()
        self.conv1 = QConv(cin, cout, 3, stride, 1, bias=False, bits=bits)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = QConv(cout, cout, 3, 1, 1, bias=False, bits=bits)
        self.bn2 = nn.BatchNorm2d(cout)
        self.pad = cout - cin
        self.stride = stride

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        sc = x
        if self.stride != 1 or self.pad:
            sc = x[:, :, ::self.stride, ::self.stride]
            sc = F.pad(sc, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        return F.relu(out + sc)


class ResNet20(nn.Module):
    def __init__(self, bits=None):
        super().__init__()
        self.conv1 = QConv(1, 16, 3, 1, 1, bias=False, bits=bits, quant_weight=False, signed_input=True)
        self.bn1 = nn.BatchNorm2d(16)
        layers, cin = [], 16
        for cout, stride in [(16, 1), (32, 2), (64, 2)]:
            blocks = []
            for i in range(3):
                blocks.append(Block(cin, cout, stride if i == 0 else 1, bits))
                cin = cout
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride, bits=None):
        super().__init__()
        self.conv1 = QConv(cin, planes, 3, stride, 1, bias=False, bits=bits)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = QConv(planes, planes, 3, 1, 1, bias=False, bits=bits)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or cin != planes:
            self.downsample = nn.Sequential(QConv(cin, planes, 1, stride, bias=False, bits=bits), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, planes, stride, bits=None):
        super().__init__()
        self.conv1 = QConv(cin, planes, 1, bias=False, bits=bits)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = QConv(planes, planes, 3, stride, 1, bias=False, bits=bits)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = QConv(planes, planes * 4, 1, bias=False, bits=bits)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = None
        if stride != 1 or cin != planes * 4:
            self.downsample = nn.Sequential(QConv(cin, planes * 4, 1, stride, bias=False, bits=bits),
                                            nn.BatchNorm2d(planes * 4))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class TorchvisionResNet(nn.Module):
    """torchvision's ResNet-18/50 layout (v1.5: stride in the 3x3 of a bottleneck). With `bits`, every
    convolution quantized as in the ResNet-20 above: the stem only its input, the classifier not."""

    def __init__(self, name, classes=7, bits=None):
        super().__init__()
        block, counts = {"resnet18": (BasicBlock, [2, 2, 2, 2]), "resnet50": (Bottleneck, [3, 4, 6, 3])}[name]
        self.conv1 = QConv(3, 64, 7, 2, 3, bias=False, bits=bits, quant_weight=False, signed_input=True)
        self.bn1 = nn.BatchNorm2d(64)
        stages, cin = [], 64
        for i, n in enumerate(counts):
            blocks = []
            for j in range(n):
                blocks.append(block(cin, 64 << i, 2 if (j == 0 and i > 0) else 1, bits))
                cin = (64 << i) * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layers = nn.Sequential(*stages)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        return self.fc(F.adaptive_avg_pool2d(self.layers(x), 1).flatten(1))


def measure(fn, repeats, steps):
    """Median wall seconds per step, and mean process-CPU seconds per step (all threads; spinning
    OpenMP threads count, as in fqat-bench's cpu_ms_per_image)."""
    fn()  # warm-up
    times = []
    c0 = time.process_time()
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            fn()
        times.append((time.perf_counter() - t0) / steps)
    cpu = (time.process_time() - c0) / (repeats * steps)
    return statistics.median(times), cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--models", default="", help="resnet18,resnet50: 224-px models instead of ResNet-20")
    ap.add_argument("--quantized", action="store_true",
                    help="with --models: 4-bit LSQ and two-pass steps (<model>-lsq, <model>-fqat) instead of erm/eval")
    a = ap.parse_args()
    if a.models:
        large(a)
        return
    torch.manual_seed(0)
    x = torch.rand(a.batch, 1, 28, 28)
    y = torch.randint(0, 10, (a.batch,))
    for threads in [int(t) for t in a.threads.split(",")]:
        torch.set_num_threads(threads)
        for workload in ["erm", "lsq", "fqat", "eval"]:
            model = ResNet20(bits=4 if workload in ("lsq", "fqat") else None)
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            if workload == "eval":
                model.eval()
                def fn():
                    with torch.no_grad():
                        model(x)
            elif workload == "fqat":
                fn = two_pass_step(model, opt, x, y)
            else:
                fn = one_pass_step(model, opt, x, y)
            t, cpu = measure(fn, a.repeats, a.steps)
            print(json.dumps({"workload": workload, "framework": "pytorch " + torch.__version__,
                              "batch": a.batch, "threads": threads,
                              "images_per_second": round(a.batch / t, 1),
                              "cpu_ms_per_image": round(cpu / a.batch * 1e3, 3)}), flush=True)


def one_pass_step(model, opt, x, y):
    def fn():
        model.train()
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return fn


def two_pass_step(model, opt, x, y):
    """SAM/SAGM-style: gradient, perturb the weights (not the step sizes), second gradient, restore."""
    weights = [p for n, p in model.named_parameters() if not n.endswith(".s")]

    def fn():
        model.train()
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        g1 = [p.grad.clone() for p in weights]
        n = torch.norm(torch.stack([g.norm() for g in g1]))
        es = [(0.05 / (n + 1e-12) - 0.001) * g for g in g1]
        with torch.no_grad():
            for p, e in zip(weights, es):
                p.add_(e)
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        with torch.no_grad():
            for p, e, g in zip(weights, es, g1):
                p.sub_(e)
                p.grad.add_(g).mul_(0.5)
        opt.step()
    return fn


def large(a):
    torch.manual_seed(0)
    for threads in [int(t) for t in a.threads.split(",")]:
        torch.set_num_threads(threads)
        for name in a.models.split(","):
            model = TorchvisionResNet(name, bits=4 if a.quantized else None)
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            x = torch.rand(a.batch, 3, 224, 224)
            y = torch.randint(0, 7, (a.batch,))

            def evaluate():
                model.eval()
                with torch.no_grad():
                    model(x)

            kinds = ([("lsq", one_pass_step(model, opt, x, y)), ("fqat", two_pass_step(model, opt, x, y))]
                     if a.quantized else [("erm", one_pass_step(model, opt, x, y)), ("eval", evaluate)])
            for kind, fn in kinds:
                t, cpu = measure(fn, a.repeats, 1)
                print(json.dumps({"workload": f"{name}-{kind}", "framework": "pytorch " + torch.__version__,
                                  "batch": a.batch, "threads": threads,
                                  "images_per_second": round(a.batch / t, 2),
                                  "cpu_ms_per_image": round(cpu / a.batch * 1e3, 3)}), flush=True)


if __name__ == "__main__":
    main()
