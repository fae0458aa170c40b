"""The optimisation loop every method other than encoder-L2 shares (ALGORITHM.md §3, §4).

A method is an *objective*: a function of one step's :class:`Batch` returning loss terms (a dict
of scalar tensors with a ``"loss"`` to minimise). The loop around it is the encoder-L2 loop's:
one seeded ``torch.Generator`` for everything random, ``B/2`` retain rows and ``B/2`` forget rows
per step (the smaller set cycled, :func:`~worker.unlearn.loop.cycled_indices`), one random mask per
row, a frozen teacher clone in eval mode, a stop on a non-finite loss or weight. What trains is the
method's choice: the encoder only (the decoder stays bit-identical) or the whole generator.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from ..adapters.base import Adapter
from ..config import EncoderL2Config
from ..loop import (
    StepInfo,
    StopCheck,
    UnlearnResult,
    _check_images,
    clip_and_step,
    cycled_indices,
    finish_run,
    finite_losses,
    record_step,
    should_stop,
)
from ..losses import noise_images
from .registry import register_method


@dataclass
class Context:
    """What an objective may use: the models, the trained parameters, the config, the run's generator."""

    student: Adapter
    teacher: Adapter | None  # None for methods whose targets are the images themselves
    params: list[nn.Parameter]
    config: EncoderL2Config
    generator: torch.Generator

    def noise(self, n: int) -> Tensor:
        """(n, C, H, W) noise images with the model's fixed pixel statistics (ALGORITHM.md §2)."""
        cfg = self.student.config
        mean, std = torch.tensor(cfg.pixel_mean), torch.tensor(cfg.pixel_std)  # (C,)
        return noise_images(n, mean, std, self.student.image_shape, self.generator).to(self.student.device)

    def randn_like(self, x: Tensor) -> Tensor:
        """Standard normal draws of ``x``'s shape from the run's generator, on ``x``'s device."""
        return torch.randn(x.shape, generator=self.generator).to(x.device, x.dtype)


@dataclass
class Batch:
    """One step: x_r, x_f (B/2, C, H, W) retain and forget rows; mask (B, L), retain rows first."""

    x_r: Tensor
    x_f: Tensor
    mask: Tensor

    @property
    def half(self) -> int:
        return len(self.x_r)

    @property
    def x(self) -> Tensor:
        """(B, C, H, W) retain rows then forget rows, the layout of ``mask``."""
        return torch.cat([self.x_r, self.x_f])

    @property
    def mask_r(self) -> Tensor:
        return self.mask[: self.half]  # (B/2, L)

    @property
    def mask_f(self) -> Tensor:
        return self.mask[self.half :]  # (B/2, L)


Objective = Callable[[Context, Batch], dict[str, Tensor]]
Backward = Callable[[Context, dict[str, Tensor]], dict[str, float]]


def hidden_mse_rows(out: Tensor, target: Tensor, hidden: Tensor) -> Tensor:
    """Per-row squared error averaged over the hidden pixels and channels.

    out, target: (N, C, H, W); hidden: (N, 1, H, W) bool. Returns (N,).
    """
    w = hidden.to(out.dtype)  # (N, 1, H, W)
    per_row = ((out - target) ** 2 * w).sum(dim=(1, 2, 3))  # (N,)
    return per_row / (w.sum(dim=(1, 2, 3)) * out.shape[1])


def hidden_mse(out: Tensor, target: Tensor, hidden: Tensor) -> Tensor:
    """Scalar mean of :func:`hidden_mse_rows` (every row hides as many pixels)."""
    return hidden_mse_rows(out, target, hidden).mean()


def trainable_parameters(student: Adapter, trains: Literal["encoder", "generator"]) -> list[nn.Parameter]:
    """Set ``requires_grad`` for ``trains`` and return the parameters the optimiser gets."""
    if trains == "encoder":
        student.freeze_non_encoder()
        return student.encoder_parameters()
    params = student.generator_parameters()
    keep = {id(p) for p in params}
    for p in student.model.parameters():
        p.requires_grad_(id(p) in keep)
    return params


def _backward_sum(_ctx: Context, terms: dict[str, Tensor]) -> dict[str, float]:
    terms["loss"].backward()
    return {}


def run_objective(
    adapter: Adapter,
    forget: Tensor,
    retain: Tensor,
    config: EncoderL2Config,
    on_step: Callable[[StepInfo], None] | None,
    *,
    objective: Objective,
    trains: Literal["encoder", "generator"],
    needs_teacher: bool,
    backward: Backward = _backward_sum,
    stop: StopCheck | None = None,
) -> UnlearnResult:
    """Minimise ``objective`` over ``trains`` for ``config.steps`` steps; ``adapter`` is not modified.

    forget: (N_f, C, H, W), retain: (N_r, C, H, W), floats in [0, 1]. ``backward`` turns the terms
    into ``.grad`` on ``ctx.params`` (default: backprop ``terms["loss"]``) and may return extra
    numbers to log. ``stop`` may end the run early (see :class:`StopCheck`). Raises NonFiniteLoss on a
    NaN/inf loss or weight.
    """
    _check_images("forget", forget, adapter.image_shape)
    _check_images("retain", retain, adapter.image_shape)
    started = time.perf_counter()
    device = adapter.device
    gen = torch.Generator().manual_seed(config.seed)  # the only source of randomness of the run

    teacher = None
    if needs_teacher:
        teacher = adapter.clone()
        teacher.model.eval().requires_grad_(False)
    student = adapter.clone()
    params = trainable_parameters(student, trains)
    student.model.train()
    opt_class = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    optimizer = opt_class(params, lr=config.lr, weight_decay=config.weight_decay)
    ctx = Context(student=student, teacher=teacher, params=params, config=config, generator=gen)

    half = config.batch_size // 2
    total = config.steps
    forget_ids = cycled_indices(len(forget), total * half, gen)  # (steps * B/2,)
    retain_ids = cycled_indices(len(retain), total * half, gen)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    history: list[StepInfo] = []
    for step in range(total):
        rows = slice(step * half, (step + 1) * half)
        batch = Batch(
            x_r=retain[retain_ids[rows]].to(device),  # (B/2, C, H, W)
            x_f=forget[forget_ids[rows]].to(device),  # (B/2, C, H, W)
            mask=student.random_mask(2 * half, gen),  # (B, L): retain rows first, then forget rows
        )
        with autocast:
            terms = objective(ctx, batch)
        losses = finite_losses(terms, step, total)
        optimizer.zero_grad(set_to_none=True)
        losses.update(backward(ctx, terms))
        clip_and_step(optimizer, params, config)
        record_step(history, on_step, StepInfo(step=step + 1, total=total, losses=losses))
        if should_stop(stop, student, step + 1, total):
            break
    return finish_run(student, params, history, started, config, total)


def register_objective(
    name: str,
    *,
    trains: Literal["encoder", "generator"],
    params_class: type,
    summary: str,
    needs_teacher: bool,
    backward: Backward = _backward_sum,
) -> Callable[[Callable[[object], Objective]], Callable[[object], Objective]]:
    """Decorator: register method ``name`` whose objective ``make(params)`` runs in :func:`run_objective`."""

    def decorate(make: Callable[[object], Objective]) -> Callable[[object], Objective]:
        def run(adapter, forget, retain, config, params, on_step, stop) -> UnlearnResult:
            return run_objective(adapter, forget, retain, config, on_step, objective=make(params), trains=trains,
                                 needs_teacher=needs_teacher, backward=backward, stop=stop)  # fmt: skip

        register_method(name, trains=trains, params_class=params_class, summary=summary)(run)
        return make

    return decorate
