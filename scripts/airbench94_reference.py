#!/usr/bin/env python3
"""PyTorch reference for `experiments/airbench94.toml`: the airbench94 recipe on the CPU.

The recipe is Keller Jordan's airbench94 ("94% on CIFAR-10 in 3.29 seconds on a single GPU",
2024), as its uncompiled variant `legacy/airbench94.py` defines it in KellerJordan/cifar10-airbench
at commit f1c599c4af24aca803e3e65a6a7e52a502e09d0e. This file is our own implementation of that
recipe, written against its description and constants; it is not a copy of the published file.
Every constant below is the published one. What differs, and why:

* the data come from the CIFAR-10 binary batches under `--data-dir` (runner's data directory,
  normally `../shared/data`), so that runner and this script train on identical files;
* it runs on the CPU in float32 (the published code casts the network to float16 on a GPU and
  keeps BatchNorm in float32);
* each run is seeded (`torch.manual_seed(seed)`; the published loop is unseeded), and runs only
  the seeds asked for (the published loop runs 25);
* time is measured with `time.perf_counter` around the same regions the published code times
  with CUDA events (whitening init, the training steps, the final TTA evaluation: not the
  per-epoch evaluations), and the whole run's wall time is reported beside it.

The recipe, for the reader comparing it with the TOML file:

* data: images scaled to [0, 1], normalised with CIFAR_MEAN/CIFAR_STD; once per run each
  training image gets a random horizontal flip (p = 0.5), then the flipped set is reflect-padded
  by 2; every epoch takes a random 32x32 crop (independent offsets in -2..2 per axis, per image)
  of the padded set, and on odd epoch indices (1, 3, ...) flips every image (alternating flip);
  batches of 1024 in a fresh random order, the last partial batch dropped (48 per epoch);
* network: conv 2x2 3->24 with bias (whitening, weight frozen), GELU, three groups of
  conv3x3(no bias, same) -> maxpool 2 -> BN -> GELU -> conv3x3 -> BN -> GELU (widths 64, 256,
  256), maxpool 3, flatten, linear 256->10 without bias, times 1/9. BatchNorm: eps 1e-12,
  momentum 0.4 in PyTorch's convention (the published `batchnorm_momentum = 0.6` is 1 - that),
  weight frozen at 1. Convs after the first: default init, then the first `in` filters set to
  the identity (Dirac); biases zero;
* whitening: 2x2 patches of the first 5000 normalised training images, covariance X^T X / n,
  eigh, W = cat(V / sqrt(l + 5e-4), -V / sqrt(l + 5e-4)) with eigenvalues descending;
* loss: cross-entropy with label smoothing 0.2, summed over the batch;
* optimizer: SGD, Nesterov, momentum 0.85; lr = 11.5 / (1024 * (1 + 1 / (1 - 0.85))), weight
  decay 0.0153 * 1024 / (1024 * (1 + 1 / (1 - 0.85))) given to PyTorch as wd / lr per group;
  BatchNorm biases (the only trainable BatchNorm parameters) at lr x 64 with the weight decay
  divided by the same 64; the whitening bias trains for the first 3 epochs only;
* length: ceil(48 * 9.9) = 476 steps over 10 epochs; the lr factor rises linearly from 0.2 to 1
  over the first int(0.23 * 476) steps, then falls linearly to 0.07;
* Lookahead: every 5 steps, with decay = 0.95^5 * (step / 476)^3, every float tensor of the
  state_dict (BatchNorm running statistics too) becomes slow = lerp(slow, w, 1 - decay), w = slow;
  after the last step w = slow;
* evaluation: per epoch without TTA; at the end with TTA level 2: logits averaged as 0.5 *
  mirror-average(x) + 0.5 * mean over the two 1-px translations (reflect pad 1, crops at (0,0)
  and (2,2)) of the mirror-average.

Usage (one line per seed on stdout as CSV; each finished seed is also merged into the --out table
at once, replacing an earlier row of the same seed, epochs and threads, so a sweep can be
gathered one seed at a time):

    .venv-torch/bin/python scripts/airbench94_reference.py --data-dir ../shared/data \\
        --seeds 0 1 2 --threads 2 --out results/baselines/airbench94/reference.csv
"""

