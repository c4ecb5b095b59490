#!/bin/sh
# Installs the PyTorch baseline that `runner bench` compares against: Debian's python3-torch
# (PyTorch 1.13 on bookworm), CPU only. `runner bench` then finds it through `python3`, or
# `/usr/bin/python3` when `python3` on PATH is another interpreter (pyenv, venv), or `--python`.
# Usage: sudo scripts/install-torch-baseline.sh
set -eu
apt-get update
apt-get install -y --no-install-recommends python3 python3-torch
/usr/bin/python3 -c 'import torch; print("torch", torch.__version__)'
