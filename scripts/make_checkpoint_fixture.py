#!/usr/bin/env python3
"""Generates Tests/NNTests/Fixtures/checkpoints/: small PyTorch checkpoints in the layouts
scripts/convert_checkpoint.py reads, their converted safetensors, and the expected outputs.

Needs torch and torchvision (only to regenerate; the tests do not):

    python3 -m venv .venv-torch && .venv-torch/bin/pip install torch torchvision numpy
    .venv-torch/bin/python scripts/make_checkpoint_fixture.py     # deterministic: seeds fixed, 1 thread

Models: torchvision's own ResNet class and BasicBlock / Bottleneck blocks (so names and forward are
torchvision's), at width 1/16 (every channel count of the published model divided by 16: stem 4,
stages 4/8/16/32, ResNet-50 outputs ×4) so each file stays small; randomly initialised with
torchvision's init, then BatchNorm affine parameters and running statistics set to random values
so that the eval-mode forward exercises every tensor. 3 input channels, 7 classes.

Checkpoints (written with torch.save):
  resnet18_torchvision.pth       plain state dict, zip format (torch >= 1.6)
  resnet50_torchvision_legacy.pth {"state_dict": …}, legacy format (_use_new_zipfile_serialization=False,
                                 as torch < 1.6 wrote, e.g. the released MoCo-v2 weights)
  resnet50_moco_v2.pth.tar       MoCo-v2 layout: {"epoch", "arch", "state_dict", "optimizer"} with
                                 module.encoder_q.* (projection head fc.0/fc.2: Linear-ReLU-Linear),
                                 module.queue and module.queue_ptr (the key encoder is left out to keep
                                 the file small; the converter drops it by the same rule as the queue)
  resnet18_domainbed_model.pkl   DomainBed's model.pkl: {"args", "model_input_shape", "model_num_classes",
                                 "model_num_domains", "model_hparams", "model_dict"} where model_dict is an
                                 ERM state dict: featurizer.network.* (the ResNet with fc = Identity),
                                 classifier.*, and network.0.network.* / network.1.* sharing the same storage
Expected outputs (expected.safetensors): "input" (4×3×32×32) and, per checkpoint stem, "<stem>.logits"
(or "<stem>.features" for MoCo, whose head is dropped: the avgpool output), computed in float64 from
the stored float32 weights and input. converted/<stem>.safetensors: the converter's output, committed
so the Swift test (Tests/NNTests/CheckpointConversionTests.swift) needs no Python; the Python test
(scripts/test_convert_checkpoint.py) converts again and checks the result is byte-identical.
"""
import collections
import os
import subprocess
import sys

import numpy as np
import torch
import torch.nn as nn

# torchvision's PyPI wheel is built for CUDA torch; next to a CPU-only torch its C++ ops (nms, …) do
# not register and `import torchvision` fails while registering their fake kernels. ResNet uses none
# of them: declaring the two schemas it looks up lets the pure-Python models import.
try:
    from torchvision.models import resnet as tvr
except RuntimeError:
    _schemas = torch.library.Library("torchvision", "DEF")
    for _op in ("nms", "qnms"):
        _schemas.define(f"{_op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    from torchvision.models import resnet as tvr

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.normpath(os.path.join(HERE, "..", "Tests", "NNTests", "Fixtures", "checkpoints"))
WIDTH = 1 / 16
CLASSES = 7


class NarrowResNet(tvr.ResNet):
    """torchvision.models.ResNet with every channel count multiplied by `width`."""

    def __init__(self, block, layers, width, num_classes):
        nn.Module.__init__(self)
        c = lambda base: max(1, int(round(base * width)))
        self._norm_layer = nn.BatchNorm2d
        self.inplanes, self.dilation, self.groups, self.base_width = c(64), 1, 1, 64
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, c(64), layers[0])
        self.layer2 = self._make_layer(block, c(128), layers[1], stride=2)
        self.layer3 = self._make_layer(block, c(256), layers[2], stride=2)
        self.layer4 = self._make_layer(block, c(512), layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(c(512) * block.expansion, num_classes)
        for m in self.modules():   # torchvision's init
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)


def make(arch, seed):
    torch.manual_seed(seed)
    block, layers = (tvr.BasicBlock, [2, 2, 2, 2]) if arch == "resnet18" else (tvr.Bottleneck, [3, 4, 6, 3])
    model = NarrowResNet(block, layers, WIDTH, CLASSES)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.num_batches_tracked.fill_(100)
    return model.eval()


