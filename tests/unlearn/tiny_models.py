"""Tiny models of every registered family and synthetic images, for the unlearning tests."""

from __future__ import annotations

import torch

from worker.unlearn import Adapter, create_adapter

# One tiny configuration per registered family; the contract tests fail for a family without one.
TINY_CONFIGS = {
    "mae": dict(
        image_size=16, patch_size=4, in_chans=1, embed_dim=32, depth=2, num_heads=4,
        decoder_embed_dim=32, decoder_depth=1, decoder_num_heads=4, mlp_ratio=2.0, mask_ratio=0.75,
        pixel_mean=[0.3], pixel_std=[0.3],
    ),
    "gan": dict(image_size=16, in_chans=1, latent_dim=8, g_width=8, d_width=8),
}  # fmt: skip


def make_tiny(family: str, seed: int = 0) -> Adapter:
    """A freshly initialised tiny adapter of ``family``."""
    return create_adapter(family, TINY_CONFIGS[family], seed=seed)


def make_images(adapter: Adapter, n: int, seed: int) -> torch.Tensor:
    """(n, C, H, W) smooth random images in [0, 1] for ``adapter``'s input shape."""
    g = torch.Generator().manual_seed(seed)
    c, h, w = adapter.image_shape
    coarse = torch.rand(n, c, h // 4, w // 4, generator=g)
    return torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)


def snapshot(adapter: Adapter) -> dict[str, torch.Tensor]:
    """Detached copies of every tensor of ``adapter``."""
    return {k: v.detach().clone() for k, v in adapter.state_dict().items()}
