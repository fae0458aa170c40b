"""Loss terms. Each is a plain function of tensors so a test can check it by hand."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def noise_images(
    n: int, mean: Tensor, std: Tensor, shape: tuple[int, int, int], generator: torch.Generator
) -> Tensor:
    """Gaussian noise images with the model's fixed per-channel statistics, clipped to [0, 1].

    mean, std: (C,) of the training data (not of the batch: targets must not depend on batch
    composition, ALGORITHM.md §2). Returns (N, C, H, W) on ``generator``'s device.
    """
    z = torch.randn((n, *shape), generator=generator, device=generator.device)  # (N, C, H, W)
    return (z * std.view(1, -1, 1, 1) + mean.view(1, -1, 1, 1)).clamp(0, 1)


def encoder_l2(
    student_retain: Tensor, teacher_retain: Tensor, student_forget: Tensor, teacher_forget: Tensor, alpha: float
) -> dict[str, Tensor]:
    """Encoder-L2 objective (ALGORITHM.md §2) on latents (B, L_vis + 1, D).

    retain = mean ||E(T(x_r)) - E0(T(x_r))||^2, forget = mean ||E(T(x_f)) - E0(T(n))||^2, each a
    squared error averaged over rows, tokens and channels (MSE); loss = retain + alpha * forget.
    ``teacher_forget`` is E0(T(n)) of the forget row's target input ``n``: a noise image (the paper's)
    or a substitute proxy image (worker/unlearn/substitutes.py), under the forget row's mask.
    """
    retain = F.mse_loss(student_retain, teacher_retain)
    forget = F.mse_loss(student_forget, teacher_forget)
    return {"loss": retain + alpha * forget, "retain": retain, "forget": forget}


def masked_patch_mse(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """The MAE pre-training loss: per-patch MSE averaged over hidden patches only.

    pred, target: (N, L, p*p*C); mask: (N, L) bool, True = hidden.
    """
    per_patch = ((pred - target) ** 2).mean(dim=-1)  # (N, L)
    m = mask.to(per_patch.dtype)
    return (per_patch * m).sum() / m.sum()
