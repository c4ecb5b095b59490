#!/usr/bin/env python3
"""PyTorch baseline for `runner bench`: the three seed nets, same batch sizes, random data.

Usage: bench_torch.py NET [--threads 2] [--warmup 2] [--seconds 3] [--min-steps 3]
                        [--memory-format best|contiguous|channels_last] [--compile]
NET is mnist_cnn, cifar_lenet or vgg16_cifar. Prints one JSON object on stdout:
{"net", "train_img_s", "eval_img_s", "train_steps", "eval_steps", "peak_rss_mib", "torch",
 "cpu_capability", "memory_format": {"train", "eval"}, "compiled"}.
A train step is forward, loss, backward and optimizer step (the recipe's optimizer);
an eval step is a forward pass under no_grad in eval mode. Throughput uses the median step.

Memory format: users chasing speed on CPU set `channels_last` (oneDNN's preferred layout for
convolutions), so by default (`best`) each phase is measured in both formats and the faster one
is reported, with the format that won. `--compile` wraps the model in `torch.compile` (its
compile time is spent in the untimed warm-up steps).
`runner bench` runs this once per net and round, interleaved with its own measurements.
"""
import argparse
import json
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class MnistCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 6, 5)
        self.fc1 = nn.Linear(96, 50)
        self.fc2 = nn.Linear(50, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        return F.log_softmax(self.fc2(x), dim=1)


class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(400, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class Vgg(nn.Module):
    CFG = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]

    def __init__(self):
        super().__init__()
        layers, c = [], 3
        for v in self.CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
                c = v
        layers.append(nn.AvgPool2d(1, 1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(512, 10)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


NETS = {
    # name: (model, input shape, batch, optimizer, loss)
    "mnist_cnn": (MnistCnn, (1, 28, 28), 64, "sgd", "nll"),
    "cifar_lenet": (LeNet, (3, 32, 32), 64, "adam", "ce"),
    "vgg16_cifar": (Vgg, (3, 32, 32), 128, "adam", "ce"),
}


def timed(fn, warmup, seconds, min_steps, max_steps=500):
    for _ in range(warmup):
        fn()
    times, start = [], time.perf_counter()
    while len(times) < max_steps and (len(times) < min_steps or time.perf_counter() - start < seconds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), len(times)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("net", choices=sorted(NETS))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--min-steps", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--memory-format", default="best", choices=["best", "contiguous", "channels_last"])
    p.add_argument("--compile", action="store_true")
    a = p.parse_args()
    dev = torch.device(a.device)
    torch.set_num_threads(a.threads)
    formats = ["contiguous", "channels_last"] if a.memory_format == "best" else [a.memory_format]
    train, evals = [], []
    for fmt in formats:
        t_train, n_train, t_eval, n_eval, batch = measure(a, dev, fmt)
        train.append((t_train, n_train, fmt))
        evals.append((t_eval, n_eval, fmt))
    t_train, n_train, f_train = min(train)
    t_eval, n_eval, f_eval = min(evals)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    try:
        capability = torch.backends.cpu.get_cpu_capability()
    except AttributeError:  # PyTorch before 2.0
        capability = "unknown"
    print(json.dumps({
        "net": a.net,
        "train_img_s": batch / t_train,
        "eval_img_s": batch / t_eval,
        "train_steps": n_train,
        "eval_steps": n_eval,
        "peak_rss_mib": peak,
        "torch": torch.__version__,
        "cpu_capability": capability,
        "memory_format": {"train": f_train, "eval": f_eval},
        "compiled": a.compile,
    }))


def measure(a, dev, fmt):
    """Median train and eval step times of a fresh model in memory format `fmt`."""
    torch.manual_seed(0)
    build, shape, batch, opt, loss_kind = NETS[a.net]
    memory_format = torch.channels_last if fmt == "channels_last" else torch.contiguous_format
    model = build().to(dev).to(memory_format=memory_format)
    if opt == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.5)
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = F.nll_loss if loss_kind == "nll" else F.cross_entropy
    x = torch.randn(batch, *shape).to(dev).contiguous(memory_format=memory_format)
    y = torch.randint(0, 10, (batch,)).to(dev)
    net = torch.compile(model) if a.compile else model

    def train_step():
        optimizer.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        optimizer.step()
        loss.item()

    def eval_step():
        with torch.no_grad():
            net(x).argmax(1).cpu()  # read back, as runner does (and a sync on a GPU)

    model.train()
    t_train, n_train = timed(train_step, a.warmup, a.seconds, a.min_steps)
    model.eval()
    t_eval, n_eval = timed(eval_step, a.warmup, a.seconds, a.min_steps)
    return t_train, n_train, t_eval, n_eval, batch


if __name__ == "__main__":
    main()