import argparse
import csv
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)

HYP = dict(
    epochs=9.9,
    batch_size=1024,
    lr=11.5,  # per 1024 examples
    momentum=0.85,
    weight_decay=0.0153,  # per 1024 examples, decoupled from the lr
    bias_scaler=64.0,
    label_smoothing=0.2,
    whiten_bias_epochs=3,
    translate=2,
    widths=(64, 256, 256),
    bn_momentum=0.4,  # PyTorch's convention: running = (1 - m) * running + m * batch
    scaling_factor=1 / 9,
    whiten_images=5000,
    whiten_eps=5e-4,
    lookahead_every=5,
    warmup_fraction=0.23,
    lr_start=0.2,
    lr_end=0.07,
)


# ----------------------------------------------------------------------------------------------
# Data


def read_batches(folder, names):
    """Images (N, 3, 32, 32) uint8 and labels (N,) int64 from CIFAR-10 binary batch files."""
    raw = np.concatenate(
        [np.fromfile(os.path.join(folder, n), dtype=np.uint8).reshape(-1, 3073) for n in names]
    )
    labels = torch.from_numpy(raw[:, 0].astype(np.int64))
    images = torch.from_numpy(raw[:, 1:].reshape(-1, 3, 32, 32).copy())
    return images, labels


def normalize(images_u8):
    x = images_u8.float() / 255
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (x - mean) / std


def random_translate(padded, size, r):
    """A crop of `size` from every image of `padded` at an independent offset in [-r, r]^2."""
    n = len(padded)
    dy = torch.randint(-r, r + 1, (n,))
    dx = torch.randint(-r, r + 1, (n,))
    out = torch.empty(n, padded.shape[1], size, size, dtype=padded.dtype)
    for sy in range(-r, r + 1):
        for sx in range(-r, r + 1):
            m = (dy == sy) & (dx == sx)
            out[m] = padded[m, :, r + sy : r + sy + size, r + sx : r + sx + size]
    return out


