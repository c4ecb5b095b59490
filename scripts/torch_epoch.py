#!/usr/bin/env python3
"""PyTorch whole-epoch baseline: one real training epoch of a seed net, the course notes' way.

Usage:
    torch_epoch.py NET --data-dir DIR [--threads 2] [--epochs 1] [--train-limit N]
                   [--preload] [--seed 0] [--num-workers K] [--test-batch-size 1000]
                   [--device cpu] [--quiet]

NET is mnist_cnn or cifar_lenet. DIR is the folder holding `mnist/` and
`cifar-10-batches-bin/` (the same folder as runner's `--data-dir`); the data set's own folder
is accepted too.

What it measures, and why
-------------------------
`scripts/bench_torch.py` times single train steps on random tensors: it compares runner's
kernels with PyTorch's, but not what a user waits for. Issue 13 point 4 asks for the
whole-epoch number: runner's `summary.csv` column `train_images_per_sec` is
`train_images * epochs / training seconds`, where an epoch's training seconds run from the
start of the epoch (the batch iterator is created) to the end of its last step, input
pipeline included, evaluation excluded. This script measures the same thing for the PyTorch
code of the course notes (`../shared/seed/`), on the same data files:

* the data: MNIST's IDX files (gzip or raw) or CIFAR-10's binary batches, read with numpy
  (torchvision is not needed) into a Dataset that, like torchvision's `datasets.MNIST` /
  `datasets.CIFAR10`, returns one image at a time through the notes' transforms
  `Compose([ToTensor(), Normalize(mean, std)])`, re-implemented op for op below (only the
  PIL round trip of torchvision is left out, so this is, if anything, a little faster than
  the notes' real pipeline). The first `--train-limit` training images are used, as runner's
  `train_limit` does;
* the loader: `torch.utils.data.DataLoader(batch_size=64, shuffle=True, num_workers=...)`,
  with the notes' num_workers: not set (0) in the MNIST notebook, 2 in the CIFAR-10 one;
* the loop: the notes' `train()` loop, verbatim in substance (`.to(device)`, `zero_grad`,
  forward, loss, `backward`, `step`, and `loss.item()` every 100 batches for the progress
  line, written to stderr here so that stdout stays one JSON line);
* the nets: `MnistCnn` and `LeNet` imported from `bench_torch.py` (the notes' `CNN(…, 6, 10)`
  and `Net`), with the notes' optimizers (SGD lr 0.01 momentum 0.5 with NLL loss;
  Adam lr 1e-3 with `nn.CrossEntropyLoss`) - the recipes of experiments/mnist_cnn.toml and
  experiments/cifar_lenet.toml.

`train_seconds` is timed from just before the DataLoader iterator is created (so worker
start-up, when there are workers, counts, as it does in a user's epoch) to the end of the last
`optimizer.step()` of each epoch, summed over epochs; reading and decoding the files beforehand
is not included (`load_seconds`). After each epoch the test set is evaluated (timed separately,
forward passes under `torch.no_grad()` in eval mode, batch `--test-batch-size`, default 1000 as
runner's `test_batch_size`); `test_accuracy` is the last epoch's, in percent like runner's
`test_acc`.

`--preload` is the fast variant: the whole split is converted and normalised once into one
float tensor (a TensorDataset) before timing, so an epoch only indexes, collates and trains.
`mode` in the output says which was used ("per_item" = the notes' way, the default, or
"preload").

Output: one JSON line on stdout with net, torch, threads, mode, train_images (images seen in
training, all epochs), train_seconds, train_images_per_sec, test_accuracy, eval_images_per_sec,
and extra keys: python, epochs, batch_size, num_workers, device, seed, epoch_train_seconds,
eval_seconds, test_images, load_seconds, final_logged_loss.

Works with PyTorch 1.13 and 2.x; needs numpy.
"""
import argparse
import gzip
import json
import os
import platform
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_torch import LeNet, MnistCnn  # noqa: E402  (the same net definitions)

# name: dataset, model, notes' mean/std, batch size, notes' num_workers, notes' test shuffle
NETS = {
    "mnist_cnn": {
        "dataset": "mnist",
        "model": MnistCnn,
        "mean": (0.1307,),
        "std": (0.3081,),
        "batch_size": 64,
        "num_workers": 0,  # the MNIST notebook does not set it
        "test_shuffle": True,
    },
    "cifar_lenet": {
        "dataset": "cifar10",
        "model": LeNet,
        "mean": (0.5, 0.5, 0.5),
        "std": (0.5, 0.5, 0.5),
        "batch_size": 64,
        "num_workers": 2,  # trainloader/testloader(..., num_workers=2) in the CIFAR-10 notebook
        "test_shuffle": False,
    },
}


# ----------------------------------------------------------------------------- data files

