"""Unlearning settings: recommended per model, overridden by the model's defaults and each request.

The recommendation is the worker's (worker/unlearn/config.py ``recommended_config``), repeated here
because the service does not import the worker; tests/test_config_in_step.py keeps them equal.
"""

from typing import Any

from pydantic import ValidationError

from service.db.enums import Method
from service.db.models import Model
from service.schemas.unlearn import METHOD_PARAMS, UnlearnSettings

PARAMS_KEY = "params"

# Settings measured on the demo MAE (embed_dim 96): Adam, lr 1e-3, alpha 0.25, batch 64, 600 steps.
RECOMMENDED: dict[str, Any] = {
    "lr": 1e-3, "alpha": 0.25, "steps": 600, "batch_size": 64, "optimizer": "adam", "weight_decay": 0.0,
    "grad_clip": None, "seed": 0, "forget_target": "noise", "noise_share": 0.25, "substitutes": 4,
}  # fmt: skip
# The learning rate scales as 1/width above the demo's width (the muP rule for Adam), clamped to
# [1e-5, 1e-3] (1e-5: the paper's lr for a ViT-L on ImageNet). Family -> its width key in the config.
REFERENCE_WIDTH = 96
LR_RANGE = (1e-5, 1e-3)
WIDTH_KEYS = {"mae": "embed_dim"}
# Families with their own recommendation (worker/unlearn/config.py FAMILY_RECOMMENDED): keys over RECOMMENDED.
FAMILY_RECOMMENDED: dict[str, dict[str, Any]] = {"gan": {"lr": 2e-3, "alpha": 1.0, "steps": 400, "batch_size": 64}}

# Keys of older configs (the demo checkpoint's header, rows written before the budget was explicit).
LEGACY_RENAMED = {"max_steps": "steps"}
LEGACY_DROPPED = ("epochs",)


class InvalidSettings(ValueError):
    """Settings that do not fit the schema (the message lists every problem)."""


def recommended_defaults(*, family: str, adapter_config: dict[str, Any]) -> dict[str, Any]:
    """The recommended settings for a model of ``family`` with architecture ``adapter_config``."""
    if family in FAMILY_RECOMMENDED:
        return {**RECOMMENDED, **FAMILY_RECOMMENDED[family]}
    width = adapter_config.get(WIDTH_KEYS.get(family, ""))
    if not isinstance(width, int) or isinstance(width, bool) or width < 1:
        return dict(RECOMMENDED)
    raw = RECOMMENDED["lr"] * REFERENCE_WIDTH / width
    return {**RECOMMENDED, "lr": float(f"{min(max(raw, LR_RANGE[0]), LR_RANGE[1]):.2g}")}


def upgrade_legacy(*, settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` with the keys of older configs translated: max_steps -> steps, epochs dropped."""
    out = {k: v for k, v in settings.items() if k not in LEGACY_DROPPED and k not in LEGACY_RENAMED}
    for old, new in LEGACY_RENAMED.items():
        if old in settings and new not in settings and settings[old] is not None:
            out[new] = settings[old]
    return out


def header_defaults(*, header: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint header's ``unlearn_defaults``, older headers translated, checked like a model's defaults."""
    given = header.get("unlearn_defaults") or {}
    if not isinstance(given, dict):
        raise InvalidSettings("unlearn_defaults must be a JSON object")
    try:
        return UnlearnSettings.model_validate(upgrade_legacy(settings=given)).model_dump(exclude_unset=True)
    except ValidationError as exc:
        raise InvalidSettings("; ".join(f"{'.'.join(map(str, e['loc'])) or 'unlearn_defaults'}: {e['msg']}"
                                        for e in exc.errors())) from None


def model_settings(*, model: Model) -> dict[str, Any]:
    """Every shared setting of ``model``: its family's recommendation, overridden by its own defaults."""
    return {**recommended_defaults(family=model.family, adapter_config=model.adapter_config), **model.unlearn_defaults}


def effective_config(*, model: Model, method: Method, overrides: dict[str, Any]) -> dict[str, Any]:
    """Every setting a job runs with: recommended < model defaults < request overrides, plus all of
    the method's parameters (their defaults where the request gives none)."""
    shared = {k: v for k, v in overrides.items() if k != PARAMS_KEY}
    params = METHOD_PARAMS[method].model_validate(overrides.get(PARAMS_KEY) or {}).model_dump()
    return {**model_settings(model=model), **shared, PARAMS_KEY: params}


def planned_steps(*, config: dict[str, Any]) -> int | None:
    """The optimiser steps a job with ``config`` runs; None for a config without a step budget."""
    steps = config.get("steps")
    return steps if isinstance(steps, int) and not isinstance(steps, bool) else None
