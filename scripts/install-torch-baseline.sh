#!/bin/sh
# Installs the PyTorch baseline that `runner bench` compares against.
#
# Default: the current `torch` from PyPI, the one a user gets from `pip install torch`, into the
# virtualenv `.venv-torch/` at the repository root (git ignores it). On Linux that wheel pulls
# its CUDA runtime wheels even for CPU use (about 3 GB, 5.4 GB installed), because it will not
# import without them. `runner bench` finds `.venv-torch/bin/python` by itself. torchvision comes
# along for `scripts/golden_transforms.py`, which writes the transforms' golden values.
#
# `--debian`: Debian's python3-torch instead (PyTorch 1.13 on bookworm, CPU only, needs root),
# kept as a second column: `runner bench --python /usr/bin/python3`.
#
# Usage: scripts/install-torch-baseline.sh [--debian]
set -eu
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--debian" ]; then
    apt-get update
    apt-get install -y --no-install-recommends python3 python3-torch
    /usr/bin/python3 -c 'import torch; print("torch", torch.__version__)'
    exit 0
fi
python3 -m venv .venv-torch
.venv-torch/bin/pip install --quiet --upgrade pip
.venv-torch/bin/pip install --quiet torch torchvision numpy
.venv-torch/bin/python -c 'import torch; print("torch", torch.__version__, "CPU capability", torch.backends.cpu.get_cpu_capability())'