def _find(dirs, name):
    """First existing `name` or `name.gz` (either order) among `dirs`."""
    base = name[:-3] if name.endswith(".gz") else name
    for d in dirs:
        for cand in (base + ".gz", base):
            p = os.path.join(d, cand)
            if os.path.isfile(p):
                return p
    raise FileNotFoundError("%s(.gz) not found in %s" % (base, " or ".join(dirs)))


def read_idx(path):
    """An IDX file of unsigned bytes (big-endian header), gzip-compressed or raw."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError("%s: not an IDX file of unsigned bytes (magic %r)" % (path, raw[:4]))
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError("%s: %d bytes of data for shape %s" % (path, data.size, dims))
    return data.reshape(dims)


def load_mnist(data_dir):
    """(train_x, train_y, test_x, test_y); images uint8 N x 28 x 28, labels int64."""
    dirs = [os.path.join(data_dir, "mnist"), data_dir]
    out = []
    for split in ("train", "t10k"):
        x = read_idx(_find(dirs, "%s-images-idx3-ubyte" % split))
        y = read_idx(_find(dirs, "%s-labels-idx1-ubyte" % split)).astype(np.int64)
        if x.shape[0] != y.shape[0]:
            raise ValueError("MNIST %s: %d images but %d labels" % (split, x.shape[0], y.shape[0]))
        out += [x, y]
    return tuple(out)


def read_cifar_bin(path):
    rec = np.fromfile(path, dtype=np.uint8)
    if rec.size % 3073:
        raise ValueError("%s: %d bytes is not a whole number of 3073-byte records" % (path, rec.size))
    rec = rec.reshape(-1, 3073)
    return rec[:, 1:].reshape(-1, 3, 32, 32), rec[:, 0].astype(np.int64)


def load_cifar10(data_dir):
    """(train_x, train_y, test_x, test_y); images uint8 N x 3 x 32 x 32 (CHW), labels int64."""
    d = os.path.join(data_dir, "cifar-10-batches-bin")
    if not os.path.isdir(d):
        d = data_dir
    parts = [read_cifar_bin(os.path.join(d, "data_batch_%d.bin" % i)) for i in range(1, 6)]
    train_x = np.concatenate([p[0] for p in parts])
    train_y = np.concatenate([p[1] for p in parts])
    test_x, test_y = read_cifar_bin(os.path.join(d, "test_batch.bin"))
    return train_x, train_y, test_x, test_y


# ----------------------------------------------------------------------------- transforms

def to_tensor(img_hwc):
    """torchvision.transforms.ToTensor on an H x W x C uint8 image (its PIL branch, minus PIL)."""
    img = torch.from_numpy(np.array(img_hwc, np.uint8, copy=True))
    img = img.view(img_hwc.shape[0], img_hwc.shape[1], img_hwc.shape[2])
    img = img.permute((2, 0, 1)).contiguous()
    return img.to(dtype=torch.get_default_dtype()).div(255)


def normalize(tensor, mean, std):
    """torchvision.transforms.Normalize (not in place), as torchvision's functional does it."""
    tensor = tensor.clone()
    dtype = tensor.dtype
    mean = torch.as_tensor(mean, dtype=dtype, device=tensor.device)
    std = torch.as_tensor(std, dtype=dtype, device=tensor.device)
    if (std == 0).any():
        raise ValueError("std evaluated to zero after conversion to %s" % dtype)
    if mean.ndim == 1:
        mean = mean.view(-1, 1, 1)
    if std.ndim == 1:
        std = std.view(-1, 1, 1)
    return tensor.sub_(mean).div_(std)


class PerItemDataset(torch.utils.data.Dataset):
    """Like torchvision's MNIST/CIFAR10: uint8 HWC images, ToTensor + Normalize per item."""

    def __init__(self, images_hwc, labels, mean, std):
        self.data = images_hwc
        self.targets = labels
        self.mean, self.std = mean, std

    def __len__(self):
        return len(self.data)

    def __getitem__(self, index):
        img, target = self.data[index], int(self.targets[index])
        return normalize(to_tensor(img), self.mean, self.std), target


def make_dataset(images, labels, mean, std, preload):
    """images: uint8 N x H x W (MNIST) or N x C x H x W (CIFAR-10, as on disk)."""
    if preload:
        x = torch.from_numpy(np.array(images, copy=True)).float().div_(255)
        if x.dim() == 3:
            x = x.unsqueeze(1)
        m = torch.tensor(mean).view(1, -1, 1, 1)
        s = torch.tensor(std).view(1, -1, 1, 1)
        x = x.sub_(m).div_(s)
        return torch.utils.data.TensorDataset(x, torch.from_numpy(np.array(labels, copy=True)))
    if images.ndim == 3:  # MNIST: one channel
        hwc = images[:, :, :, None]
    else:  # CIFAR-10: torchvision keeps the HWC transpose (a view) and converts per item
        hwc = images.transpose((0, 2, 3, 1))
    return PerItemDataset(hwc, labels, mean, std)


