#!/usr/bin/env python3
"""PyTorch interop: a run's model.safetensors in the equivalent torch.nn.Module, and back.

Usage:
    torch_interop.py RUN_DIR [RUN_DIR...] --data-dir DIR [--runner PATH] [--batch-size 500]
                     [--keep DIR]
    torch_interop.py --make-fixture EXPERIMENT.toml OUT_PREFIX

For every RUN_DIR (a finished run: `config.toml` + `model.safetensors`):

1. runner -> PyTorch. Reads the run's resolved `config.toml` (tomllib), builds the equivalent
   `nn.Module` from its layer list (every layer registered under runner's layer name, so that
   its `state_dict` keys are runner's tensor names), reads `model.safetensors` (parsed here with
   numpy: 8-byte little-endian header length, JSON header, raw little-endian data) and loads it
   with `load_state_dict(strict=True)`. It reads the test split from DIR (MNIST/Fashion-MNIST
   IDX, CIFAR-10 binary batches), applies the config's `test_transforms` as runner does (bytes /
   255 in f32, then normalize / center_crop / grayscale), runs the module in eval mode (with the
   config's `data.tta`, as `runner eval` applies it: none, flip or flip_translate) and
   compares its outputs with the ones runner computes on the same images
   (`runner eval RUN_DIR --logits FILE`): argmax on every image, and max |difference|.
2. PyTorch -> runner. Perturbs every floating-point tensor of the module in PyTorch
   (x * (1 + 0.05 N(0, 1)), running variances kept positive) and adds 1 to every
   `num_batches_tracked`, writes the `state_dict` as safetensors (here, with numpy), has runner
   check it as `train.init_from` (`runner check config.toml --set train.init_from=...`) and
   evaluate it (`runner eval FILE --experiment config.toml --logits ...`), and compares runner's
   outputs with PyTorch's on the same weights.

It prints, per run, the number of test images, the argmax agreement, the max |logit
difference| of both directions and the torch version, and exits 1 when an argmax differs or a
difference exceeds --tol (default 1e-4), 2 when something cannot be compared (missing files, a
transform it cannot reproduce: the random ones and pixel_permutation, whose permutation comes
from runner's generator).

`--make-fixture EXPERIMENT.toml OUT_PREFIX` writes the golden files of runner's test of
PyTorch-exported weights (tests/fixtures/torch/): the module of EXPERIMENT (every layer must be
named and `model.input` given) with PyTorch's own initialisation under `torch.manual_seed(0)`
and random BatchNorm buffers, as `OUT_PREFIX.safetensors`, and a fixed random input with the
module's eval-mode output on it as `OUT_PREFIX_io.safetensors` (tensors `input`, `logits`).

Needs torch and numpy (no torchvision, no safetensors package). Python 3.11+ (tomllib).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_epoch import _find, read_cifar_bin, read_idx  # noqa: E402  (the same file readers)
from airbench94_reference import Scale, logits_of  # noqa: E402  (`scale`; airbench's TTA)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ----------------------------------------------------------------------------- safetensors

_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "U32": np.dtype("<u4"),
    "BOOL": np.dtype("?"),
}


def read_safetensors(path):
    """{name: numpy array} of a safetensors file (BF16 is widened to float32)."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError("%s: too short for a safetensors file" % path)
    n = int.from_bytes(raw[:8], "little")
    if 8 + n > len(raw):
        raise ValueError("%s: header of %d bytes in a file of %d" % (path, n, len(raw)))
    header = json.loads(raw[8:8 + n])
    data = memoryview(raw)[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        shape = tuple(info["shape"])
        if info["dtype"] == "BF16":
            bits = np.frombuffer(data[start:end], dtype="<u2").astype(np.uint32) << 16
            out[name] = bits.view(np.float32).reshape(shape)
        else:
            out[name] = np.frombuffer(data[start:end], dtype=_DTYPES[info["dtype"]]).reshape(shape)
    return out


def write_safetensors(path, tensors):
    """Writes {name: torch tensor} (F32, F64 or I64) as a safetensors file."""
    names = {np.dtype("<f4"): "F32", np.dtype("<f8"): "F64", np.dtype("<i8"): "I64"}
    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        # Not np.ascontiguousarray: it makes a 0-d count (`num_batches_tracked`) 1-d.
        a = tensors[name].detach().cpu().contiguous().numpy()
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        b = a.tobytes()
        header[name] = {"dtype": names[a.dtype], "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(b)]}
        chunks.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)  # the format pads the header to a multiple of 8 bytes
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little"))
        f.write(h)
        for b in chunks:
            f.write(b)


# ----------------------------------------------------------------------------- the module

class GlobalAvgPool(nn.Module):
    """runner's `global_avg_pool`: mean over height and width, [N, C, H, W] -> [N, C]."""

    def forward(self, x):
        return x.mean((2, 3))


class Add(nn.Module):
    def forward(self, *xs):
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class Concat(nn.Module):
    def forward(self, *xs):
        return torch.cat(xs, 1)


ALIASES = {"conv": "conv2d", "bn": "batch_norm2d", "pool": "max_pool2d",
           "avgpool": "avg_pool2d", "gap": "global_avg_pool", "fc": "linear"}


def make_layer(spec, shapes):
    """The torch module of one layer of a resolved config, for inputs of `shapes` ([C, H, W]
    or [F], batch excluded). Semantics as src/graph/layer.rs: square kernels, floor-mode
    pooling, max-pool padding as -inf, avg-pool counting the zero padding."""
    op = ALIASES.get(spec["op"], spec["op"])
    shape = shapes[0]

    def declared(key, inferred):
        if key in spec and spec[key] != inferred:
            raise ValueError("layer %s declares %s = %s, but its input gives %s"
                             % (spec["name"], key, spec[key], inferred))
        return inferred

    if op == "conv2d":
        return nn.Conv2d(declared("in", shape[0]), spec["out"], spec["kernel"],
                         stride=spec.get("stride", 1), padding=spec.get("padding", 0),
                         bias=spec.get("bias", True))
    if op == "batch_norm2d":
        return nn.BatchNorm2d(declared("features", shape[0]), eps=spec.get("eps", 1e-5),
                              momentum=spec.get("momentum", 0.1))
    if op == "linear":
        if len(shape) != 1:
            raise ValueError("layer %s: linear on a %s input" % (spec["name"], shape))
        return nn.Linear(declared("in", shape[0]), spec["out"], bias=spec.get("bias", True))
    if op in ("max_pool2d", "avg_pool2d"):
        k = spec["kernel"]
        s, p = spec.get("stride", k), spec.get("padding", 0)
        if op == "max_pool2d":
            return nn.MaxPool2d(k, s, p)
        return nn.AvgPool2d(k, s, p, count_include_pad=True)
    simple = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
              "global_avg_pool": GlobalAvgPool, "flatten": nn.Flatten, "add": Add,
              "concat": Concat, "identity": nn.Identity}
    if op in simple:
        return simple[op]()
    if op == "gelu":
        return nn.GELU(approximate=spec.get("approximate", "none"))
    if op == "scale":
        return Scale(spec["factor"])
    if op == "dropout":
        return nn.Dropout(spec.get("p", 0.5))
    if op == "log_softmax":
        return nn.LogSoftmax(dim=1)
    raise ValueError("layer %s: op `%s` is not in a resolved config (give a run folder, whose "
                     "config.toml has blocks and shorthands expanded)" % (spec.get("name"), op))


