"""``gradient_surgery`` (seed 002, Bae et al. 2023; ALGORITHM.md §4). Encoder only.

Per step, two gradients over all trained parameters flattened into one vector:

- ``g_r`` of the retain objective, the encoder-L2 retain term ``mean ||E(T(x_r)) - E0(T(x_r))||^2``
  (proxy or real retain rows: the method does not care);
- ``g_f`` of ``alpha`` times the forget objective: the encoder-L2 forget term (latents of forget
  inputs toward the teacher's latents of noise, ``forget_objective="encoder_l2"``) or gradient
  ascent on the generator's reconstruction error of the forget rows (``"max_loss"``, through the
  frozen decoder, on the output clamped to [0, 1] so the ascent is bounded).

If they conflict (``g_f . g_r < 0``) ``g_f`` is replaced by its projection on the normal plane of
``g_r``: ``g_f - (g_f . g_r / ||g_r||^2) g_r``. The step follows ``g_r + g_f``, so to first order the
forget update does not undo the retain objective.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from .common import Batch, Context, Objective, hidden_mse, register_objective

FORGET_OBJECTIVES = ("encoder_l2", "max_loss")


@dataclass(frozen=True)
class GradientSurgeryParams:
    """forget_objective: "encoder_l2" (latents toward noise latents) or "max_loss" (ascent on pixels)."""

    forget_objective: Literal["encoder_l2", "max_loss"] = "encoder_l2"

    def __post_init__(self) -> None:
        if self.forget_objective not in FORGET_OBJECTIVES:
            raise ValueError(
                f"forget_objective must be one of {list(FORGET_OBJECTIVES)}, got {self.forget_objective!r}"
            )


def project_conflicting(g_f: Tensor, g_r: Tensor) -> tuple[Tensor, bool]:
    """g_f, g_r: (P,) flat gradients. Returns g_f projected on the normal plane of g_r when g_f . g_r < 0."""
    dot = torch.dot(g_f, g_r)
    if dot >= 0:
        return g_f, False
    return g_f - dot / g_r.dot(g_r).clamp_min(1e-30) * g_r, True


def _surgery_backward(ctx: Context, terms: dict[str, Tensor]) -> dict[str, float]:
    params = ctx.params
    g_r = torch.autograd.grad(terms["retain"], params, retain_graph=True, allow_unused=True)
    g_f = torch.autograd.grad(terms["forget_step"], params, allow_unused=True)
    flat_r = torch.cat([_flat(g, p) for g, p in zip(g_r, params)])  # (P,)
    flat_f = torch.cat([_flat(g, p) for g, p in zip(g_f, params)])  # (P,)
    cosine = float(F.cosine_similarity(flat_f, flat_r, dim=0, eps=1e-30))
    projected, conflict = project_conflicting(flat_f, flat_r)
    step = flat_r + projected  # (P,)
    offset = 0
    for p in params:
        p.grad = step[offset : offset + p.numel()].view_as(p).clone()
        offset += p.numel()
    return {"grad_cosine": cosine, "conflict": float(conflict)}


def _flat(grad: Tensor | None, param: Tensor) -> Tensor:
    return torch.zeros(param.numel(), device=param.device) if grad is None else grad.reshape(-1).float()


@register_objective(
    "gradient_surgery", trains="encoder", params_class=GradientSurgeryParams, needs_teacher=True,
    backward=_surgery_backward,
    summary="encoder: forget gradient projected off the retain gradient where they conflict",
)  # fmt: skip
def gradient_surgery(params: GradientSurgeryParams) -> Objective:
    def objective(ctx: Context, batch: Batch) -> dict[str, Tensor]:
        h = batch.half
        with torch.no_grad():
            t_retain = ctx.teacher.encode(batch.x_r, batch.mask_r)  # (B/2, L_vis + 1, D)
        if params.forget_objective == "encoder_l2":
            with torch.no_grad():
                t_noise = ctx.teacher.encode(ctx.noise(h), batch.mask_f)  # same masks as the forget rows
            z = ctx.student.encode(batch.x, batch.mask)  # (B, L_vis + 1, D)
            retain = F.mse_loss(z[:h], t_retain)
            forget = F.mse_loss(z[h:], t_noise)
            forget_step = ctx.config.alpha * forget  # minimised
        else:
            retain = F.mse_loss(ctx.student.encode(batch.x_r, batch.mask_r), t_retain)
            out = ctx.student.reconstruct(batch.x_f, batch.mask_f).clamp(0, 1)  # (B/2, C, H, W)
            forget = hidden_mse(out, batch.x_f, ctx.student.hidden_pixels(batch.mask_f))
            forget_step = -ctx.config.alpha * forget  # ascent
        return {"loss": retain + forget_step, "retain": retain, "forget": forget, "forget_step": forget_step}

    return objective
