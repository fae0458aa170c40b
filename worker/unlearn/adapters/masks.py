"""Token masks over a patch grid: the masking part of ``T`` that the MAE and diffusion adapters share.

A family whose config mixes in :class:`~.geometry.PatchGrid` gets the masked half of the Adapter
contract (``image_shape``, ``random_mask``, ``box_mask``, ``hidden_pixels``) by putting
:class:`PatchMasks` before :class:`~.base.Adapter` in its bases; the abstract methods of ``base.py``
stay the contract, this mixin is one implementation of them. Token ``i`` is the patch at row
``i // grid_size``, column ``i % grid_size`` (row-major, as ``patchify`` orders them).

The draws are part of every run's reproducibility: a run's masks are a function of its seed, and
teacher caches store masks next to their targets, so a change here that moves a single bit for the
same generator state changes what a saved seed means (tests/unlearn/test_masks.py pins them).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .geometry import PatchGrid


class PatchMasks:
    """Adapter mixin: masks of ``config``'s patch grid, True = hidden, on the adapter's device."""

    config: PatchGrid
    device: torch.device  # the Adapter's property: where the model's parameters are

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W): square images of ``in_chans`` channels."""
        return (self.config.in_chans, self.config.image_size, self.config.image_size)

    def random_mask(self, n: int, generator: torch.Generator) -> Tensor:
        """(N, L) bool: per row the ``int(L * (1 - mask_ratio))`` lowest of uniform noise stay visible.

        The noise is drawn on the generator's device (a CUDA generator draws CUDA noise), so the
        mask follows the generator's state alone, as the official ``random_masking`` does.
        """
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
        start = torch.arange(g) * p  # (g,) first pixel of each patch row (and column)
        rows = (start < hi) & (start + p > lo)  # (g,) patch rows (and columns) touching the box
        box = rows[:, None] & rows[None, :]  # (g, g)
        return box.reshape(1, -1).expand(n, -1).to(self.device)  # (N, L)

    def hidden_pixels(self, mask: Tensor) -> Tensor:
        """mask: (N, L) -> (N, 1, H, W) bool, each token's flag spread over its ``patch_size`` square."""
        p, g = self.config.patch_size, self.config.grid_size
        grid = mask.reshape(mask.shape[0], 1, g, g)  # (N, 1, g, g)
        return grid.repeat_interleave(p, dim=2).repeat_interleave(p, dim=3)  # (N, 1, H, W)

    def check_inputs(self, imgs: Tensor, mask: Tensor) -> None:
        """ValueError unless imgs is (N, C, H, W) of ``image_shape`` and mask is bool (N, L) of this grid."""
        if tuple(imgs.shape[1:]) != self.image_shape:
            raise ValueError(f"images of shape {tuple(imgs.shape[1:])}, this model takes {self.image_shape}")
        expected = (imgs.shape[0], self.config.num_patches)
        if mask.dtype != torch.bool or tuple(mask.shape) != expected:
            raise ValueError(f"mask must be bool {expected}, got {mask.dtype} {tuple(mask.shape)}")