def _register(root, dotted, module):
    """Registers `module` at the dotted path (`features.conv1`), making plain containers for
    the parts before the last, so that `state_dict` keys are `<dotted>.weight`."""
    parts = dotted.split(".")
    node = root
    for part in parts[:-1]:
        child = node._modules.get(part)
        if child is None:
            child = nn.Module()
            node.add_module(part, child)
        node = child
    if parts[-1] in node._modules:
        # A container made for an earlier, longer name: keep its children under this layer.
        for name, sub in node._modules[parts[-1]]._modules.items():
            module.add_module(name, sub)
    node.add_module(parts[-1], module)


class RunnerNet(nn.Module):
    """The network of a resolved runner config: layers in file order, each reading the previous
    layer's output unless it names `inputs`; the last layer's output is the network's."""

    def __init__(self, model):
        super().__init__()
        layers = model["layers"]
        shapes = {"input": list(model["input"])}
        self.plan = []  # (name, module, input names)
        previous = "input"
        with torch.no_grad():
            values = {"input": torch.zeros([1] + shapes["input"])}
            for spec in layers:
                if "name" not in spec:
                    raise ValueError("every layer needs a `name` (a run's config.toml names all)")
                inputs = spec.get("inputs", [previous])
                module = make_layer(spec, [shapes[i] for i in inputs])
                _register(self, spec["name"], module)
                module.eval()
                out = module(*[values[i] for i in inputs])
                values[spec["name"]] = out
                shapes[spec["name"]] = list(out.shape[1:])
                self.plan.append((spec["name"], module, inputs))
                previous = spec["name"]

    def forward(self, x):
        values = {"input": x}
        for name, module, inputs in self.plan:
            values[name] = module(*[values[i] for i in inputs])
        return values[self.plan[-1][0]] if self.plan else x


