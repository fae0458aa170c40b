"""The learning-rate schedule of the pre-training recipes: linear warm-up, then a half-cosine decay.

The MAE recipe (families/mae/train.py) counts its warm-up in epochs, so ``warmup`` may be a
fraction of the step count; the diffusion recipe (families/diffusion/train.py) counts whole steps.
Both call :func:`warmup_cosine`; the demo checkpoints were trained with the formulas it replaced,
so it must return the very same floats (tests/unlearn/test_schedule.py compares them with ``==``).
"""

from __future__ import annotations

import math

import torch


def warmup_cosine(
    step: int, total: int, warmup: float, lr: float, min_lr: float, *, warmup_from_zero: bool = True
) -> float:
    """The learning rate at optimiser step ``step`` (0-based) of ``total``.

    Warm-up (``step < warmup``): ``lr * step / warmup``, so the first step has rate 0 as in the
    official MAE code; with ``warmup_from_zero=False`` it is ``lr * (step + 1) / warmup``, so every
    warm-up step moves the weights and the last one reaches ``lr`` (the diffusion recipe). Then the
    rate falls along a half cosine from ``lr`` at ``step == warmup`` to ``min_lr`` at ``step == total``.
    """
    if step < warmup:
        return lr * (step if warmup_from_zero else step + 1) / warmup
    progress = (step - warmup) / max(1.0, total - warmup)
    return min_lr + (lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set the rate of every parameter group (the groups differ only in weight decay here)."""
    for group in optimizer.param_groups:
        group["lr"] = lr
