"""The shared patch masks (adapters/masks.py) draw exactly what each family drew before them.

A run's masks are a function of its seed and teacher caches store masks, so moving the MAE's and
the diffusion family's own mask methods into one mixin must not move a single bit: every mask is
compared with torch.equal against a verbatim copy of the MAE code it replaced (the diffusion
copy was the same computation), and the generator must be left in the same state.
"""

from __future__ import annotations

from functools import cache

import pytest
import torch
from torch import Tensor

from worker.train_demo import DEMO_DIFFUSION, DEMO_MAE
from worker.unlearn import Adapter, create_adapter, family_class
from worker.unlearn.adapters.masks import PatchMasks

STATS = {"pixel_mean": [0.286], "pixel_std": [0.353]}  # the demo models' own come from the data
CONFIGS = {
    "mae-demo": ("mae", {**DEMO_MAE, **STATS}),
    "mae-test": ("mae", family_class("mae").test_config()),
    "mae-rgb": ("mae", {**family_class("mae").test_config(), "image_size": 32, "patch_size": 8, "in_chans": 3,
                        "mask_ratio": 0.6, "pixel_mean": [0.5] * 3, "pixel_std": [0.25] * 3}),
    "diffusion-demo": ("diffusion", {**DEMO_DIFFUSION, **STATS}),
    "diffusion-test": ("diffusion", family_class("diffusion").test_config()),
    "diffusion-coarse": ("diffusion", {**family_class("diffusion").test_config(), "patch_size": 8,
                                       "mask_ratio": 0.5}),
}  # fmt: skip
SIDE_FRACS = (0.1, 0.25, 0.3, 1 / 3, 0.5, 0.6, 0.75, 1.0)


class OldMAEMasks:
    """MAEAdapter's mask methods as they were before adapters/masks.py (commit a2e588d), verbatim."""

    def __init__(self, config, device: torch.device) -> None:
        self.config = config
        self.device = device

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.config.in_chans, self.config.image_size, self.config.image_size)

    def random_mask(self, n: int, generator: torch.Generator) -> Tensor:
        """(N, L) bool: per row the ``int(L * (1 - mask_ratio))`` lowest of uniform noise stay visible."""
        num = self.config.num_patches
        keep = int(num * (1 - self.config.mask_ratio))
        noise = torch.rand(n, num, generator=generator, device=generator.device)  # (N, L)
        rank = torch.argsort(torch.argsort(noise, dim=1), dim=1)  # (N, L) rank of each token
        return (rank >= keep).to(self.device)

    def box_mask(self, n: int, side_frac: float) -> Tensor:
        """(N, L) bool: tokens whose patch overlaps the centred square of side ``side_frac * H``."""
        if not 0 < side_frac <= 1:
            raise ValueError(f"side_frac must be in (0, 1], got {side_frac}")
        p, g, size = self.config.patch_size, self.config.grid_size, self.config.image_size
        lo = (size - side_frac * size) / 2
        hi = lo + side_frac * size
        start = torch.arange(g) * p
        rows = (start < hi) & (start + p > lo)  # (g,) patch rows (and columns) touching the box
        box = rows[:, None] & rows[None, :]  # (g, g)
        return box.reshape(1, -1).expand(n, -1).to(self.device)  # (N, L)

    def hidden_pixels(self, mask: Tensor) -> Tensor:
        """mask: (N, L) -> (N, 1, H, W) bool."""
        p, g = self.config.patch_size, self.config.grid_size
        grid = mask.reshape(mask.shape[0], 1, g, g)
        return grid.repeat_interleave(p, dim=2).repeat_interleave(p, dim=3)


@cache
def adapter_of(name: str) -> Adapter:
    family, config = CONFIGS[name]
    return create_adapter(family, config, seed=0)


def old_of(name: str) -> OldMAEMasks:
    adapter = adapter_of(name)
    return OldMAEMasks(adapter.config, adapter.device)


