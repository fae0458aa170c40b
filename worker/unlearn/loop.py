"""The encoder-L2 unlearning loop (ALGORITHM.md §2) as one pure function.

``run_unlearning`` receives the base generator, the forget images, the retain-side images (proxy
images in retain-free mode, training images in ``with_retain`` mode: the loop does not care) and a
config, and returns a new adapter. Per step, with one seeded ``torch.Generator`` for everything
random (sampling, masks, noise):

1. take ``B/2`` retain rows and ``B/2`` forget rows (forget rows cycled: they are few);
2. draw one random mask per row; a forget row's target input (a noise image, or a substitute
   proxy image: ``config.forget_target``, substitutes.py) gets that row's mask too;
3. teacher targets (frozen clone, eval, no_grad): E0(T(x_r)) for retain rows, E0(T(n)) (or
   E0(T(s))) for forget rows, nothing else (no teacher output the loss would discard);
4. student E(T(x)) on all rows in one pass, loss = retain + alpha * forget, step on encoder only.

With ``targets`` (teacher_cache.py) the masks and noise come from a fixed bank instead: each retain
row draws one of its image's ``K`` bank masks, each forget row the next entry of the noise bank
(its mask and its teacher target) or one bank draw of its substitute proxy row, and step 3
becomes a lookup when the targets are cached. Then
the step is the student's forward and backward and nothing else (the floor).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .adapters.base import Adapter
from .config import EncoderL2Config
from .losses import encoder_l2, noise_images
from .substitutes import ForgetPlan, nearest_rows
from .teacher_cache import Targets


class NonFiniteLoss(RuntimeError):
    """The loss (or a trained weight) became NaN or infinite; the run produced nothing."""


@dataclass
class StepInfo:
    """Progress after one optimiser step (``step`` counts from 1 to ``total``)."""

    step: int
    total: int
    losses: dict[str, float]


@dataclass
class UnlearnResult:
    """``steps`` run out of ``budget`` planned; ``stopped_early``: a :class:`StopCheck` ended the run."""

    adapter: Adapter
    history: list[StepInfo] = field(repr=False)
    steps: int
    seconds: float
    config: EncoderL2Config
    budget: int
    stopped_early: bool


@dataclass(frozen=True)
class StopCheck:
    """Every ``every`` steps (never after the last), ``done(student, step)`` may end the run.

    ``done`` gets the student in eval mode (back in train mode afterwards) and must only run forward
    passes; it returns True when the run has reached its goal (stop when done, ALGORITHM.md §5).
    """

    every: int
    done: Callable[[Adapter, int], bool]

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ValueError(f"StopCheck.every must be >= 1, got {self.every}")


def should_stop(check: StopCheck | None, student: Adapter, step: int, total: int) -> bool:
    """Ask ``check`` at every ``check.every``-th step before ``total``; the student's mode is restored."""
    if check is None or step % check.every or step >= total:
        return False
    student.model.eval()
    try:
        return bool(check.done(student, step))
    finally:
        student.model.train()


def cycled_indices(n: int, count: int, generator: torch.Generator) -> Tensor:
    """(count,) indices into ``n`` items: fresh random permutations back to back (oversampling)."""
    reps = math.ceil(count / n)
    return torch.cat([torch.randperm(n, generator=generator) for _ in range(reps)])[:count]


