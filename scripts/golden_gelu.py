"""Goldens of `model::kernels::tests::gelu_matches_torch`: `torch.nn.functional.gelu` (both
`approximate` forms) and its gradient in float32 on pinned inputs.

Usage: /work/main/.venv-torch/bin/python scripts/golden_gelu.py > tests/fixtures/gelu_goldens.json
The inputs: 41 evenly spaced points in [-8, 8], then 0 and a few values with a long mantissa;
the upstream gradient is `cos(i)` of the index, so that every element gets a different one.
"""
import json
import math

import torch
import torch.nn.functional as F

xs = [-8.0 + 0.4 * i for i in range(41)] + [0.0, 1e-4, -1e-4, 0.7071067811865476, -2.3456789, 3.14159265]
dys = [math.cos(i) for i in range(len(xs))]
out = {
    "header": {
        "torch": torch.__version__,
        "command": "/work/main/.venv-torch/bin/python scripts/golden_gelu.py > tests/fixtures/gelu_goldens.json",
    },
    "x": [float(torch.tensor(v, dtype=torch.float32)) for v in xs],
    "dy": [float(torch.tensor(v, dtype=torch.float32)) for v in dys],
}
for approximate in ["none", "tanh"]:
    x = torch.tensor(xs, dtype=torch.float32, requires_grad=True)
    y = F.gelu(x, approximate=approximate)
    y.backward(torch.tensor(dys, dtype=torch.float32))
    out[approximate] = {"y": y.detach().tolist(), "dx": x.grad.tolist()}
print(json.dumps(out))
