"""The shared warm-up + cosine schedule returns, at every step, the floats of the formulas it replaced.

The demo checkpoints in worker/assets/demo were trained with the two per-family formulas below
(copied verbatim from the commit before worker/unlearn/schedule.py); ``python -m worker.train_demo``
reproduces them bit for bit only if every learning rate is the same float, hence ``==``.
"""

from __future__ import annotations

import math

import pytest

from worker.train_demo import DEMO_DIFFUSION_RECIPE, DEMO_RECIPE
from worker.unlearn.checkpoint import read_header
from worker.unlearn.families.diffusion import DiffusionTrainConfig
from worker.unlearn.families.mae.train import MAETrainConfig
from worker.unlearn.schedule import warmup_cosine

DEMO = "worker/assets/demo"
TRAIN_IMAGES = 60000  # the Fashion-MNIST training split the demo recipes run on


def old_mae_lr_at(step: float, total: int, warmup: float, cfg: MAETrainConfig) -> float:
    if step < warmup:
        return cfg.lr * step / warmup
    progress = (step - warmup) / max(1.0, total - warmup)
    return cfg.min_lr + (cfg.lr - cfg.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def old_diffusion_lr_at(step: int, cfg: DiffusionTrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.min_lr + (cfg.lr - cfg.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def mae_rates(cfg: MAETrainConfig, n_images: int) -> tuple[list[float], list[float]]:
    """(old, new) rate of every step, with the step counts of train_mae."""
    per_epoch = n_images // cfg.batch_size
    total, warmup = cfg.epochs * per_epoch, cfg.warmup_epochs * per_epoch
    steps = range(total)
    old = [old_mae_lr_at(s, total, warmup, cfg) for s in steps]
    return old, [warmup_cosine(s, total, warmup, cfg.lr, cfg.min_lr) for s in steps]


def diffusion_rates(cfg: DiffusionTrainConfig) -> tuple[list[float], list[float]]:
    steps = range(cfg.steps)
    old = [old_diffusion_lr_at(s, cfg) for s in steps]
    new = [warmup_cosine(s, cfg.steps, cfg.warmup_steps, cfg.lr, cfg.min_lr, warmup_from_zero=False) for s in steps]
    return old, new


def test_demo_mae_recipe_gets_the_same_floats_at_every_step() -> None:
    old, new = mae_rates(DEMO_RECIPE, TRAIN_IMAGES)
    assert len(new) == read_header(f"{DEMO}/mae.safetensors")["training"]["steps"]  # every step the demo ran
    assert new == old
    assert new[0] == 0.0 and max(new) == DEMO_RECIPE.lr


def test_demo_diffusion_recipe_gets_the_same_floats_at_every_step() -> None:
    old, new = diffusion_rates(DEMO_DIFFUSION_RECIPE)
    assert len(new) == read_header(f"{DEMO}/diffusion.safetensors")["training"]["steps"]
    assert new == old
    assert new[0] == DEMO_DIFFUSION_RECIPE.lr / DEMO_DIFFUSION_RECIPE.warmup_steps and max(new) == DEMO_DIFFUSION_RECIPE.lr


@pytest.mark.parametrize(
    "cfg, n_images",
    [
        (MAETrainConfig(), 60000),  # the defaults
        (MAETrainConfig(epochs=3, batch_size=32, warmup_epochs=1.0), 256),  # tests/unlearn/test_train_mae.py
        (MAETrainConfig(epochs=5, batch_size=100, warmup_epochs=0.37), 1234),  # a fractional warm-up
        (MAETrainConfig(epochs=2, batch_size=8, warmup_epochs=0.0), 40),  # no warm-up
        (MAETrainConfig(epochs=1, batch_size=10, warmup_epochs=3.0), 50),  # warm-up longer than training
    ],
)
def test_other_mae_recipes_get_the_same_floats(cfg: MAETrainConfig, n_images: int) -> None:
    old, new = mae_rates(cfg, n_images)
    assert new == old


@pytest.mark.parametrize(
    "cfg",
    [
        DiffusionTrainConfig(),
        DiffusionTrainConfig(steps=7, warmup_steps=0),
        DiffusionTrainConfig(steps=31, warmup_steps=30),  # one cosine step: max(1, 1)
        DiffusionTrainConfig(steps=5, warmup_steps=200),  # warm-up longer than training
    ],
)
def test_other_diffusion_recipes_get_the_same_floats(cfg: DiffusionTrainConfig) -> None:
    old, new = diffusion_rates(cfg)
    assert new == old


def test_schedule_warms_up_then_decays_to_min_lr() -> None:
    assert warmup_cosine(0, 100, 10, 1.0, 0.1) == 0.0 and warmup_cosine(5, 100, 10, 1.0, 0.1) == pytest.approx(0.5)
    assert warmup_cosine(0, 100, 10, 1.0, 0.1, warmup_from_zero=False) == pytest.approx(0.1)
    assert warmup_cosine(9, 100, 10, 1.0, 0.1, warmup_from_zero=False) == pytest.approx(1.0)
    assert warmup_cosine(10, 100, 10, 1.0, 0.1) == pytest.approx(1.0)
    assert warmup_cosine(55, 100, 10, 1.0, 0.1) == pytest.approx(0.55)  # half way down the cosine
    assert warmup_cosine(100, 100, 10, 1.0, 0.1) == pytest.approx(0.1)