# ----------------------------------------------------------------------------- data

def test_images(dataset, data_dir):
    """(uint8 images N x C x H x W, labels) of the test split, in file order as runner reads it."""
    if dataset in ("mnist", "fashion-mnist"):
        dirs = [os.path.join(data_dir, dataset)]
        x = read_idx(_find(dirs, "t10k-images-idx3-ubyte"))
        y = read_idx(_find(dirs, "t10k-labels-idx1-ubyte")).astype(np.int64)
        return x[:, None, :, :], y
    if dataset == "cifar10":
        d = os.path.join(data_dir, "cifar-10-batches-bin")
        return read_cifar_bin(os.path.join(d, "test_batch.bin"))
    raise Unsupported("the %s data set is generated by runner; this script reads data files" % dataset)


class Unsupported(Exception):
    pass


def per_channel(values, channels, default):
    """runner's rule: one value per channel, the last repeated where the list is short."""
    return [values[c] if c < len(values) else (values[-1] if values else default)
            for c in range(channels)]


def crop(x, size, top, left):
    """The size x size window at (top, left) of [N, C, H, W], zeros outside the image."""
    n, c, h, w = x.shape
    out = np.zeros((n, c, size, size), np.float32)
    y0, y1 = max(0, -top), min(size, h - top)
    x0, x1 = max(0, -left), min(size, w - left)
    if y0 < y1 and x0 < x1:
        out[:, :, y0:y1, x0:x1] = x[:, :, top + y0:top + y1, left + x0:left + x1]
    return out


def center_offset(length, size):
    if size <= length:
        return int(round((length - size) / 2.0))  # Python rounds half to even, as runner
    return -((size - length) // 2)


def apply_test_transforms(images, transforms):
    """float32 [N, C, H, W] as runner's pipeline makes it: bytes / 255, then the transforms."""
    x = images.astype(np.float32) / np.float32(255.0)
    for t in transforms:
        op = t["op"]
        if op == "normalize":
            c = x.shape[1]
            m = np.array(per_channel(t["mean"], c, 0.0), np.float32).reshape(1, c, 1, 1)
            s = np.array(per_channel(t["std"], c, 1.0), np.float32).reshape(1, c, 1, 1)
            x = (x - m) / s
        elif op == "center_crop":
            size = t["size"]
            x = crop(x, size, center_offset(x.shape[2], size), center_offset(x.shape[3], size))
        elif op == "grayscale":
            r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
            x = np.float32(0.299) * r + np.float32(0.587) * g + np.float32(0.114) * b
        else:
            raise Unsupported("test transform `%s` cannot be reproduced here (it draws from "
                              "runner's generator)" % op)
    return np.ascontiguousarray(x, np.float32)


# ----------------------------------------------------------------------------- comparison

# runner's `data.tta` (src/experiment/format.rs `Tta`) as airbench's tta_level, whose `infer` the
# reference script follows: the PyTorch side is written from airbench, not from runner's code.
TTA_LEVEL = {"none": 0, "flip": 1, "flip_translate": 2}


def torch_outputs(net, x, batch_size, tta="none"):
    net.eval()
    outs = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            chunk = torch.from_numpy(x[i:i + batch_size])
            outs.append(logits_of(net, chunk, TTA_LEVEL[tta]).float().numpy())
    return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)


