"""Seeded GAN training (DCGAN recipe: Adam lr 2e-4, betas (0.5, 0.999), non-saturating loss).

One step: a discriminator update on a batch of real images (label 1) and one of generated images
(label 0), then a generator update (its samples labelled 1). Used to build the demo GAN, the tiny
GANs of the tests and the retrained references of benchmarks/gan_retrain.py (the same recipe on
the training images minus the forget set). One seeded ``torch.Generator`` draws batch order and
latent codes, so the same seed and thread count give the same weights.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn.functional import binary_cross_entropy_with_logits as bce

from .adapter import GANAdapter


@dataclass(frozen=True)
class GANTrainConfig:
    steps: int = 6000
    batch_size: int = 64
    lr: float = 2e-4
    beta1: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 2 or not self.lr > 0 or not 0 <= self.beta1 < 1:
            raise ValueError(f"invalid GANTrainConfig: {self}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class GANTrainResult:
    losses: list[dict[str, float]]  # mean losses per logged window
    steps: int
    seconds: float


def gan_optimizers(adapter: GANAdapter, lr: float, beta1: float) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    betas = (beta1, 0.999)
    return (torch.optim.Adam(adapter.generator_parameters(), lr=lr, betas=betas),
            torch.optim.Adam(adapter.discriminator_parameters(), lr=lr, betas=betas))  # fmt: skip


def train_gan(
    adapter: GANAdapter,
    images: Tensor,
    cfg: GANTrainConfig,
    *,
    log_every: int = 500,
    on_log: Callable[[int, dict[str, float]], None] | None = None,
) -> GANTrainResult:
    """Train ``adapter`` in place on ``images`` (N, C, H, W), uint8 or floats in [0, 1]; returns the loss log."""
    gen = torch.Generator().manual_seed(cfg.seed)
    device = adapter.device
    opt_g, opt_d = gan_optimizers(adapter, cfg.lr, cfg.beta1)
    n = len(images)
    order, pos = torch.randperm(n, generator=gen), 0
    window: dict[str, float] = {"d": 0.0, "g": 0.0}
    losses: list[dict[str, float]] = []
    started = time.perf_counter()
    adapter.model.train()
    for step in range(1, cfg.steps + 1):
        if pos + cfg.batch_size > n:
            order, pos = torch.randperm(n, generator=gen), 0
        rows = order[pos : pos + cfg.batch_size]
        pos += cfg.batch_size
        real = images[rows].to(device)
        real = real.float() / 255.0 if not real.is_floating_point() else real
        d_loss, g_loss = adversarial_step(adapter, real, adapter.latent(cfg.batch_size, gen), opt_g, opt_d)
        window["d"] += d_loss
        window["g"] += g_loss
        if step % log_every == 0 or step == cfg.steps:
            k = log_every if step % log_every == 0 else step % log_every
            entry = {"step": step, "d": window["d"] / k, "g": window["g"] / k}
            losses.append(entry)
            if on_log:
                on_log(step, entry)
            window = {"d": 0.0, "g": 0.0}
    adapter.model.eval()
    return GANTrainResult(losses, cfg.steps, time.perf_counter() - started)


def adversarial_step(adapter: GANAdapter, real: Tensor, z: Tensor, opt_g, opt_d,
                     real_targets: Tensor | None = None) -> tuple[float, float]:
    """One discriminator update (``real`` -> ``real_targets``, default 1; G(z) -> 0) and one generator update."""
    fake = adapter.sample_raw(z)
    targets = torch.ones(len(real), device=real.device) if real_targets is None else real_targets
    d_loss = bce(adapter.discriminate(real), targets) + bce(adapter.discriminate(fake.detach()),
                                                            torch.zeros(len(fake), device=fake.device))
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_d.step()
    g_loss = bce(adapter.discriminate(fake), torch.ones(len(fake), device=fake.device))
    opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    opt_g.step()
    return float(d_loss.detach()), float(g_loss.detach())
