"""Seeded MAE pre-training: the standard MAE loss (MSE on hidden patches, normalised pixels).

Used to build the demo base generator; a pure function of an adapter, an image tensor and a
config, like ``train_one_epoch`` in the official code but with one seeded generator for batch
order and masks, AdamW with betas (0.9, 0.95), linear warm-up and a cosine learning-rate decay.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ...losses import masked_patch_mse
from ...schedule import set_lr, warmup_cosine
from .adapter import MAEAdapter


@dataclass(frozen=True)
class MAETrainConfig:
    """Pre-training recipe. ``lr`` is the peak learning rate (no batch-size scaling rule applied)."""

    epochs: int = 10
    batch_size: int = 256
    lr: float = 2e-3
    min_lr: float = 1e-5
    warmup_epochs: float = 1.0
    weight_decay: float = 0.05
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or not self.lr > 0 or self.min_lr < 0 or self.warmup_epochs < 0:
            raise ValueError(f"invalid MAETrainConfig: {self}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class MAETrainResult:
    losses: list[float]  # mean training loss per epoch
    steps: int
    seconds: float


def train_mae(
    adapter: MAEAdapter,
    images: Tensor,
    cfg: MAETrainConfig,
    on_epoch: Callable[[int, float], None] | None = None,
) -> MAETrainResult:
    """Pre-train ``adapter`` in place on ``images``: (N, C, H, W) floats in [0, 1] (or uint8 0..255).

    Each step: a batch (seeded permutation per epoch), one random mask per image at the config's
    ``mask_ratio``, loss = MSE between predicted and true normalised pixels on hidden patches.
    Weight decay applies to matrices only (not to biases, norms and tokens), as in the official code.
    """
    started = time.perf_counter()
    model = adapter.model
    model.train()
    gen = torch.Generator().manual_seed(cfg.seed)
    decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim >= 2 and "token" not in n]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and (p.ndim < 2 or "token" in n)]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr, betas=(0.9, 0.95),
    )
    per_epoch = len(images) // cfg.batch_size  # drop the last partial batch
    total, warmup = cfg.epochs * per_epoch, cfg.warmup_epochs * per_epoch
    losses, step = [], 0
    for epoch in range(cfg.epochs):
        order = torch.randperm(len(images), generator=gen)
        running = 0.0
        for i in range(per_epoch):
            set_lr(optimizer, warmup_cosine(step, total, warmup, cfg.lr, cfg.min_lr))
            batch = images[order[i * cfg.batch_size : (i + 1) * cfg.batch_size]].to(adapter.device)
            if not batch.is_floating_point():
                batch = batch.float() / 255.0  # (B, C, H, W) in [0, 1]
            mask = adapter.random_mask(len(batch), gen)  # (B, L)
            pred = model(batch, mask)  # (B, L, p*p*C)
            target = model.patchify(model.normalize(batch))  # (B, L, p*p*C)
            loss = masked_patch_mse(pred, target, mask)
            if not math.isfinite(float(loss.detach())):
                raise FloatingPointError(f"non-finite MAE loss at epoch {epoch}, step {step}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            running += float(loss.detach())
            step += 1
        losses.append(running / per_epoch)
        if on_epoch is not None:
            on_epoch(epoch + 1, losses[-1])
    model.eval()
    return MAETrainResult(losses=losses, steps=step, seconds=time.perf_counter() - started)
