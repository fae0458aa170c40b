"""Evaluation hooks of the diffusion family: the membership score (worker/unlearn/mia.py).

A diffusion model is trained to predict the noise; on its training images that loss is lower than
on never-seen ones (Carlini et al. 2023, Matsumoto et al. 2023: loss-threshold attacks at a few
fixed timesteps). The score of an image under a mask is that loss on the hidden pixels at each of
``config.mia_timesteps``, with one noise draw fixed by the mask row, averaged over the timesteps.
The attack module calibrates it against the base (difference and ratio) like any family's error.
"""

from __future__ import annotations

import torch
from torch import Tensor


@torch.no_grad()
def denoising_error(adapter, imgs: Tensor, mask: Tensor, timesteps: tuple[int, ...]) -> Tensor:
    """(N,) mean squared noise-prediction error on the hidden pixels, averaged over ``timesteps``."""
    from .adapter import MIA_SALT

    x0, hidden, _, noise = adapter._prepare(imgs, mask, MIA_SALT, (0, 1))
    per_step = []
    for t in timesteps:
        step = torch.full((len(x0),), int(t), device=x0.device, dtype=torch.long)
        y_t = adapter.noised(x0, noise, step)
        eps = adapter.predict_noise(x0, hidden, y_t, step)
        sq = ((eps.float() - noise.float()) ** 2 * hidden).sum(dim=(1, 2, 3))  # (N,)
        per_step.append(sq / (hidden.sum(dim=(1, 2, 3)) * x0.shape[1]))
    return torch.stack(per_step, dim=1).mean(dim=1)
