"""The patch grid and pixel-statistics checks the MAE and diffusion configs share (adapters/geometry.py)."""

from __future__ import annotations

import pytest

from tests.unlearn.tiny_models import tiny_config
from worker.unlearn import family_class

PATCH_FAMILIES = ("mae", "diffusion")


def config_of(family: str, **change):
    return family_class(family).config_class.from_dict({**tiny_config(family), **change})


@pytest.mark.parametrize("family", PATCH_FAMILIES)
def test_grid_counts_patches(family: str) -> None:
    cfg = config_of(family, image_size=16, patch_size=4)
    assert (cfg.grid_size, cfg.num_patches) == (4, 16)
    cfg = config_of(family, image_size=16, patch_size=8, mask_ratio=0.5)
    assert (cfg.grid_size, cfg.num_patches) == (2, 4)


@pytest.mark.parametrize("family", PATCH_FAMILIES)
@pytest.mark.parametrize("patch_size", [5, 0, -4])
def test_a_size_that_is_not_whole_patches_is_a_value_error(family: str, patch_size: int) -> None:
    """patch_size 0 used to be a ZeroDivisionError, and a negative one passed the MAE's check."""
    with pytest.raises(ValueError, match=f"image_size 16 is not a multiple of patch_size {patch_size}"):
        config_of(family, image_size=16, patch_size=patch_size)


@pytest.mark.parametrize("family", PATCH_FAMILIES)
def test_mask_ratio_must_leave_tokens_visible_and_hidden(family: str) -> None:
    with pytest.raises(ValueError, match="mask_ratio 1.0 leaves 0 of 16 tokens visible"):
        config_of(family, mask_ratio=1.0)
    with pytest.raises(ValueError, match="mask_ratio 0.0 leaves 16 of 16 tokens visible"):
        config_of(family, mask_ratio=0.0)


@pytest.mark.parametrize("family", PATCH_FAMILIES)
def test_pixel_statistics_are_one_positive_pair_per_channel(family: str) -> None:
    name = family_class(family).config_class.__name__
    with pytest.raises(ValueError, match=rf"invalid {name}: pixel_mean and pixel_std need 1 values \(one per channel\)"):
        config_of(family, pixel_mean=[0.1, 0.2])
    with pytest.raises(ValueError, match=r"pixel_std must be positive, got \(0.0,\)"):
        config_of(family, pixel_std=[0.0])
