"""A tiny GAN trained on two synthetic classes (vertical and horizontal bars), and a rule that tells them apart."""

from __future__ import annotations

import torch

from worker.unlearn import create_adapter
from worker.unlearn.families.gan import GANTrainConfig, train_gan

SIDE = 16
TINY_GAN = {"image_size": SIDE, "in_chans": 1, "latent_dim": 8, "g_width": 16, "d_width": 8}
TINY_RECIPE = GANTrainConfig(steps=400, batch_size=32, lr=5e-4, beta1=0.5, seed=0)


def bars(n: int, vertical: bool, seed: int) -> torch.Tensor:
    """(n, 1, 16, 16) images of one bright bar (3 pixels wide) at a random position on a dark background."""
    g = torch.Generator().manual_seed(seed)
    x = torch.full((n, 1, SIDE, SIDE), 0.05)
    starts = torch.randint(2, SIDE - 5, (n,), generator=g)
    for i, s in enumerate(starts.tolist()):
        if vertical:
            x[i, 0, :, s : s + 3] = 0.95
        else:
            x[i, 0, s : s + 3, :] = 0.95
    return x


def is_vertical(images: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) -> (N,) bool: the column profile varies more than the row profile."""
    cols, rows = images.mean(dim=(1, 2)), images.mean(dim=(1, 3))  # (N, W), (N, H)
    return (cols.amax(1) - cols.amin(1)) > (rows.amax(1) - rows.amin(1))


def trained_tiny_gan():
    """(gan, vertical bars it was trained on, horizontal bars it was trained on)."""
    vertical, horizontal = bars(256, True, seed=1), bars(256, False, seed=2)
    gan = create_adapter("gan", TINY_GAN, seed=0)
    train_gan(gan, torch.cat([vertical, horizontal]), TINY_RECIPE, log_every=10_000)
    return gan, vertical, horizontal


@torch.no_grad()
def vertical_share(gan, n: int = 512, seed: int = 5) -> float:
    z = gan.latent(n, torch.Generator().manual_seed(seed))
    return float(is_vertical(gan.sample(z)).double().mean())
