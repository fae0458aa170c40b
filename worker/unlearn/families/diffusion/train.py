"""Seeded pre-training of a Palette-style inpainter: the noise-prediction loss on the hidden pixels.

One seeded generator draws the batch order, the masks, the timesteps and the noise. Masks: each
row is a random mask at the config's ``mask_ratio`` (half the rows) or a centre box of a quarter or
half of the side (a quarter each), the tasks the model is evaluated on. Timesteps uniform over
``[0, T)``. AdamW, linear warm-up, cosine decay, gradient clipping at 1 (as the diffusers examples).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ...schedule import set_lr, warmup_cosine
from .adapter import DiffusionAdapter


@dataclass(frozen=True)
class DiffusionTrainConfig:
    steps: int = 3000
    batch_size: int = 64
    lr: float = 2e-3
    min_lr: float = 1e-5
    warmup_steps: int = 200
    weight_decay: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 4 or not self.lr > 0 or self.min_lr < 0 or self.warmup_steps < 0:
            raise ValueError(f"invalid DiffusionTrainConfig: {self}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class DiffusionTrainResult:
    losses: list[float]  # mean loss per logging window
    steps: int
    seconds: float


def training_masks(adapter: DiffusionAdapter, n: int, gen: torch.Generator) -> Tensor:
    """(N, L): random masks for half the rows, centre boxes (a quarter / half of the side) for the rest."""
    kind = torch.randint(4, (n,), generator=gen)  # 0, 1: random; 2: box 0.25; 3: box 0.5
    mask = adapter.random_mask(n, gen).cpu()
    mask[kind == 2] = adapter.box_mask(1, 0.25).cpu()
    mask[kind == 3] = adapter.box_mask(1, 0.5).cpu()
    return mask.to(adapter.device)


def train_diffusion(
    adapter: DiffusionAdapter,
    images: Tensor,
    cfg: DiffusionTrainConfig,
    on_log: Callable[[int, float], None] | None = None,
    log_every: int = 100,
) -> DiffusionTrainResult:
    """Pre-train ``adapter`` in place on ``images`` (N, C, H, W), floats in [0, 1] or uint8."""
    started = time.perf_counter()
    model = adapter.model
    model.train()
    gen = torch.Generator().manual_seed(cfg.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    T = adapter.config.num_train_timesteps
    order = torch.empty(0, dtype=torch.long)
    losses, window = [], []
    for step in range(cfg.steps):
        if len(order) < cfg.batch_size:
            order = torch.cat([order, torch.randperm(len(images), generator=gen)])
        ids, order = order[: cfg.batch_size], order[cfg.batch_size :]
        batch = images[ids].to(adapter.device)
        if not batch.is_floating_point():
            batch = batch.float() / 255.0
        mask = training_masks(adapter, len(batch), gen)
        t = torch.randint(T, (len(batch),), generator=gen).to(adapter.device)
        noise = torch.randn(batch.shape, generator=gen).to(adapter.device)
        x0 = batch * 2 - 1
        hidden = adapter.hidden_pixels(mask).float()
        eps = adapter.predict_noise(x0, hidden, adapter.noised(x0, noise, t), t)
        loss = (((eps - noise) ** 2) * hidden).sum() / (hidden.sum() * x0.shape[1])
        if not math.isfinite(float(loss.detach())):
            raise FloatingPointError(f"non-finite diffusion loss at step {step}")
        lr = warmup_cosine(step, cfg.steps, cfg.warmup_steps, cfg.lr, cfg.min_lr, warmup_from_zero=False)
        set_lr(optimizer, lr)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        window.append(float(loss.detach()))
        if (step + 1) % log_every == 0 or step + 1 == cfg.steps:
            losses.append(sum(window) / len(window))
            window = []
            if on_log is not None:
                on_log(step + 1, losses[-1])
    model.eval()
    return DiffusionTrainResult(losses=losses, steps=cfg.steps, seconds=time.perf_counter() - started)
