"""The paper's full-model baselines (ALGORITHM.md §3): losses on the generated pixels, whole model trained.

All three take their terms on the hidden pixels of the generator's output (``reconstruct``,
pixel units), so they see what a user sees. Retain rows: the images themselves (``max_loss``,
``noisy_label``: the training loss) or the teacher's outputs (``retain_label``). Forget rows, weighted
by ``alpha``:

- ``max_loss``: gradient *ascent* on the reconstruction error of the forget rows. The ascent term
  is taken on the output clamped to [0, 1], so it is bounded (at most 1 per pixel): a pixel pushed
  out of range stops pulling. ``forget_bound`` optionally caps each row's term lower (a hinge).
- ``noisy_label``: forget inputs are trained to reconstruct noise images (fixed model statistics).
- ``retain_label``: forget inputs are trained to reconstruct what the teacher generates for the
  retain images of the same step, under the forget rows' own masks (so the hidden regions align).

Unlike the reference code, the forget terms are applied to the forget rows (its baselines multiply
both terms by the retain mask, so ``retain_label`` never forgets anything there).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .common import Batch, Context, Objective, hidden_mse, hidden_mse_rows, register_objective
from .registry import NoParams


@dataclass(frozen=True)
class MaxLossParams:
    """forget_bound: None, or a positive cap on each forget row's ascended error (a hinge)."""

    forget_bound: float | None = None

    def __post_init__(self) -> None:
        b = self.forget_bound
        if b is not None and not (isinstance(b, (int, float)) and not isinstance(b, bool) and math.isfinite(b) and b > 0):
            raise ValueError(f"forget_bound must be None or a positive finite number, got {b!r}")


def _student_fills(ctx: Context, batch: Batch) -> tuple[Tensor, Tensor]:
    """Student output (B, C, H, W) for retain then forget rows, and the hidden pixels (B, 1, H, W)."""
    return ctx.student.reconstruct(batch.x, batch.mask), ctx.student.hidden_pixels(batch.mask)


@register_objective(
    "max_loss", trains="generator", params_class=MaxLossParams, needs_teacher=False,
    summary="whole generator: reconstruction loss minimised on retain rows, maximised on forget rows",
)  # fmt: skip
def max_loss(params: MaxLossParams) -> Objective:
    def objective(ctx: Context, batch: Batch) -> dict[str, Tensor]:
        h = batch.half
        out, hidden = _student_fills(ctx, batch)  # (B, C, H, W), (B, 1, H, W)
        retain = hidden_mse(out[:h], batch.x_r, hidden[:h])
        forget_rows = hidden_mse_rows(out[h:].clamp(0, 1), batch.x_f, hidden[h:])  # (B/2,) bounded by 1
        if params.forget_bound is not None:
            forget_rows = forget_rows.clamp(max=params.forget_bound)
        forget = forget_rows.mean()
        return {"loss": retain - ctx.config.alpha * forget, "retain": retain, "forget": forget}

    return objective


@register_objective(
    "noisy_label", trains="generator", params_class=NoParams, needs_teacher=False,
    summary="whole generator: forget inputs trained to reconstruct noise images",
)  # fmt: skip
def noisy_label(_params: NoParams) -> Objective:
    def objective(ctx: Context, batch: Batch) -> dict[str, Tensor]:
        h = batch.half
        out, hidden = _student_fills(ctx, batch)
        retain = hidden_mse(out[:h], batch.x_r, hidden[:h])
        forget = hidden_mse(out[h:], ctx.noise(h), hidden[h:])  # noise image as the forget rows' label
        return {"loss": retain + ctx.config.alpha * forget, "retain": retain, "forget": forget}

    return objective


@register_objective(
    "retain_label", trains="generator", params_class=NoParams, needs_teacher=True,
    summary="whole generator: forget inputs trained toward the teacher's outputs for retain images",
)  # fmt: skip
def retain_label(_params: NoParams) -> Objective:
    def objective(ctx: Context, batch: Batch) -> dict[str, Tensor]:
        h = batch.half
        with torch.no_grad():
            # Teacher on the retain images twice over: under the retain rows' masks (their own
            # target) and under the forget rows' masks (the forget rows' target), in one pass.
            target = ctx.teacher.reconstruct(torch.cat([batch.x_r, batch.x_r]), batch.mask)  # (B, C, H, W)
        out, hidden = _student_fills(ctx, batch)
        retain = hidden_mse(out[:h], target[:h], hidden[:h])
        forget = hidden_mse(out[h:], target[h:], hidden[h:])
        return {"loss": retain + ctx.config.alpha * forget, "retain": retain, "forget": forget}

    return objective
