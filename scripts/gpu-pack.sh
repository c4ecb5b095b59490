#!/usr/bin/env bash
# Prepares gpu-pack/, everything scripts/gpu-check.sh needs on the GPU machine that is not in the
# repository: the CUDA build (target/gpu-dist, gzipped) and a lossless CIFAR-10 subset (the full
# test set + the first 20,000 training images as WebP mosaics, see scripts/cifar_subset.py).
# The GPU machine receives at most 64 MiB (working tree + carried paths); this script checks the
# total. Run from the repository root on the development machine (no GPU needed):
#
#   scripts/gpu-pack.sh                # ~10-30 min the first time (CUDA kernels), ~3 min per 10k images
#   then, with the device tool:  run(command="scripts/gpu-check.sh", carry=["gpu-pack"], timeout_s=540)
#
# env: TRAIN (training images to pack, default 20000), SKIP_BUILD=1 (reuse target/gpu-dist)
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
TRAIN=${TRAIN:-20000}
mkdir -p gpu-pack
if [ "${SKIP_BUILD:-0}" != 1 ] || [ ! -x target/gpu-dist/runner ]; then
  ../shared/tools/build-cuda.sh --features cuda
fi
tar czf gpu-pack/gpu-dist.tar.gz -C target gpu-dist
if [ ! -f gpu-pack/cifar/MANIFEST.json ] || [ "$(python3 -c "import json;print(sum(c['images'] for c in json.load(open('gpu-pack/cifar/MANIFEST.json'))['chunks'] if c['name']!='test'))")" != "$TRAIN" ]; then
  rm -rf gpu-pack/cifar
  python3 scripts/cifar_subset.py pack ../shared/data/cifar-10-batches-bin gpu-pack/cifar --train "$TRAIN"
fi
tree=$(git ls-files -z --cached --others --exclude-standard | du -cb --files0-from=- | tail -1 | cut -f1)
pack=$(du -sb gpu-pack | cut -f1)
total=$((tree + pack))
echo "working tree $((tree / 1048576)) MiB + gpu-pack $((pack / 1048576)) MiB = $((total / 1048576)) MiB (limit 64 MiB)"
[ "$total" -lt $((64 * 1048576)) ] || { echo "too large for the GPU machine: pack fewer training images (TRAIN=...)" >&2; exit 1; }