def float64_forward(model, x, features=False):
    m = make_copy(model).double()
    with torch.no_grad():
        if features:
            m.fc = nn.Identity()
        return m(x.double()).numpy()


def make_copy(model):
    import copy
    return copy.deepcopy(model)


def write_safetensors(tensors, path):
    sys.path.insert(0, HERE)
    from convert_checkpoint import write_safetensors as write
    write(tensors, {"generator": "scripts/make_checkpoint_fixture.py", "torch": torch.__version__}, path)


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(os.path.join(OUT, "converted"), exist_ok=True)
    g = torch.Generator().manual_seed(7)
    x = torch.randn(4, 3, 32, 32, generator=g)
    expected = {"input": x.numpy().astype(np.float32)}

    r18 = make("resnet18", 18)
    torch.save(r18.state_dict(), os.path.join(OUT, "resnet18_torchvision.pth"))
    expected["resnet18_torchvision.logits"] = float64_forward(r18, x)

    r50 = make("resnet50", 50)
    torch.save({"state_dict": r50.state_dict()}, os.path.join(OUT, "resnet50_torchvision_legacy.pth"),
               _use_new_zipfile_serialization=False)
    expected["resnet50_torchvision_legacy.logits"] = float64_forward(r50, x)

    moco = make("resnet50", 51)
    dim = 16
    moco.fc = nn.Sequential(nn.Linear(moco.fc.in_features, moco.fc.in_features), nn.ReLU(),
                            nn.Linear(moco.fc.in_features, dim))
    state = collections.OrderedDict(("module.encoder_q." + k, v) for k, v in moco.state_dict().items())
    state["module.queue"] = nn.functional.normalize(torch.randn(dim, 32, generator=g), dim=0)
    state["module.queue_ptr"] = torch.zeros(1, dtype=torch.long)
    torch.save({"epoch": 800, "arch": "resnet50", "state_dict": state,
                "optimizer": {"state": {}, "param_groups": [{"lr": 0.03, "momentum": 0.9, "params": [0, 1]}]}},
               os.path.join(OUT, "resnet50_moco_v2.pth.tar"))
    expected["resnet50_moco_v2.features"] = float64_forward(moco, x, features=True)

    db = make("resnet18", 19)
    featurizer_state = {k: v for k, v in db.state_dict().items() if not k.startswith("fc.")}
    classifier = nn.Linear(db.fc.in_features, CLASSES)
    with torch.no_grad():
        classifier.weight.copy_(db.fc.weight)
        classifier.bias.copy_(db.fc.bias)
    model_dict = collections.OrderedDict()
    for k, v in featurizer_state.items():
        model_dict["featurizer.network." + k] = v
    model_dict["classifier.weight"], model_dict["classifier.bias"] = classifier.weight.data, classifier.bias.data
    for k, v in featurizer_state.items():
        model_dict["network.0.network." + k] = v          # the same tensors: ERM's Sequential(featurizer, classifier)
    model_dict["network.1.weight"], model_dict["network.1.bias"] = classifier.weight.data, classifier.bias.data
    torch.save({"args": {"algorithm": "ERM", "dataset": "PACS", "test_envs": [3], "seed": 0, "trial_seed": 0},
                "model_input_shape": (3, 224, 224), "model_num_classes": CLASSES, "model_num_domains": 3,
                "model_hparams": {"lr": 5e-5, "batch_size": 32, "resnet18": True, "resnet_dropout": 0.0},
                "model_dict": model_dict}, os.path.join(OUT, "resnet18_domainbed_model.pkl"))
    expected["resnet18_domainbed_model.logits"] = float64_forward(db, x)

    write_safetensors({k: np.asarray(v, dtype=np.float32) if k == "input" else np.asarray(v, dtype=np.float32)
                       for k, v in expected.items()}, os.path.join(OUT, "expected.safetensors"))
    for name in ["resnet18_torchvision.pth", "resnet50_torchvision_legacy.pth", "resnet50_moco_v2.pth.tar",
                 "resnet18_domainbed_model.pkl"]:
        stem = name.split(".")[0]
        subprocess.run([sys.executable, os.path.join(HERE, "convert_checkpoint.py"), os.path.join(OUT, name),
                        os.path.join(OUT, "converted", stem + ".safetensors")], check=True)
    for f in sorted(os.listdir(OUT)):
        p = os.path.join(OUT, f)
        if os.path.isfile(p):
            print(f"{f}: {os.path.getsize(p)} bytes")


if __name__ == "__main__":
    main()
