"""The patch grid and pixel statistics that the MAE and diffusion configs share.

Both families cut a square ``image_size`` image into ``patch_size`` patches (the token masks of
``T``) and keep per-channel ``pixel_mean``/``pixel_std`` of the training images (to normalise, and
to draw the noise images of encoder-L2). :class:`PatchGrid` is mixed into their frozen dataclass
configs; it holds no fields of its own, only what follows from those. The masks the adapters draw
on this grid are :class:`.masks.PatchMasks`.
"""

from __future__ import annotations


class PatchGrid:
    """Mixin for a config with fields ``image_size``, ``patch_size``, ``in_chans``, ``mask_ratio``,
    ``pixel_mean`` and ``pixel_std``."""

    image_size: int
    patch_size: int
    in_chans: int
    mask_ratio: float
    pixel_mean: tuple[float, ...]
    pixel_std: tuple[float, ...]

    @property
    def grid_size(self) -> int:
        """Patches along a side."""
        return self.image_size // self.patch_size

    @property
    def num_patches(self) -> int:
        """Tokens per image, L."""
        return self.grid_size**2

    def grid_problems(self) -> list[str]:
        """The image must be a whole number of patches, and a random mask must leave some tokens visible
        and hide some (``int(L * (1 - mask_ratio))`` visible, as ``random_mask`` draws)."""
        problems = []
        if self.image_size < 1 or self.patch_size < 1 or self.image_size % self.patch_size:
            problems.append(f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}")
        if self.patch_size >= 1:  # else there is no grid to count tokens on
            keep = int(self.num_patches * (1 - self.mask_ratio))
            if not 0 < keep < self.num_patches:
                problems.append(f"mask_ratio {self.mask_ratio} leaves {keep} of {self.num_patches} tokens visible")
        return problems

    def pixel_stats_problems(self) -> list[str]:
        """One mean and one positive standard deviation per channel."""
        problems = []
        if len(self.pixel_mean) != self.in_chans or len(self.pixel_std) != self.in_chans:
            problems.append(f"pixel_mean and pixel_std need {self.in_chans} values (one per channel)")
        if any(s <= 0 for s in self.pixel_std):
            problems.append(f"pixel_std must be positive, got {self.pixel_std}")
        return problems
