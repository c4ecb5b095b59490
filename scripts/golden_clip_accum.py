#!/usr/bin/env python3
"""Golden numbers for gradient clipping and accumulation (`train.clip_grad`, `train.accumulate`).

Usage: python3 scripts/golden_clip_accum.py      (needs torch; CPU, float32)

A tiny net with fixed weights and inputs, conv -> BatchNorm -> ReLU -> flatten -> linear, trained
with SGD (lr 0.1, momentum 0.9) on cross-entropy for a few optimizer steps, in each case below.
For every case it prints the parameters and then the BatchNorm running statistics after the
last step, in runner's order (each layer's weight before its bias, then running_mean and
running_var): the tests in `src/train/step.rs` build the same net and data, take the same
steps with `GradientSteps` and compare.

The training loop is PyTorch's usual one (and runner's semantics):

    for i, (x, y) in enumerate(batches):
        (F.cross_entropy(net(x), y) / accumulate).backward()
        if (i + 1) % accumulate == 0 or i == len(batches) - 1:
            clip(net.parameters())            # clip_grad_norm_ / clip_grad_value_, if any
            opt.step(); opt.zero_grad()

so a last group shorter than `accumulate` still divides its losses by `accumulate`.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


def value(t, k):
    """Element k of parameter t: multiples of 1/32, exact in float32, never 0."""
    return ((k * 37 + 11 * t) % 17 - 8.5) / 16


def pixel(n, j):
    """Pixel j of image n: multiples of 1/8, exact in float32."""
    return ((n * 9 + j) * 7 % 23 - 11) / 8


IMAGES = 12
X = torch.tensor([[pixel(n, j) for j in range(9)] for n in range(IMAGES)]).reshape(IMAGES, 1, 3, 3)
Y = torch.tensor([(n * 5 + 1) % 3 for n in range(IMAGES)])


# BatchNorm's weight and bias (parameters 2 and 3) keep their initial 1 and 0.
BATCH_NORM = (2, 3)


def net():
    m = nn.Sequential(
        nn.Conv2d(1, 2, 2), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3)
    )
    with torch.no_grad():
        for t, p in enumerate(m.parameters()):
            if t not in BATCH_NORM:
                p.copy_(torch.tensor([value(t, k) for k in range(p.numel())]).reshape(p.shape))
    return m


def run(batch, batches, accumulate=1, clip=None):
    m = net()
    m.train()
    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    for i in range(batches):
        x, y = X[i * batch:(i + 1) * batch], Y[i * batch:(i + 1) * batch]
        (F.cross_entropy(m(x), y) / accumulate).backward()
        if (i + 1) % accumulate == 0 or i == batches - 1:
            if clip is not None:
                clip(m.parameters())
            opt.step()
            opt.zero_grad()
    bn = m[1]
    values = [float(v) for p in m.parameters() for v in p.detach().flatten()]
    values += [float(v) for b in (bn.running_mean, bn.running_var) for v in b.flatten()]
    return values


U = torch.nn.utils
CASES = [
    ("plain", dict(batch=4, batches=3)),
    ("clip_norm", dict(batch=4, batches=3, clip=lambda ps: U.clip_grad_norm_(ps, 0.5))),
    ("clip_norm_inf", dict(batch=4, batches=3,
                           clip=lambda ps: U.clip_grad_norm_(ps, 0.1, norm_type=float("inf")))),
    ("clip_value", dict(batch=4, batches=3, clip=lambda ps: U.clip_grad_value_(ps, 0.05))),
    ("accumulate", dict(batch=2, batches=6, accumulate=2)),
    ("accumulate_clip_norm", dict(batch=2, batches=6, accumulate=2,
                                  clip=lambda ps: U.clip_grad_norm_(ps, 0.5))),
    ("accumulate_leftover", dict(batch=2, batches=5, accumulate=2)),
]

if __name__ == "__main__":
    print(f"// torch {torch.__version__}")
    for name, kw in CASES:
        values = run(**kw)
        print(f"const {name.upper()}: [f64; {len(values)}] = [")
        for i in range(0, len(values), 4):
            print("    " + " ".join("%.9e," % v for v in values[i:i + 4]))
        print("];")