class TrainBatches:
    """The training stream: fixed flips, reflect-padded translations, alternating flips."""

    def __init__(self, images_u8, labels, batch_size, translate):
        self.labels = labels
        self.batch_size = batch_size
        self.translate = translate
        x = normalize(images_u8)
        flip = torch.rand(len(x)) < 0.5
        x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
        self.padded = F.pad(x, (translate,) * 4, mode="reflect")
        self.size = images_u8.shape[-1]
        self.epoch = 0

    def __len__(self):
        return len(self.labels) // self.batch_size

    def __iter__(self):
        x = random_translate(self.padded, self.size, self.translate)
        if self.epoch % 2 == 1:
            x = x.flip(-1)
        self.epoch += 1
        order = torch.randperm(len(x))
        for i in range(len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            yield x[idx], self.labels[idx]


# ----------------------------------------------------------------------------------------------
# Network


class Scale(nn.Module):
    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor


def batch_norm(channels):
    bn = nn.BatchNorm2d(channels, eps=1e-12, momentum=HYP["bn_momentum"])
    bn.weight.requires_grad = False
    return bn


def dirac_conv(cin, cout):
    conv = nn.Conv2d(cin, cout, 3, padding="same", bias=False)
    with torch.no_grad():
        nn.init.dirac_(conv.weight[:cin])
    return conv


def group(cin, cout):
    return nn.Sequential(
        dirac_conv(cin, cout),
        nn.MaxPool2d(2),
        batch_norm(cout),
        nn.GELU(),
        dirac_conv(cout, cout),
        batch_norm(cout),
        nn.GELU(),
    )


def make_net():
    w1, w2, w3 = HYP["widths"]
    whiten = nn.Conv2d(3, 24, 2, padding=0, bias=True)
    with torch.no_grad():
        whiten.bias.zero_()
    whiten.weight.requires_grad = False
    return nn.Sequential(
        whiten,
        nn.GELU(),
        group(24, w1),
        group(w1, w2),
        group(w2, w3),
        nn.MaxPool2d(3),
        nn.Flatten(),
        nn.Linear(w3, 10, bias=False),
        Scale(HYP["scaling_factor"]),
    )


def init_whitening(conv, x):
    """Sets `conv`'s weight to whiten the 2x2 patches of `x` (normalised images)."""
    c, (kh, kw) = x.shape[1], conv.weight.shape[2:]
    patches = x.unfold(2, kh, 1).unfold(3, kw, 1).transpose(1, 3).reshape(-1, c, kh, kw)
    flat = patches.reshape(len(patches), -1).float()
    cov = flat.T @ flat / len(flat)
    values, vectors = torch.linalg.eigh(cov, UPLO="U")
    values = values.flip(0).view(-1, 1, 1, 1)
    vectors = vectors.T.reshape(c * kh * kw, c, kh, kw).flip(0)
    scaled = vectors / torch.sqrt(values + HYP["whiten_eps"])
    with torch.no_grad():
        conv.weight.copy_(torch.cat((scaled, -scaled)))


# ----------------------------------------------------------------------------------------------
# Evaluation


def logits_of(net, x, tta):
    def mirror(v):
        return 0.5 * net(v) + 0.5 * net(v.flip(-1))

    if tta == 0:
        return net(x)
    if tta == 1:
        return mirror(x)
    h, w = x.shape[-2:]
    padded = F.pad(x, (1,) * 4, mode="reflect")
    shifted = [padded[:, :, 0:h, 0:w], padded[:, :, 2:h + 2, 2:w + 2]]
    return 0.5 * mirror(x) + 0.5 * torch.stack([mirror(s) for s in shifted]).mean(0)


def accuracy(net, x, labels, tta):
    net.eval()
    with torch.no_grad():
        logits = torch.cat([logits_of(net, chunk, tta) for chunk in x.split(2000)])
    return (logits.argmax(1) == labels).float().mean().item()


# ----------------------------------------------------------------------------------------------
# Training


def lr_factor(step, total):
    warmup = int(total * HYP["warmup_fraction"])
    if step < warmup:
        f = step / warmup
        return HYP["lr_start"] * (1 - f) + 1.0 * f
    f = (step - warmup) / (total - warmup)
    return 1.0 * (1 - f) + HYP["lr_end"] * f


def run(seed, train, test, log):
    torch.manual_seed(seed)
    wall = time.perf_counter()
    timed = 0.0
    bs, momentum = HYP["batch_size"], HYP["momentum"]
    kilostep = 1024 * (1 + 1 / (1 - momentum))
    lr = HYP["lr"] / kilostep
    wd = HYP["weight_decay"] * bs / kilostep
    lr_bias = lr * HYP["bias_scaler"]

    batches = TrainBatches(train[0], train[1], bs, HYP["translate"])
    test_x, test_y = normalize(test[0]), test[1]
    total = math.ceil(len(batches) * HYP["epochs"])

    net = make_net()
    norm_biases = [p for n, p in net.named_parameters() if p.requires_grad and is_norm(net, n)]
    others = [p for n, p in net.named_parameters() if p.requires_grad and not is_norm(net, n)]
    opt = torch.optim.SGD(
        [
            dict(params=norm_biases, lr=lr_bias, weight_decay=wd / lr_bias),
            dict(params=others, lr=lr, weight_decay=wd / lr),
        ],
        momentum=momentum,
        nesterov=True,
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, total))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=HYP["label_smoothing"], reduction="none")
    slow = {k: v.clone() for k, v in net.state_dict().items()}

    def lookahead(decay):
        for (k, s), v in zip(slow.items(), net.state_dict().values()):
            if v.dtype.is_floating_point:
                s.lerp_(v, 1 - decay)
                v.copy_(s)

    t0 = time.perf_counter()
    init_whitening(net[0], normalize(train[0][: HYP["whiten_images"]]))
    timed += time.perf_counter() - t0

    step = 0
    for epoch in range(math.ceil(HYP["epochs"])):
        net[0].bias.requires_grad = epoch < HYP["whiten_bias_epochs"]
        t0 = time.perf_counter()
        net.train()
        for x, y in batches:
            out = net(x)
            loss = loss_fn(out, y).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if step % HYP["lookahead_every"] == 0:
                decay = 0.95**5 * (step / total) ** 3
                with torch.no_grad():
                    lookahead(decay)
            if step >= total:
                with torch.no_grad():
                    lookahead(1.0)
                break
        timed += time.perf_counter() - t0
        train_acc = (out.detach().argmax(1) == y).float().mean().item()
        val = accuracy(net, test_x, test_y, tta=0)
        log(f"seed {seed} epoch {epoch + 1}: train_loss {loss.item() / bs:.4f} "
            f"train_acc {train_acc:.4f} test_acc {val:.4f} ({time.perf_counter() - wall:.1f} s)")

    t0 = time.perf_counter()
    tta = accuracy(net, test_x, test_y, tta=2)
    timed += time.perf_counter() - t0
    return dict(
        seed=seed,
        test_acc=round(100 * val, 2),
        tta_test_acc=round(100 * tta, 2),
        timed_seconds=round(timed, 1),
        wall_seconds=round(time.perf_counter() - wall, 1),
        steps=step,
    )


