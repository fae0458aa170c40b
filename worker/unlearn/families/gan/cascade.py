"""Cascaded unlearning of a GAN (after Sun, Zhu, Chang, Zhou 2023, "Generative Adversarial Networks Unlearning").

The paper's three ideas, as implemented here (the project's seed holds the paper's abstract only;
the details below are this implementation's, documented in README "GAN family"):

- **Substitution.** Removing the forget images must not tear a hole in the latent space. The
  generator's own samples serve as substitutes: a pool of ``pool`` images of the *base* generator
  from fixed latent codes. The pool samples nearest (pixels, L2) to the forget images are the
  *forget-like* codes: each forget image's nearest pool sample, then the pool samples nearest the
  forget set, ``exclude_share`` of the pool in all (for a class: set it at least to the class's
  share of the samples; the default 0.2 covers one class of ten); the rest are the *clean* pool. Each forget image and each forget-like code gets a
  substitute: its nearest clean pool image. The generator is taught to map forget-like codes to
  their substitutes (a per-code L2 pull, weight ``alpha``), so those codes keep producing images,
  just not the forgotten ones.
- **Fake label.** The discriminator is taught to output ``fake_label`` (a probability) on the
  forget images instead of "real", while the substitutes are labelled real. ``None`` (default)
  sets it to the base discriminator's mean output on the base generator's own samples: the forget
  images should look to D like something the generator made up, not like training data, and not
  like an outlier either (label 0 over-forgets: nearest-neighbour membership then flips below chance).
- **Cascade.** ``rounds`` rounds of an unlearning stage (``unlearn_share`` of the round's steps:
  the two terms above plus the usual adversarial terms) followed by a learning stage (plain GAN
  training on the learning data, and the clean codes pulled to the base's images for them).

Retain-free by default (``learning_data="generated"``): the learning stage's "real" images are the
clean pool, which the base generator produced; no training image other than the forget set is read.
``learning_data="retain"`` uses the job's retain images instead (the paper's remaining data).

One step = one discriminator update and one generator update; ``steps`` of the shared config is
the budget, ``batch_size // 2`` rows of each group per step, Adam with betas (0.5, 0.999).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor
from torch.nn.functional import binary_cross_entropy_with_logits as bce
from torch.nn.functional import mse_loss

from ...adapters.sampler import SamplerAdapter, is_sampler
from ...config import EncoderL2Config
from ...loop import StepInfo, StopCheck, UnlearnResult, _check_images, cycled_indices, finish_run, finite_losses
from ...loop import record_step, should_stop
from ...methods.registry import register_method

LEARNING_DATA = ("generated", "retain")
_CHUNK = 512


@dataclass(frozen=True)
class GanCascadeParams:
    """Parameters of ``gan_cascade`` beyond the shared config (the service's schema mirrors them)."""

    rounds: int = 4
    unlearn_share: float = 0.5
    fake_label: float | None = None
    learning_data: Literal["generated", "retain"] = "generated"
    pool: int = 2048
    exclude_share: float = 0.2

    def __post_init__(self) -> None:
        problems = []
        if not (_is_int(self.rounds) and 1 <= self.rounds <= 100):
            problems.append(f"rounds must be an integer in [1, 100], got {self.rounds!r}")
        if not (_is_number(self.unlearn_share) and 0 < self.unlearn_share <= 1):
            problems.append(f"unlearn_share must be a number in (0, 1], got {self.unlearn_share!r}")
        if self.fake_label is not None and not (_is_number(self.fake_label) and 0 <= self.fake_label <= 1):
            problems.append(f"fake_label must be null or a number in [0, 1], got {self.fake_label!r}")
        if self.learning_data not in LEARNING_DATA:
            problems.append(f"learning_data must be one of {list(LEARNING_DATA)}, got {self.learning_data!r}")
        if not (_is_int(self.pool) and 64 <= self.pool <= 65536):
            problems.append(f"pool must be an integer in [64, 65536], got {self.pool!r}")
        if not (_is_number(self.exclude_share) and 0 < self.exclude_share < 1):
            problems.append(f"exclude_share must be a number in (0, 1), got {self.exclude_share!r}")
        if problems:
            raise ValueError("; ".join(problems))


@dataclass
class Plan:
    """What the cascade trains on, all from the base (teacher) generator."""

    near_z: Tensor  # (K, d) forget-like codes
    near_sub: Tensor  # (K, C, H, W) their substitutes
    forget_sub: Tensor  # (N_f, C, H, W) a substitute per forget image
    clean_z: Tensor  # (P - K, d)
    clean_x: Tensor  # (P - K, C, H, W) the base's images for the clean codes
    fake_label: float


@torch.no_grad()
def make_plan(teacher: SamplerAdapter, forget: Tensor, params: GanCascadeParams, gen: torch.Generator) -> Plan:
    z = teacher.latent(params.pool, gen)
    x = torch.cat([teacher.sample(z[i : i + _CHUNK]) for i in range(0, len(z), _CHUNK)])
    dist = _sq_dists(forget.flatten(1), x.flatten(1))  # (N_f, P)
    near_d = dist.min(dim=0).values  # (P,) each pool sample's distance to the forget set
    cap = max(1, math.floor(params.exclude_share * params.pool))
    # forget-like: each forget image's nearest sample (items), then the samples nearest the forget set
    # (a class), up to exclude_share of the pool
    first = torch.unique(dist.min(dim=1).indices)
    first = first[near_d[first].argsort()][:cap]
    rest = near_d.clone()
    rest[first] = float("inf")
    near = torch.cat([first, rest.argsort()[: cap - len(first)]])
    clean = torch.ones(params.pool, dtype=torch.bool)
    clean[near] = False
    clean_idx = clean.nonzero().squeeze(1)
    clean_x = x[clean_idx]
    to_clean = lambda imgs: clean_x[_sq_dists(imgs.flatten(1), clean_x.flatten(1)).argmin(dim=1)]  # noqa: E731
    fake_label = params.fake_label
    if fake_label is None and teacher.has_discriminator:
        fake_label = float(torch.sigmoid(torch.cat([teacher.discriminate(x[i : i + _CHUNK])
                                                    for i in range(0, len(x), _CHUNK)])).mean())  # fmt: skip
    return Plan(near_z=z[near], near_sub=to_clean(x[near]), forget_sub=to_clean(forget), clean_z=z[clean_idx],
                clean_x=clean_x, fake_label=float(fake_label if fake_label is not None else 0.0))  # fmt: skip


def _sq_dists(a: Tensor, b: Tensor) -> Tensor:
    """(A, D), (B, D) -> (A, B) squared L2 distances, in row chunks of ``a``."""
    return torch.cat([torch.cdist(a[i : i + _CHUNK], b).square() for i in range(0, len(a), _CHUNK)])


@register_method("gan_cascade", trains="generator", params_class=GanCascadeParams, kind="sampler",
                 summary="GANs: substitutes for the forget images, a fake label for D, unlearning and learning "
                         "stages in cascade (Sun et al. 2023)")  # fmt: skip
def run_gan_cascade(
    adapter: SamplerAdapter,
    forget: Tensor,
    retain: Tensor,
    config: EncoderL2Config,
    params: GanCascadeParams,
    on_step: Callable[[StepInfo], None] | None = None,
    stop: StopCheck | None = None,
) -> UnlearnResult:
    """Cascaded unlearning; ``adapter`` (a sampler with a discriminator) is not modified."""
    if not is_sampler(adapter) or not adapter.has_discriminator:
        raise TypeError(f"gan_cascade needs a sampler with a discriminator; model family {adapter.family!r} is not one")
    _check_images("forget", forget, adapter.image_shape)
    if params.learning_data == "retain":
        _check_images("retain", retain, adapter.image_shape)
    started = time.perf_counter()
    gen = torch.Generator().manual_seed(config.seed)
    device = adapter.device
    teacher = adapter.clone()
    teacher.model.eval().requires_grad_(False)
    plan = make_plan(teacher, forget.to(device), params, gen)
    student = adapter.clone()
    student.model.requires_grad_(True)
    g_params, d_params = student.generator_parameters(), student.discriminator_parameters()
    opt = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    opt_g = opt(g_params, lr=config.lr, betas=(0.5, 0.999), weight_decay=config.weight_decay)
    opt_d = opt(d_params, lr=config.lr, betas=(0.5, 0.999), weight_decay=config.weight_decay)
    learn = (retain if params.learning_data == "retain" else plan.clean_x).to(device)
    forget, half, total = forget.to(device), max(1, config.batch_size // 2), config.steps
    stage_of = stage_schedule(total, params.rounds, params.unlearn_share)
    draw = {name: _Cycler(n, gen) for name, n in (("forget", len(forget)), ("near", len(plan.near_z)),
                                                   ("clean", len(plan.clean_z)), ("learn", len(learn)))}  # fmt: skip
    ones, zeros = torch.ones(half, device=device), torch.zeros(half, device=device)
    fake_targets = torch.full((half,), plan.fake_label, device=device)
    history: list[StepInfo] = []
    _train_mode(student)
    for step in range(total):
        z = student.latent(half, gen)
        c = draw["clean"](half)
        if stage_of[step] == "unlearn":
            f, k = draw["forget"](half), draw["near"](half)
            fakes = student.sample_raw(torch.cat([z, plan.near_z[k]]))
            d_loss = (bce(student.discriminate(plan.forget_sub[f]), ones)
                      + bce(student.discriminate(forget[f]), fake_targets)
                      + bce(student.discriminate(fakes.detach()), torch.zeros(len(fakes), device=device)))  # fmt: skip
            _step(opt_d, d_loss, d_params, config)
            g_adv = bce(student.discriminate(fakes), torch.ones(len(fakes), device=device))
            g_sub = mse_loss(fakes[half:], plan.near_sub[k])
            g_keep = mse_loss(student.sample_raw(plan.clean_z[c]), plan.clean_x[c])
            g_loss = g_adv + config.alpha * (g_sub + g_keep)
            terms = {"loss": g_loss, "d": d_loss, "g_adv": g_adv, "substitute": g_sub, "keep": g_keep}
        else:
            fakes = student.sample_raw(z)
            real = learn[draw["learn"](half)]
            d_loss = bce(student.discriminate(real), ones) + bce(student.discriminate(fakes.detach()), zeros)
            _step(opt_d, d_loss, d_params, config)
            g_adv = bce(student.discriminate(fakes), ones)
            g_keep = mse_loss(student.sample_raw(plan.clean_z[c]), plan.clean_x[c])
            g_loss = g_adv + config.alpha * g_keep
            terms = {"loss": g_loss, "d": d_loss, "g_adv": g_adv, "keep": g_keep}
        losses = finite_losses(terms, step, total)
        _step(opt_g, g_loss, g_params, config)
        record_step(history, on_step, StepInfo(step=step + 1, total=total,
                                               losses={**losses, "stage": 1.0 if stage_of[step] == "unlearn" else 0.0}))
        if should_stop(stop, student, step + 1, total):
            break
        _train_mode(student)  # should_stop puts every module back in train mode
    student.model.requires_grad_(False)
    result = finish_run(student, g_params + d_params, history, started, config, total)
    result.plan_summary = {"forget_like_codes": len(plan.near_z), "clean_codes": len(plan.clean_z),  # type: ignore[attr-defined]
                           "fake_label": round(plan.fake_label, 4)}
    return result


def _train_mode(student: SamplerAdapter) -> None:
    """Train mode with every normalisation layer in eval mode: fine-tuning batches mix forget-like codes,
    substitutes and clean codes, and their batch statistics would shift the running ones every code is
    sampled with (a brightness drift of the whole model, not unlearning)."""
    student.model.train()
    for module in student.model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()


def stage_schedule(total: int, rounds: int, unlearn_share: float) -> list[str]:
    """The stage of each of ``total`` steps: ``rounds`` rounds, each unlearning first, then learning."""
    out: list[str] = []
    bounds = [round(total * r / rounds) for r in range(rounds + 1)]
    for a, b in zip(bounds, bounds[1:]):
        u = max(1, round((b - a) * unlearn_share)) if b > a else 0
        out += ["unlearn"] * u + ["learn"] * (b - a - u)
    return out[:total]


def _step(optimizer: torch.optim.Optimizer, loss: Tensor, params: list, config: EncoderL2Config) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if config.grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
    optimizer.step()


class _Cycler:
    """Indices into ``n`` items, fresh random permutations back to back."""

    def __init__(self, n: int, gen: torch.Generator) -> None:
        self.n, self.gen, self.buffer = n, gen, torch.empty(0, dtype=torch.long)

    def __call__(self, k: int) -> Tensor:
        if self.n == 0:
            raise ValueError("nothing to draw from")
        while len(self.buffer) < k:
            self.buffer = torch.cat([self.buffer, cycled_indices(self.n, self.n, self.gen)])
        out, self.buffer = self.buffer[:k], self.buffer[k:]
        return out


def params_dict(params: GanCascadeParams) -> dict:
    return dataclasses.asdict(params)


def _is_number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)
