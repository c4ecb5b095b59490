"""The golden number of `train::step::tests::mixed_targets_match_torch_soft_target_cross_entropy`:
PyTorch's cross-entropy with probability targets on timm's mixed, label-smoothed targets
(`timm.data.mixup.mixup_target`), which runner computes as `lam * CE(labels) + (1 - lam) *
CE(partner)`.

Usage: .venv-torch/bin/python scripts/golden_mixup_loss.py   (torch 2.15.0 printed 2.5247111251398526)
"""
import torch
import torch.nn.functional as F

logits = torch.tensor(
    [[0.5, -1.25, 2.0, 0.125], [-0.75, 1.5, 0.25, -2.0], [1.0, 0.0, -0.5, 0.75]],
    dtype=torch.float64,
)
y = torch.tensor([1, 3, 0])
lam, smoothing, classes = 0.3, 0.1, 4


def smooth(t):
    # timm's one_hot(on_value=1 - smoothing + smoothing / K, off_value=smoothing / K)
    return F.one_hot(t, classes).double() * (1 - smoothing) + smoothing / classes


target = lam * smooth(y) + (1 - lam) * smooth(y.flip(0))
print("torch", torch.__version__)
print(repr(F.cross_entropy(logits, target).item()))
print(repr(torch.sum(-target * F.log_softmax(logits, dim=-1), dim=-1).mean().item()))