def is_norm(net, name):
    module = net.get_submodule(name.rsplit(".", 1)[0])
    return isinstance(module, nn.BatchNorm2d)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", default="../shared/data")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--epochs", type=float, default=HYP["epochs"])
    p.add_argument("--out", default=None, help="CSV file for the table")
    a = p.parse_args()
    HYP["epochs"] = a.epochs
    if a.threads:
        torch.set_num_threads(a.threads)
    folder = os.path.join(a.data_dir, "cifar-10-batches-bin")
    train = read_batches(folder, [f"data_batch_{i}.bin" for i in range(1, 6)])
    test = read_batches(folder, ["test_batch.bin"])

    def log(s):
        print(s, file=sys.stderr, flush=True)

    log(f"torch {torch.__version__}, {torch.get_num_threads()} threads, epochs {a.epochs}")
    n_params = sum(p.numel() for p in make_net().parameters())
    log(f"parameters: {n_params}")
    rows = []
    fields = ["seed", "test_acc", "tta_test_acc", "timed_seconds", "wall_seconds", "steps",
              "epochs", "threads", "torch", "cpu_capability", "finished_utc"]
    setting = dict(epochs=a.epochs, threads=torch.get_num_threads(), torch=torch.__version__,
                   cpu_capability=torch.backends.cpu.get_cpu_capability())
    w = csv.DictWriter(sys.stdout, fieldnames=fields)
    w.writeheader()
    for seed in a.seeds:
        r = dict(run(seed, train, test, log), **setting,
                 finished_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        rows.append(r)
        if a.out:
            write_table(a.out, fields, r)
        w.writerow(r)
        sys.stdout.flush()
    accs = np.array([r["tta_test_acc"] for r in rows])
    log(f"tta_test_acc mean {accs.mean():.2f} std {accs.std(ddof=1) if len(accs) > 1 else 0:.2f}")


def write_table(path, fields, row):
    """Adds `row` to the CSV table at `path`, replacing an earlier row of the same seed, epochs
    and threads, so that a sweep can be gathered one seed at a time (and over several sessions).
    Rows are kept in seed order; the file is replaced atomically."""
    rows = []
    if os.path.exists(path):
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    key = lambda r: (str(r["seed"]), str(r.get("epochs")), str(r.get("threads")))
    rows = [r for r in rows if key(r) != key(row)] + [row]
    rows.sort(key=lambda r: (float(r.get("epochs") or 0), int(r["seed"])))
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, restval="", extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