# ----------------------------------------------------------------------------- main

def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("net", choices=sorted(NETS))
    p.add_argument("--data-dir", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--train-limit", type=int, default=None,
                   help="train on the first N training images only")
    p.add_argument("--preload", action="store_true",
                   help="normalise the whole split once instead of per item")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-workers", type=int, default=None,
                   help="DataLoader workers (default: the notes' value, 0 MNIST, 2 CIFAR-10)")
    p.add_argument("--test-batch-size", type=int, default=1000)
    p.add_argument("--device", default="cpu")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    a = p.parse_args()
    cfg = NETS[a.net]
    num_workers = cfg["num_workers"] if a.num_workers is None else a.num_workers
    device = torch.device(a.device)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    t = time.perf_counter()
    load = load_mnist if cfg["dataset"] == "mnist" else load_cifar10
    train_x, train_y, test_x, test_y = load(a.data_dir)
    if a.train_limit is not None:
        train_x, train_y = train_x[:a.train_limit], train_y[:a.train_limit]
    trainset = make_dataset(train_x, train_y, cfg["mean"], cfg["std"], a.preload)
    testset = make_dataset(test_x, test_y, cfg["mean"], cfg["std"], a.preload)
    load_seconds = time.perf_counter() - t

    train_loader = torch.utils.data.DataLoader(
        trainset, batch_size=cfg["batch_size"], shuffle=True, num_workers=num_workers)
    test_loader = torch.utils.data.DataLoader(
        testset, batch_size=a.test_batch_size, shuffle=cfg["test_shuffle"],
        num_workers=num_workers)

    model = cfg["model"]().to(device)
    if a.net == "mnist_cnn":
        optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.5)
        criterion = F.nll_loss
    else:
        optimizer = optim.Adam(model.parameters(), lr=0.001)
        criterion = nn.CrossEntropyLoss()

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def log(msg):
        if not a.quiet:
            print(msg, file=sys.stderr, flush=True)

    epoch_seconds, eval_seconds, seen, test_seen = [], 0.0, 0, 0
    accuracy, last_loss = float("nan"), float("nan")
    for epoch in range(1, a.epochs + 1):
        # ---- training: the notes' train() loop, timed as a user's epoch
        model.train()
        sync()
        t0 = time.perf_counter()
        for batch_idx, (data, target) in enumerate(train_loader):
            data, target = data.to(device), target.to(device)
            optimizer.zero_grad()
            output = model(data)
            loss = criterion(output, target)
            loss.backward()
            optimizer.step()
            seen += len(data)
            if batch_idx % 100 == 0:
                last_loss = loss.item()
                log("Epoch %d Train: [%d/%d (%.0f%%)]\tLoss: %.6f" % (
                    epoch, batch_idx * len(data), len(train_loader.dataset),
                    100.0 * batch_idx / len(train_loader), last_loss))
        sync()
        epoch_seconds.append(time.perf_counter() - t0)

        # ---- evaluation: timed separately, not part of train_seconds
        model.eval()
        correct, total = 0, 0
        t1 = time.perf_counter()
        with torch.no_grad():
            for data, target in test_loader:
                data, target = data.to(device), target.to(device)
                pred = model(data).argmax(1)
                correct += (pred == target).sum().item()
                total += target.size(0)
        eval_seconds += time.perf_counter() - t1
        test_seen += total
        accuracy = 100.0 * correct / max(total, 1)
        log("Epoch %d: train %.2f s, test accuracy %.2f%%" % (epoch, epoch_seconds[-1], accuracy))

    train_seconds = sum(epoch_seconds)
    print(json.dumps({
        "net": a.net,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "mode": "preload" if a.preload else "per_item",
        "train_images": seen,
        "train_seconds": round(train_seconds, 4),
        "train_images_per_sec": round(seen / max(train_seconds, 1e-9), 1),
        "test_accuracy": round(accuracy, 2),
        "eval_images_per_sec": round(test_seen / max(eval_seconds, 1e-9), 1),
        "python": platform.python_version(),
        "epochs": a.epochs,
        "batch_size": cfg["batch_size"],
        "num_workers": num_workers,
        "device": str(device),
        "seed": a.seed,
        "epoch_train_seconds": [round(s, 4) for s in epoch_seconds],
        "eval_seconds": round(eval_seconds, 4),
        "test_images": len(testset),
        "load_seconds": round(load_seconds, 3),
        "final_logged_loss": round(last_loss, 4),
    }))


if __name__ == "__main__":
    main()
