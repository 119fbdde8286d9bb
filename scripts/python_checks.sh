#!/usr/bin/env bash
# Python-side checks, run by scripts/test.sh after the build:
#   1. scripts/test_convert_checkpoint.py   the checkpoint converter (unittest, numpy only)
#   2. scripts/check_onnx.py                `export onnx` in ONNX Runtime against fqat-shell's own
#      outputs, for ResNet-20 W4A4, ResNet-18 W4A4 at 64 px, a mixed-precision ResNet-20, the
#      converted MoCo-v2 ResNet-50 on a DomainBed folder, a full-precision ResNet-20 and the MNIST CNN
#      (GroupNorm) (docs/export.md)
# The packages (scripts/requirements-test.txt) go into the project's own .venv-test on first use.
# Only when the package index cannot be reached are the checks skipped, with the reason printed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-test
BIN="${FQAT_SHELL:-.build/debug/fqat-shell}"
PY="$VENV/bin/python"

if ! "$PY" -c "import numpy, onnx, onnxruntime" 2>/dev/null; then
    echo "python-checks: installing scripts/requirements-test.txt into $VENV" >&2
    python3 -m venv "$VENV"
    if ! "$VENV/bin/pip" install -q --disable-pip-version-check -r scripts/requirements-test.txt >&2; then
        if ! "$VENV/bin/pip" download -q --no-deps --disable-pip-version-check -d "$(mktemp -d)" onnx==1.23.2 >/dev/null 2>&1; then
            echo "python-checks: SKIPPED: the Python package index cannot be reached, so numpy/onnx/onnxruntime cannot be installed" >&2
            exit 0
        fi
        echo "python-checks: pip could not install scripts/requirements-test.txt (the index is reachable)" >&2
        exit 1
    fi
fi

passed=0; failed=0
run() {   # name, command...
    local name="$1"; shift
    if "$@"; then passed=$((passed + 1)); echo "python-checks: $name passed"
    else failed=$((failed + 1)); echo "python-checks: $name FAILED" >&2; fi
}

run "checkpoint converter tests" "$PY" scripts/test_convert_checkpoint.py

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export_check() {   # name, fqat-shell commands (the export and reference paths are appended)
    local name="$1" script="$2"
    if ! (cd "$work" && "$OLDPWD/$BIN" -c "set seed=1 threads=1; $script; export onnx $name.onnx reference=$name.ref.safetensors images=32 check=64" > "$name.log" 2>&1); then
        echo "python-checks: fqat-shell failed for $name:" >&2; cat "$work/$name.log" >&2; return 1
    fi
    grep -E "^exported|integer path" "$work/$name.log" || true
    "$PY" scripts/check_onnx.py "$work/$name.onnx" "$work/$name.ref.safetensors"
}
data="data style-fmnist per_domain=40 channels=3"
run "ORT: ResNet-20 W4A4" export_check r20_w4a4 "$data; model new resnet20; train erm steps=3 bn=train; quantize lsq bits=4; train qat steps=2"
run "ORT: ResNet-18 W4A4 64px" export_check r18_w4a4 "$data size=64; model new resnet18 width=0.25; train erm steps=5 bn=train lr=3e-3; quantize lsq bits=4; train qat steps=2"
run "ORT: ResNet-20 mixed precision" export_check r20_mixed "$data; model new resnet20; train erm steps=5 bn=train lr=3e-3; quantize ewgs bits=4 override=[\"layer1.*:8\", \"layer3.*:2/3\"] keep=[layer2.0.conv1] granularity=tensor narrow=true; train qat steps=2"
# The converted MoCo-v2 fixture (ResNet-50, Bottlenecks) on a DomainBed folder of normalised images
# (a signed stem range, int8 zero point), the path of examples/paper/pretrained.fqs.
"$PY" - "$work/PACS" <<'PY'
import os, random, sys
random.seed(1)
for d, dom in enumerate(["art_painting", "photo", "sketch"]):
    for c, cls in enumerate(["dog", "horse"]):
        os.makedirs(f"{sys.argv[1]}/{dom}/{cls}", exist_ok=True)
        for i in range(8):
            base = [200, 60, 40] if c == 0 else [40, 80, 200]
            px = bytes(min(255, base[ch] // (d + 1) + random.randrange(48)) for _ in range(256) for ch in range(3))
            open(f"{sys.argv[1]}/{dom}/{cls}/{i}.ppm", "wb").write(b"P6\n16 16\n255\n" + px)
PY
moco="$PWD/Tests/NNTests/Fixtures/checkpoints/converted/resnet50_moco_v2.safetensors"
run "ORT: converted MoCo-v2 ResNet-50 W4A4" export_check moco_w4a4 "data folder root=PACS test=[sketch] size=32 batch=4; model load \"$moco\" architecture=resnet50 width=0.0625 strict=false; quantize lsq bits=4"
run "ORT: ResNet-20 full precision" export_check r20_fp "$data; model new resnet20 shortcut=B"
run "ORT: MNIST CNN W4A4 (GroupNorm)" export_check mnist_w4a4 "data style-fmnist per_domain=40; model new mnist_cnn; quantize lsq bits=4"
echo "python-checks: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
