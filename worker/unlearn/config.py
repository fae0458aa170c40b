"""Frozen, validated configuration of an unlearning run (ALGORITHM.md §2), and its recommended values.

The service keeps its own copy of the keys, defaults and the recommendation rule (it cannot import
the worker); ``tests/test_config_in_step.py`` keeps the two in step.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

T = TypeVar("T")

OPTIMIZERS = ("adam", "adamw")
FORGET_TARGETS = ("noise", "substitute", "mixture")

# Keys of configs written before the step budget became explicit (the demo checkpoint's header):
# ``max_steps`` was the cap on the step count, now the count itself; ``epochs`` counted passes over
# max(forget, retain) pairs, a number of steps that depended on the data, and is dropped.
LEGACY_RENAMED = {"max_steps": "steps"}
LEGACY_DROPPED = ("epochs",)

# Recommended MAE settings, measured on the demo model (embed_dim 96; tests/unlearn/test_quality_demo.py,
# benchmarks/gate.py). The learning rate scales as 1/width above the measured width (the muP rule for
# Adam on hidden matrices), clamped to [1e-5, 1e-3]: 1e-5 is the paper's for a ViT-L on ImageNet.
MAE_REFERENCE_WIDTH = 96
LR_RANGE = (1e-5, 1e-3)
WIDTH_KEYS = {"mae": "embed_dim"}  # family -> the architecture key holding its encoder width
# Families whose recommendation is not the MAE's: shared keys that differ from the class defaults.
# GAN (gan_cascade): measured on the demo GAN (class sandal: share 0.132 -> 0.006 in 400 steps at lr 2e-3;
# lr 1e-3 left 0.09), the substitution/keep pull at weight 1 (README "GAN family").
FAMILY_RECOMMENDED: dict[str, dict[str, Any]] = {"gan": {"lr": 2e-3, "alpha": 1.0, "steps": 400, "batch_size": 64}}


def dataclass_from_dict(cls: type[T], d: Mapping[str, Any]) -> T:
    """Build dataclass ``cls`` from ``d``; unknown keys are a ValueError naming them.

    Lists become tuples where the field's default is a tuple (JSON has no tuples).
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(fields))
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys {unknown}; known keys: {sorted(fields)}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
    return cls(**values)


