"""Tiny models of every registered family and synthetic images, for the unlearning tests."""

from __future__ import annotations

import torch

from worker.unlearn import Adapter, create_adapter, family_class, list_families

# One tiny configuration per family: each family's own ``test_config`` hook (a plugin brings its own).
def _tiny_configs() -> dict[str, dict]:
    found = {}
    for family in list_families():
        try:
            found[family] = family_class(family).test_config()
        except NotImplementedError:  # the contract test names the family (test_every_family_has_a_tiny_config)
            pass
    return found


TINY_CONFIGS = _tiny_configs()


def make_tiny(family: str, seed: int = 0) -> Adapter:
    """A freshly initialised tiny adapter of ``family``."""
    return create_adapter(family, tiny_config(family), seed=seed)


def tiny_config(family: str) -> dict:
    """The family's tiny test configuration (``Adapter.test_config``)."""
    return TINY_CONFIGS[family] if family in TINY_CONFIGS else family_class(family).test_config()


def make_images(adapter: Adapter, n: int, seed: int) -> torch.Tensor:
    """(n, C, H, W) smooth random images in [0, 1] for ``adapter``'s input shape."""
    g = torch.Generator().manual_seed(seed)
    c, h, w = adapter.image_shape
    coarse = torch.rand(n, c, h // 4, w // 4, generator=g)
    return torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)


def snapshot(adapter: Adapter) -> dict[str, torch.Tensor]:
    """Detached copies of every tensor of ``adapter``."""
    return {k: v.detach().clone() for k, v in adapter.state_dict().items()}
