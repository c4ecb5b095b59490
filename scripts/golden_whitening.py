"""Golden of `model::tests::whitening_matches_airbench_up_to_sign`: airbench94's whitening
weight (`get_patches`, `get_whitening_parameters`, `init_whitening_conv` of
KellerJordan/airbench legacy/airbench94.py at f1c599c4af24aca803e3e65a6a7e52a502e09d0e, copied
unchanged below) for a 2x2 conv on 6 pinned 3x5x5 images, in float32 on the CPU.

Usage: /work/main/.venv-torch/bin/python scripts/golden_whitening.py > tests/fixtures/whitening_golden.json
The images are `torch.randn(6, 3, 5, 5, generator=torch.Generator().manual_seed(3))` with channel
1 made 0.8 * channel 0 + 0.6 * itself, so that the patch covariance is not near the identity.
"""
import json

import torch


def get_patches(x, patch_shape):
    c, (h, w) = x.shape[1], patch_shape
    return x.unfold(2,h,1).unfold(3,w,1).transpose(1,3).reshape(-1,c,h,w).float()

def get_whitening_parameters(patches):
    n,c,h,w = patches.shape
    patches_flat = patches.view(n, -1)
    est_patch_covariance = (patches_flat.T @ patches_flat) / n
    eigenvalues, eigenvectors = torch.linalg.eigh(est_patch_covariance, UPLO='U')
    return eigenvalues.flip(0).view(-1, 1, 1, 1), eigenvectors.T.reshape(c*h*w,c,h,w).flip(0)

def init_whitening_conv(layer, train_set, eps=5e-4):
    patches = get_patches(train_set, patch_shape=layer.weight.data.shape[2:])
    eigenvalues, eigenvectors = get_whitening_parameters(patches)
    eigenvectors_scaled = eigenvectors / torch.sqrt(eigenvalues + eps)
    layer.weight.data[:] = torch.cat((eigenvectors_scaled, -eigenvectors_scaled))


x = torch.randn(6, 3, 5, 5, generator=torch.Generator().manual_seed(3))
x[:, 1] = 0.8 * x[:, 0] + 0.6 * x[:, 1]
conv = torch.nn.Conv2d(3, 24, kernel_size=2, padding=0, bias=True)
init_whitening_conv(conv, x, eps=5e-4)
print(json.dumps({
    "header": {
        "torch": torch.__version__,
        "command": "/work/main/.venv-torch/bin/python scripts/golden_whitening.py > tests/fixtures/whitening_golden.json",
    },
    "images": {"shape": list(x.shape), "data": x.flatten().tolist()},
    "eps": 5e-4,
    "weight": {"shape": list(conv.weight.shape), "data": conv.weight.detach().flatten().tolist()},
}))
