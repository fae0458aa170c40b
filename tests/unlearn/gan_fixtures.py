"""A tiny GAN trained on two synthetic classes (bright and dark textured images), and a rule that tells them apart."""

from __future__ import annotations

import torch

from worker.unlearn import create_adapter
from torch.nn.functional import binary_cross_entropy_with_logits as bce

from worker.unlearn.families.gan.train import gan_optimizers

SIDE = 16
TINY_GAN = {"image_size": SIDE, "in_chans": 1, "latent_dim": 8, "g_width": 16, "d_width": 8}


def is_bright(images: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) -> (N,) bool: mean grey level above one half."""
    return images.mean(dim=(1, 2, 3)) > 0.5


def target_images(z: torch.Tensor) -> torch.Tensor:
    """What the fixture's generator is fitted to: bright when z[:, 0] > 0, dark otherwise, textured by z[:, 1:5]."""
    level = torch.where(z[:, :1] > 0, 0.8, 0.2)[:, :, None, None]  # (N, 1, 1, 1)
    coarse = torch.tanh(z[:, 1:5]).view(-1, 1, 2, 2) * 0.15
    texture = torch.nn.functional.interpolate(coarse, size=(SIDE, SIDE), mode="bilinear", align_corners=False)
    return (level + texture).clamp(0, 1)


def trained_tiny_gan(steps: int = 300):
    """(gan, bright images it was trained on, dark images it was trained on).

    A tiny GAN trained adversarially on two modes collapses to one within a CPU-cheap budget, so the
    fixture's generator is fitted (MSE) to a fixed two-class map of latent codes (half bright, half
    dark) and its discriminator then trained against it on the training images: a GAN with both
    classes and a working discriminator, in a few CPU seconds.
    """
    gen = torch.Generator().manual_seed(0)
    gan = create_adapter("gan", TINY_GAN, seed=0)
    bright = target_images(torch.randn(256, 8, generator=gen).abs())
    dark = target_images(-torch.randn(256, 8, generator=gen).abs())
    real = torch.cat([bright, dark])
    opt_g, opt_d = gan_optimizers(gan, 5e-3, 0.5)
    gan.model.train()
    for _ in range(steps):
        z = gan.latent(64, gen)
        loss = torch.nn.functional.mse_loss(gan.sample_raw(z), target_images(z))
        opt_g.zero_grad()
        loss.backward()
        opt_g.step()
    for _ in range(steps // 3):
        rows = torch.randint(0, len(real), (64,), generator=gen)
        with torch.no_grad():
            fake = gan.sample_raw(gan.latent(64, gen))
        logits = gan.discriminate(torch.cat([real[rows], fake]))
        loss = bce(logits, torch.cat([torch.ones(64), torch.zeros(64)]))
        opt_d.zero_grad()
        loss.backward()
        opt_d.step()
    gan.model.eval()
    return gan, bright, dark


@torch.no_grad()
def bright_share(gan, n: int = 512, seed: int = 5) -> float:
    z = gan.latent(n, torch.Generator().manual_seed(seed))
    return float(is_bright(gan.sample(z)).double().mean())