def test_both_patch_families_take_their_masks_from_the_mixin() -> None:
    """The family classes define none of the four themselves, so no copy can drift from the one tested here."""
    for family in ("mae", "diffusion"):
        cls = family_class(family)
        assert issubclass(cls, PatchMasks)
        for member in ("image_shape", "random_mask", "box_mask", "hidden_pixels", "check_inputs"):
            assert member not in vars(cls), f"{family} redefines {member}"
            assert getattr(cls, member) is vars(PatchMasks)[member]


@pytest.mark.parametrize("name", CONFIGS)
def test_image_shape_is_unchanged(name: str) -> None:
    assert adapter_of(name).image_shape == old_of(name).image_shape


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("seed", [0, 1, 12345])
@pytest.mark.parametrize("n", [1, 7, 64])
def test_random_masks_and_generator_state_are_bit_identical(name: str, seed: int, n: int) -> None:
    new_gen, old_gen = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
    for _ in range(3):  # consecutive draws, as a run's batches take them
        new, old = adapter_of(name).random_mask(n, new_gen), old_of(name).random_mask(n, old_gen)
        assert new.dtype == old.dtype == torch.bool and new.device == old.device
        assert torch.equal(new, old)
        assert torch.equal(adapter_of(name).hidden_pixels(new), old_of(name).hidden_pixels(old))
    assert torch.equal(new_gen.get_state(), old_gen.get_state())


@pytest.mark.parametrize("name", CONFIGS)
def test_random_masks_differ_between_seeds(name: str) -> None:
    """The comparison above would pass for a mask that ignored the generator; this one would not."""
    a = adapter_of(name).random_mask(8, torch.Generator().manual_seed(0))
    b = adapter_of(name).random_mask(8, torch.Generator().manual_seed(1))
    assert not torch.equal(a, b)


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("side_frac", SIDE_FRACS)
def test_box_masks_and_their_pixels_are_bit_identical(name: str, side_frac: float) -> None:
    new, old = adapter_of(name).box_mask(5, side_frac), old_of(name).box_mask(5, side_frac)
    assert new.dtype == old.dtype == torch.bool and new.shape == old.shape
    assert torch.equal(new, old)
    assert torch.equal(adapter_of(name).hidden_pixels(new), old_of(name).hidden_pixels(old))


@pytest.mark.parametrize("name", ["mae-test", "diffusion-test"])
@pytest.mark.parametrize("side_frac", [0.0, -0.5, 1.5])
def test_a_box_outside_the_image_is_the_same_value_error(name: str, side_frac: float) -> None:
    with pytest.raises(ValueError, match=rf"side_frac must be in \(0, 1\], got {side_frac}"):
        old_of(name).box_mask(2, side_frac)
    with pytest.raises(ValueError, match=rf"side_frac must be in \(0, 1\], got {side_frac}"):
        adapter_of(name).box_mask(2, side_frac)


@pytest.mark.parametrize("name", ["mae-test", "diffusion-test"])
def test_inputs_of_the_wrong_shape_or_type_are_refused_by_every_entry(name: str) -> None:
    adapter = adapter_of(name)
    c, h, w = adapter.image_shape
    imgs, mask = torch.rand(2, c, h, w), adapter.box_mask(2, 0.5)
    for call in (adapter.encode, adapter.reconstruct, adapter.generate):
        with pytest.raises(ValueError, match=rf"images of shape \({c}, {h + 4}, {w}\), this model takes"):
            call(torch.rand(2, c, h + 4, w), mask)
        with pytest.raises(ValueError, match="mask must be bool"):
            call(imgs, mask.float())
        with pytest.raises(ValueError, match=rf"mask must be bool \(2, {mask.shape[1]}\)"):
            call(imgs, mask[:, 1:])


def test_the_mae_also_refuses_rows_that_hide_different_counts() -> None:
    """Its encoder gathers the visible tokens of all rows into one tensor; the diffusion family needs no such rule."""
    adapter = adapter_of("mae-test")
    mask = adapter.box_mask(2, 0.5).clone()
    mask[1, 0] = True
    with pytest.raises(ValueError, match="every mask row must hide the same number of tokens"):
        adapter.encode(torch.rand(2, *adapter.image_shape), mask)