def run_unlearning(
    adapter: Adapter,
    forget: Tensor,
    retain: Tensor,
    config: EncoderL2Config,
    on_step: Callable[[StepInfo], None] | None = None,
    *,
    targets: Targets | None = None,
    stop: StopCheck | None = None,
    retain_is_proxy: bool = False,
) -> UnlearnResult:
    """Unlearn ``forget`` from ``adapter``'s encoder while keeping it unchanged on ``retain``.

    forget: (N_f, C, H, W), retain: (N_r, C, H, W), floats in [0, 1]. ``adapter`` is not modified;
    the result holds a new adapter (the student) whose non-encoder tensors are bit-identical to the
    base. Raises NonFiniteLoss on a NaN/inf loss or weight, ValueError on malformed inputs.
    ``targets``: teacher targets over a fixed bank for exactly the rows of ``retain`` (cached or
    live, see teacher_cache.py); without it masks and noise are drawn fresh and the teacher runs
    every step. ``stop``: asked every ``stop.every`` steps whether the run is done (it may end early).
    every step. ``retain_is_proxy``: the retain rows are public proxy images (retain-free mode), so
    substitute forget targets may be drawn from them; otherwise a substitute or mixture config runs
    with noise targets and the result's config says so.
    """
    _check_images("forget", forget, adapter.image_shape)
    _check_images("retain", retain, adapter.image_shape)
    if targets is not None and len(targets) != len(retain):
        raise ValueError(f"targets cover {len(targets)} retain rows, retain has {len(retain)}")
    started = time.perf_counter()
    device = adapter.device
    gen = torch.Generator().manual_seed(config.seed)  # the only source of randomness of the run

    student = adapter.clone()
    student.freeze_non_encoder()
    student.model.train()
    params = student.encoder_parameters()
    opt_class = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    optimizer = opt_class(params, lr=config.lr, weight_decay=config.weight_decay)

    half = config.batch_size // 2
    total = config.steps  # the budget, whatever the sizes of the two sets
    forget_ids = cycled_indices(len(forget), total * half, gen)  # (steps * B/2,)
    retain_ids = cycled_indices(len(retain), total * half, gen)
    if targets is None:
        teacher = adapter.clone()
        teacher.model.eval().requires_grad_(False)
        noise_ids = torch.zeros(total * half, dtype=torch.long)  # fresh noise every step instead
    else:
        bank_draws = torch.randint(targets.draws_per_image, (total * half,), generator=gen)  # (steps * B/2,)
        noise_ids = cycled_indices(targets.noise_size, total * half, gen)  # each noise entry once per pass
    if config.forget_target != "noise" and not retain_is_proxy:
        config = config.replace(forget_target="noise")  # substitutes only ever come from proxy images
    neighbours = None if config.forget_target == "noise" else nearest_rows(forget, retain, config.substitutes)
    plan = ForgetPlan.draw(kind=config.forget_target, noise_share=config.noise_share, neighbours=neighbours,
                           forget_ids=forget_ids, noise_ids=noise_ids,
                           draws_per_image=targets.draws_per_image if targets is not None else 1, generator=gen)
    cfg = adapter.config
    mean, std = torch.tensor(cfg.pixel_mean), torch.tensor(cfg.pixel_std)  # (C,) fixed per model
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    history: list[StepInfo] = []
    for step in range(total):
        rows = slice(step * half, (step + 1) * half)
        x_r = retain[retain_ids[rows]].to(device)  # (B/2, C, H, W)
        x_f = forget[forget_ids[rows]].to(device)  # (B/2, C, H, W)
        with autocast:
            if targets is None:
                mask = student.random_mask(2 * half, gen)  # (B, L): retain rows first, then forget rows
                noise = noise_images(half, mean, std, adapter.image_shape, gen).to(device)  # (B/2, C, H, W)
                with torch.no_grad():
                    t_retain = teacher.encode(x_r, mask[:half])  # (B/2, L_vis + 1, D)
                    t_forget = teacher.encode(plan.teacher_inputs(rows, retain, noise), mask[half:])  # same masks
            else:
                m_r, t_retain = targets.retain(retain_ids[rows], bank_draws[rows])  # (B/2, L), (B/2, L_vis + 1, D)
                m_f, t_forget = plan.cached(targets, rows)  # the forget rows borrow their targets' masks
                mask = torch.cat([m_r, m_f]).to(device)  # (B, L)
                t_retain, t_forget = t_retain.to(device, torch.float32), t_forget.to(device, torch.float32)
            z = student.encode(torch.cat([x_r, x_f]), mask)  # (B, L_vis + 1, D)
            terms = encoder_l2(z[:half], t_retain, z[half:], t_forget, config.alpha)
        losses = finite_losses(terms, step, total)
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        clip_and_step(optimizer, params, config)
        record_step(history, on_step, StepInfo(step=step + 1, total=total, losses=losses))
        if should_stop(stop, student, step + 1, total):
            break
    return finish_run(student, params, history, started, config, total)


def finite_losses(terms: dict[str, Tensor], step: int, total: int) -> dict[str, float]:
    """The loss terms as floats; NonFiniteLoss if any is NaN or infinite (nothing is stepped)."""
    losses = {k: float(v.detach()) for k, v in terms.items()}
    if not all(math.isfinite(v) for v in losses.values()):
        raise NonFiniteLoss(f"non-finite loss at step {step + 1}/{total}: {losses}")
    return losses


def clip_and_step(optimizer: torch.optim.Optimizer, params: list[Tensor], config: EncoderL2Config) -> None:
    if config.grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
    optimizer.step()


def record_step(history: list[StepInfo], on_step: Callable[[StepInfo], None] | None, info: StepInfo) -> None:
    history.append(info)
    if on_step is not None:
        on_step(info)


def finish_run(student: Adapter, params: list[Tensor], history: list[StepInfo], started: float,
               config: EncoderL2Config, budget: int) -> UnlearnResult:
    """Check the trained weights, put the student in eval mode and wrap up the run."""
    if not all(bool(torch.isfinite(p).all()) for p in params):
        raise NonFiniteLoss(f"non-finite trained weights after {len(history)} steps")
    student.model.eval()
    seconds = time.perf_counter() - started
    return UnlearnResult(adapter=student, history=history, steps=len(history), seconds=seconds, config=config,
                         budget=budget, stopped_early=len(history) < budget)


def _check_images(name: str, x: Tensor, shape: tuple[int, int, int]) -> None:
    if x.ndim != 4 or tuple(x.shape[1:]) != shape or len(x) == 0:
        expected = ", ".join(map(str, shape))
        raise ValueError(f"{name} must be a non-empty (N, {expected}) tensor, got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must hold floats in [0, 1], got {x.dtype}")