@dataclass(frozen=True)
class EncoderL2Config:
    """Hyper-parameters shared by every unlearning method.

    ``steps`` is the budget: the number of optimiser steps the run takes, whatever the sizes of the
    forget and retain sets. Every step holds ``batch_size // 2`` retain rows and as many forget rows,
    each set cycled through fresh random permutations.

    The defaults are the settings measured on the demo MAE (Adam, lr 1e-3, alpha 0.25, batch 64,
    600 steps); :func:`recommended_config` adapts them to a model. The paper's ImageNet MAE used
    lr 1e-5. A checkpoint may recommend its own under the header key ``unlearn_defaults``
    (:meth:`from_header` reads it, older headers included).
    """

    lr: float = 1e-3
    alpha: float = 0.25
    steps: int = 600
    batch_size: int = 64
    optimizer: Literal["adam", "adamw"] = "adam"
    weight_decay: float = 0.0
    grad_clip: float | None = None
    seed: int = 0
    # The paper's noise targets stay the default: the mixture (25 % noise rows) came closest to the
    # retrained model's class recognition (benchmarks/retrained.py), but makes the forget images
    # themselves conspicuous to the membership attack (demo: AUC 0.18 vs noise 0.48, retrained 0.48).
    # noise_share and substitutes apply when a request asks for "substitute" or "mixture".
    forget_target: Literal["noise", "substitute", "mixture"] = "noise"
    noise_share: float = 0.25
    substitutes: int = 4

    def __post_init__(self) -> None:
        problems = []
        if not (_is_number(self.lr) and math.isfinite(self.lr) and self.lr > 0):
            problems.append(f"lr must be a positive finite number, got {self.lr!r}")
        if not (_is_number(self.alpha) and math.isfinite(self.alpha) and self.alpha > 0):
            problems.append(f"alpha must be a positive finite number, got {self.alpha!r}")
        if not (_is_int(self.steps) and self.steps >= 1):
            problems.append(f"steps must be an integer >= 1, got {self.steps!r}")
        if not (_is_int(self.batch_size) and self.batch_size >= 2 and self.batch_size % 2 == 0):
            problems.append(
                f"batch_size must be an even integer >= 2 (half forget, half retain), got {self.batch_size!r}"
            )
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer must be one of {list(OPTIMIZERS)}, got {self.optimizer!r}")
        if not (_is_number(self.weight_decay) and 0 <= self.weight_decay < math.inf):
            problems.append(f"weight_decay must be a finite number >= 0, got {self.weight_decay!r}")
        if self.grad_clip is not None and not (_is_number(self.grad_clip) and 0 < self.grad_clip < math.inf):
            problems.append(f"grad_clip must be None or a positive finite number, got {self.grad_clip!r}")
        if not (_is_int(self.seed) and self.seed >= 0):
            problems.append(f"seed must be an integer >= 0, got {self.seed!r}")
        if self.forget_target not in FORGET_TARGETS:
            problems.append(f"forget_target must be one of {list(FORGET_TARGETS)}, got {self.forget_target!r}")
        if not (_is_number(self.noise_share) and 0 <= self.noise_share <= 1):
            problems.append(f"noise_share must be a number in [0, 1], got {self.noise_share!r}")
        if not (_is_int(self.substitutes) and self.substitutes >= 1):
            problems.append(f"substitutes must be an integer >= 1, got {self.substitutes!r}")
        if problems:
            raise ValueError("invalid EncoderL2Config: " + "; ".join(problems))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EncoderL2Config:
        """From a JSON-like dict; unknown keys are a ValueError."""
        return dataclass_from_dict(cls, d)

    @classmethod
    def from_header(cls, d: Mapping[str, Any], base: EncoderL2Config | None = None) -> EncoderL2Config:
        """A checkpoint header's ``unlearn_defaults`` over ``base`` (default: the class defaults).

        Reads older headers too: ``max_steps`` is the step count, ``epochs`` is ignored.
        """
        return (base or cls()).replace(**upgrade_legacy(d))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> EncoderL2Config:
        """A copy with ``changes`` applied (validated again); unknown keys are a ValueError."""
        return dataclass_from_dict(type(self), {**self.to_dict(), **changes})


def upgrade_legacy(d: Mapping[str, Any]) -> dict[str, Any]:
    """``d`` with the keys of older configs translated (see LEGACY_RENAMED, LEGACY_DROPPED)."""
    out = {k: v for k, v in d.items() if k not in LEGACY_DROPPED and k not in LEGACY_RENAMED}
    for old, new in LEGACY_RENAMED.items():
        if old in d and new not in d and d[old] is not None:
            out[new] = d[old]
    return out


def recommended_config(family: str, model_config: Mapping[str, Any]) -> EncoderL2Config:
    """Recommended settings for a model of ``family`` with architecture ``model_config``.

    MAE: the demo's settings, lr scaled as 1/width above the demo's width (MAE_REFERENCE_WIDTH).
    A family in FAMILY_RECOMMENDED: its values over the class defaults. Any other family without a
    width rule, or a config without the width: the class defaults.
    """
    if family in FAMILY_RECOMMENDED:
        return EncoderL2Config().replace(**FAMILY_RECOMMENDED[family])
    width = model_config.get(WIDTH_KEYS.get(family, ""))
    if not _is_int(width) or width < 1:
        return EncoderL2Config()
    return EncoderL2Config(lr=scaled_lr(width))


def scaled_lr(width: int) -> float:
    raw = EncoderL2Config.lr * MAE_REFERENCE_WIDTH / width
    return float(f"{min(max(raw, LR_RANGE[0]), LR_RANGE[1]):.2g}")


def _is_number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)
