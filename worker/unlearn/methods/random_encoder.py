"""``random_encoder`` (ALGORITHM.md §3): encoder-L2 with a random forget target.

The forget rows' latents are pulled to Gaussian draws with the mean and standard deviation of the
teacher's latents (scalars, from the teacher's retain-row latents of the same step: the reference
uses the whole batch's; ours needs no teacher pass on the forget rows). Encoder only.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..losses import encoder_l2
from .common import Batch, Context, Objective, register_objective
from .registry import NoParams


@register_objective(
    "random_encoder", trains="encoder", params_class=NoParams, needs_teacher=True,
    summary="encoder latents of forget inputs pulled to random vectors with the teacher latents' statistics",
)  # fmt: skip
def random_encoder(_params: NoParams) -> Objective:
    def objective(ctx: Context, batch: Batch) -> dict[str, Tensor]:
        h = batch.half
        with torch.no_grad():
            t_retain = ctx.teacher.encode(batch.x_r, batch.mask_r)  # (B/2, L_vis + 1, D)
        z = ctx.student.encode(batch.x, batch.mask)  # (B, L_vis + 1, D)
        target = ctx.randn_like(z[h:]) * t_retain.std() + t_retain.mean()  # (B/2, L_vis + 1, D)
        return encoder_l2(z[:h], t_retain, z[h:], target, ctx.config.alpha)

    return objective