def compare(ours, theirs):
    """(images, argmax agreements, max |difference|)."""
    if ours.shape != theirs.shape:
        raise Unsupported("outputs of shape %s and %s" % (ours.shape, theirs.shape))
    agree = int((ours.argmax(1) == theirs.argmax(1)).sum())
    diff = float(np.abs(ours.astype(np.float64) - theirs.astype(np.float64)).max()) if ours.size else 0.0
    return len(ours), agree, diff


def find_runner(given):
    if given:
        return given
    for sub in ("release", "debug"):
        p = os.path.join(REPO, "target", sub, "runner")
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    found = shutil.which("runner")
    if not found:
        raise Unsupported("no runner binary: build it (cargo build --release) or pass --runner")
    return found


def run_runner(runner, args):
    p = subprocess.run([runner] + args, capture_output=True, text=True)
    if p.returncode != 0:
        raise Unsupported("`runner %s` failed (exit %d):\n%s%s"
                          % (" ".join(args), p.returncode, p.stdout, p.stderr))
    return p


def perturbed_state(net, seed):
    """The module's state with every float tensor scaled by (1 + 0.05 N(0, 1)) (running
    variances kept positive) and every count plus 1: weights only PyTorch has seen."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, t in net.state_dict().items():
        if t.is_floating_point():
            noise = 1 + 0.05 * torch.randn(t.shape, generator=g)
            v = t * noise
            if name.endswith("running_var"):
                v = v.abs() + 1e-3
            state[name] = v.contiguous()
        else:
            state[name] = t + 1
    return state


def check_run(run_dir, data_dir, runner, batch_size, tol, work):
    """Both directions for one run folder; returns (lines, ok)."""
    with open(os.path.join(run_dir, "config.toml"), "rb") as f:
        config = tomllib.load(f)
    name = config.get("name", os.path.basename(run_dir.rstrip("/")))
    net = RunnerNet(config["model"])
    stored = read_safetensors(os.path.join(run_dir, "model.safetensors"))
    lines = ["%s (%s), torch %s:" % (name, run_dir, torch.__version__)]
    try:
        # torch.from_numpy needs writable memory; the copy also owns its bytes.
        net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in stored.items()},
                            strict=True)
    except RuntimeError as e:
        lines.append("  runner -> torch: load_state_dict(strict=True) FAILED: %s" % e)
        return lines, False
    images, labels = test_images(config["data"]["dataset"], data_dir)
    x = apply_test_transforms(images, config["data"].get("test_transforms", []))
    tta = config["data"].get("tta", "none")  # runner eval is a final evaluation: TTA applies
    if tta not in TTA_LEVEL:
        raise Unsupported("data.tta = %r" % tta)
    ok = True

    # 1. runner -> PyTorch
    theirs = torch_outputs(net, x, batch_size, tta)
    logits = os.path.join(work, name + "_runner_logits.safetensors")
    run_runner(runner, ["eval", run_dir, "--data-dir", data_dir, "--logits", logits,
                        "--out", os.path.join(work, name + "_eval")])
    ours = read_safetensors(logits)["logits"]
    n, agree, diff = compare(ours, theirs)
    acc = lambda out: 100.0 * float((out.argmax(1) == labels).mean()) if len(out) else 0.0
    good = agree == n and diff <= tol
    ok &= good
    lines.append("  runner -> torch: load_state_dict(strict=True) of %d tensors ok; %d test images; "
                 "argmax agrees on %d/%d; max |logit difference| %.3g; accuracy runner %.2f%%, "
                 "torch %.2f%%  %s" % (len(stored), n, agree, n, diff, acc(ours), acc(theirs),
                                       "OK" if good else "FAIL"))

    # 2. PyTorch -> runner
    state = perturbed_state(net, 0)
    exported = os.path.join(work, name + "_torch.safetensors")
    write_safetensors(exported, state)
    net.load_state_dict(state, strict=True)
    theirs = torch_outputs(net, x, batch_size, tta)
    config_path = os.path.join(run_dir, "config.toml")
    run_runner(runner, ["check", config_path, "--set", "train.init_from=%s" % json.dumps(exported)])
    logits = os.path.join(work, name + "_runner_on_torch_logits.safetensors")
    run_runner(runner, ["eval", exported, "--experiment", config_path, "--data-dir", data_dir,
                        "--logits", logits, "--out", os.path.join(work, name + "_eval_torch")])
    ours = read_safetensors(logits)["logits"]
    n, agree, diff = compare(ours, theirs)
    good = agree == n and diff <= tol
    ok &= good
    lines.append("  torch -> runner: PyTorch-written state_dict (%d tensors) passes `runner check` "
                 "as train.init_from; argmax agrees on %d/%d; max |logit difference| %.3g  %s"
                 % (len(state), agree, n, diff, "OK" if good else "FAIL"))
    return lines, ok


def make_fixture(experiment, prefix):
    with open(experiment, "rb") as f:
        config = tomllib.load(f)
    torch.manual_seed(0)
    net = RunnerNet(config["model"])
    with torch.no_grad():
        for name, buf in net.named_buffers():
            if name.endswith("running_mean"):
                buf.copy_(0.2 * torch.randn(buf.shape))
            elif name.endswith("running_var"):
                buf.copy_(0.5 + torch.rand(buf.shape))
            elif name.endswith("num_batches_tracked"):
                buf.fill_(17)
    x = torch.randn([8] + list(config["model"]["input"]))
    net.eval()
    with torch.no_grad():
        y = net(x)
    write_safetensors(prefix + ".safetensors", net.state_dict())
    write_safetensors(prefix + "_io.safetensors", {"input": x, "logits": y})
    print("wrote %s.safetensors (%d tensors) and %s_io.safetensors (input %s, logits %s), torch %s"
          % (prefix, len(net.state_dict()), prefix, list(x.shape), list(y.shape),
             torch.__version__))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="*", metavar="RUN_DIR")
    p.add_argument("--data-dir", help="the folder runner's --data-dir names")
    p.add_argument("--runner", help="the runner binary [default: target/release, target/debug, PATH]")
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--tol", type=float, default=1e-4, help="largest |logit difference| accepted")
    p.add_argument("--keep", metavar="DIR", help="keep the exported weights and logits in DIR")
    p.add_argument("--make-fixture", nargs=2, metavar=("EXPERIMENT", "OUT_PREFIX"))
    a = p.parse_args()
    if a.make_fixture:
        make_fixture(*a.make_fixture)
        return 0
    if not a.runs or not a.data_dir:
        p.error("give RUN_DIR... and --data-dir (or --make-fixture)")
    try:
        runner = find_runner(a.runner)
    except Unsupported as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    work = a.keep or tempfile.mkdtemp(prefix="torch_interop_")
    os.makedirs(work, exist_ok=True)
    all_ok, failed = True, False
    try:
        for run in a.runs:
            try:
                lines, ok = check_run(run, a.data_dir, runner, a.batch_size, a.tol, work)
            except (Unsupported, OSError, ValueError, KeyError) as e:
                print("%s: cannot compare: %s" % (run, e))
                failed = True
                continue
            print("\n".join(lines), flush=True)
            all_ok &= ok
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    if failed:
        return 2
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
