#!/usr/bin/env bash
# The GPU check, one prepared script for the lent GPU machine (no network there; it receives the
# working tree plus gpu-pack/ from scripts/gpu-pack.sh). It
#   (a) compares every layer op on CUDA against the CPU (`runner device-check`),
#   (b) runs the throughput benchmark of the three seed nets, with PyTorch in the same run
#       when python3 has torch (`runner bench`, if this build has it),
#   (c) trains experiments/vgg16_cifar.toml for its 10 epochs on the packed CIFAR-10 subset and
#       prints time and test accuracy, then the seed's recipe in PyTorch on the same files
#       (scripts/torch_seed_vgg.py), and
#   (d) writes everything to $OUT/gpu-check.log (and the runs under $OUT).
# Every step has its own time limit so the log always ends with the summary; on an H100 the
# whole script should take about 5 minutes.
#
#   device tool:  run(command="scripts/gpu-check.sh", carry=["gpu-pack"], timeout_s=540)
#   dry run here: DRY_RUN=1 PYTHON=/usr/bin/python3 scripts/gpu-check.sh   (CPU build, tiny runs)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu-check.log") 2>&1
PACK=${PACK:-gpu-pack}
PY=${PYTHON:-python3}
DRY_RUN=${DRY_RUN:-0}
section() { echo; echo "== $*   [$(date -u +%T)]"; }
limit() { local s=$1; shift; timeout --kill-after=10 "$s" "$@"; local rc=$?; [ $rc = 124 ] && echo "(stopped after ${s}s)"; return $rc; }

section "machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
"$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())' 2>&1
nproc

section "unpack the build and the data"
if [ "$DRY_RUN" = 1 ]; then
  RUNNER=${RUNNER:-target/release/runner}; DEVICE=cpu
  RUN_ARGS=(--epochs 1 --train-limit 256); TORCH_ARGS=(--device cpu --epochs 1 --train-limit 256 --workers 2)
  echo "DRY RUN: $RUNNER on the CPU, 1 epoch of 256 images"
else
  tar xzf "$PACK/gpu-dist.tar.gz" -C target 2>/dev/null || { mkdir -p target && tar xzf "$PACK/gpu-dist.tar.gz" -C target; }
  RUNNER=target/gpu-dist/run-on-gpu.sh; DEVICE=cuda
  RUN_ARGS=(); TORCH_ARGS=(--device cuda --workers "$(nproc)")
fi
"$PY" scripts/cifar_subset.py unpack "$PACK/cifar" data-gpu/cifar-10-batches-bin || exit 1
"$RUNNER" --version

section "(a) every op on CUDA against the CPU"
limit 120 "$RUNNER" device-check
device_check=$?

section "(b) throughput of the seed nets, runner and PyTorch side by side"
if "$RUNNER" --help 2>/dev/null | grep -qE "^  bench( |$)"; then
  limit 150 "$RUNNER" bench --device "$DEVICE" --python "$PY" --plain --rounds 1 --seconds 2 --net mnist_cnn --net cifar_lenet --net vgg16_cifar
else
  echo "this build has no \`runner bench\`: skipped"
fi

section "(c) vgg16_cifar, 10 epochs, runner"
rm -rf "$OUT/runs"
limit 240 "$RUNNER" experiments/vgg16_cifar.toml --data-dir data-gpu --set "device=$DEVICE" \
  --out "$OUT/runs" --plain --log-every 100 "${RUN_ARGS[@]}"
summary=$(ls "$OUT"/runs/vgg16_cifar/*/summary.csv 2>/dev/null | head -1)

section "(c) the seed's VGG recipe, PyTorch, same files"
limit 240 "$PY" scripts/torch_seed_vgg.py --data data-gpu/cifar-10-batches-bin "${TORCH_ARGS[@]}" | tee "$OUT/torch.txt"

section "summary"
echo "device-check exit code: $device_check (0: every op agrees)"
"$PY" - "$summary" "$OUT/torch.txt" <<'PY'
import csv, json, sys
r = next(csv.DictReader(open(sys.argv[1]))) if sys.argv[1] else None
t = None
for line in open(sys.argv[2]):
    if line.startswith("{"):
        t = json.loads(line)
print("| | runner | pytorch |\n|---|---:|---:|")
print("| training images x epochs | %s | %s |" % (
    r and f"{int(r['train_images'])} x {r['epochs']}", t and f"{t['train_images']} x {t['epochs']}"))
print("| seconds, whole run | %s | %s |" % (r and r["seconds"], t and t["seconds"]))
print("| test accuracy (%%) | %s | %s (seed's batch-stat mode: %s) |" % (
    r and r["test_acc"], t and t["test_acc"], t and t["test_acc_seed_mode"]))
PY
