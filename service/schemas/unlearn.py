"""One strict schema for unlearning settings (a model's defaults, a request's overrides) and gate thresholds.

Unknown keys are refused with the known ones listed; numbers must be JSON numbers (no bools, no
strings), finite and in range. The worker checks the settings again (worker/unlearn/config.py);
tests/test_config_in_step.py keeps the keys, defaults and method parameters of both in step.
"""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator
from pydantic_core import PydanticCustomError

from service.db.enums import Method

MAX_STEPS = 10_000  # about 17x the recommended 600: room for a large model, not for a runaway job
MAX_BATCH = 1024
_SHOWN_KEYS = 20  # unknown keys named in one error; the rest are counted
_KEY_CHARS = 64

LEGACY_HINTS = {
    "max_steps": "renamed 'steps': the number of optimiser steps the job runs",
    "epochs": "removed: give the budget as 'steps' (optimiser steps)",
}


def unknown_keys_message(unknown: list[Any], known: list[str]) -> str:
    shown = [str(k)[:_KEY_CHARS] for k in unknown[:_SHOWN_KEYS]]
    more = f" and {len(unknown) - len(shown)} more" if len(unknown) > len(shown) else ""
    hints = "".join(f"; {k}: {LEGACY_HINTS[k]}" for k in shown if k in LEGACY_HINTS)
    return f"unknown key(s) {shown}{more}{hints}; known keys: {known or 'none'}"


class Closed(BaseModel):
    """A strict object: unknown keys name themselves and the known ones; no type coercion."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _known_keys_only(cls, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = [k for k in data if k not in cls.model_fields]
            if unknown:
                message = unknown_keys_message(unknown, list(cls.model_fields))
                raise PydanticCustomError("unknown_keys", "{message}", {"message": message})
        return data


class UnlearnSettings(Closed):
    """Settings shared by every method; a key left out keeps the value below it (request -> model -> family).

    Only the keys given are recorded (``model_dump(exclude_unset=True)``); ``grad_clip`` null means no clipping.
    """

    lr: float = Field(None, gt=0, le=1, description="Learning rate (Adam/AdamW).")
    alpha: float = Field(None, gt=0, le=100, description="Weight of the forget term.")
    steps: int = Field(None, ge=1, le=MAX_STEPS, description="Optimiser steps the job runs (the budget).")
    batch_size: int = Field(None, ge=2, le=MAX_BATCH, multiple_of=2, description="Rows per step: half forget, half retain.")
    optimizer: Literal["adam", "adamw"] = Field(None, description="Optimiser.")
    weight_decay: float = Field(None, ge=0, le=1, description="Weight decay.")
    grad_clip: float | None = Field(None, gt=0, le=1e6, description="Gradient-norm clip; null: none.")
    seed: int = Field(None, ge=0, le=2**31 - 1, description="Seed of every random draw of the run.")
    forget_target: Literal["noise", "substitute", "mixture"] = Field(
        None,
        description="encoder-L2: what forget latents are pulled to: the teacher's latents of noise (the paper's), of "
        "the nearest proxy images (retain-free mode only), or a per-row mixture of both.",
    )
    noise_share: float = Field(None, ge=0, le=1, description="mixture: share of forget rows with noise targets.")
    substitutes: int = Field(None, ge=1, le=64, description="Nearest proxy images per forget image.")


class NoParams(Closed):
    """A method without parameters of its own."""


class MaxLossParams(Closed):
    forget_bound: float | None = Field(
        None, gt=0, le=1e6, description="Cap on each forget row's ascended reconstruction error (a hinge); null: none."
    )


class GradientSurgeryParams(Closed):
    forget_objective: Literal["encoder_l2", "max_loss"] = Field(
        "encoder_l2", description="Forget objective whose gradient is projected: encoder-L2 forget term or gradient ascent."
    )


class GanCascadeParams(Closed):
    """gan_cascade (samplers only; worker/unlearn/families/gan/cascade.py GanCascadeParams)."""

    rounds: int = Field(4, ge=1, le=100, description="Unlearning + learning stage pairs the step budget is split into.")
    unlearn_share: float = Field(0.5, gt=0, le=1, description="Share of each round's steps in the unlearning stage.")
    fake_label: float | None = Field(
        None, ge=0, le=1, description="Discriminator target (probability) for the forget images; null: the base "
        "discriminator's mean output on the base generator's samples.")
    learning_data: Literal["generated", "retain"] = Field(
        "generated", description="Learning-stage real images: the base generator's samples away from the forget set "
        "(retain-free) or the job's retain images.")
    pool: int = Field(2048, ge=64, le=65536, description="Base-generator samples drawn for substitutes and learning.")
    exclude_share: float = Field(0.2, gt=0, lt=1, description="At most this share of the pool counts as forget-like.")


# Per-method parameters; checked again by the worker's method registry.
METHOD_PARAMS: dict[Method, type[Closed]] = {
    Method.encoder_l2: NoParams,
    Method.max_loss: MaxLossParams,
    Method.noisy_label: NoParams,
    Method.retain_label: NoParams,
    Method.random_encoder: NoParams,
    Method.gradient_surgery: GradientSurgeryParams,
    Method.gan_cascade: GanCascadeParams,
}


class UnlearnOverrides(UnlearnSettings):
    """A request's overrides of its model's settings, plus the parameters of the request's method."""

    params: dict[str, Any] = Field(
        None,
        description="Parameters of the request's `method`: max_loss takes forget_bound, gradient_surgery takes "
        "forget_objective; gan_cascade takes rounds, unlearn_share, fake_label, learning_data, pool, "
        "exclude_share; the other methods take none.",
    )


# The publish gate's checks (worker/evaluation.py DEFAULT_GATE): name -> what its threshold means.
GATE_CHECKS: dict[str, str] = {  # names and texts as in worker/gate.py (tests/test_config_in_step.py)
    "retain_max_psnr_drop": "retain hold-out PSNR (dB, mean over tasks) may drop by at most this much",
    "retain_max_cosine_drop": "retain hold-out feature cosine may drop by at most this much",
    "forget_min_cosine_drop": "forget-set feature cosine must drop by at least this much",
    "forget_min_psnr_drop": "forget-set PSNR (dB, mean over tasks) must drop by at least this much",
    "forget_max_cosine_over_reference": (
        "after unlearning, forget-set cosine may exceed the never-seen reference's by at most this "
        "much"
    ),
    "mia_max_auc_above_chance": (
        "membership attack AUC (raw, forget vs never-seen) may exceed 0.5 by at most delta: the "
        "forget images no longer look like training data"
    ),
    "mia_max_auc_below_chance": (
        "membership attack AUC may fall below 0.5 by at most delta: the forget images do not look "
        "conspicuously worse than never-seen ones"
    ),
    "class_max_recognition_over_reference": (
        "the feature network may recognise a forgotten class in the outputs for held-out images of "
        "it at most this much more often than from the visible pixels alone (max over mask kinds)"
    ),
    # samplers (GANs): worker/sampler_gate.py SAMPLER_CHECKS
    "sampler_class_max_share_ratio": (
        "GANs: the share of generated samples assigned to a forgotten class may be at most this fraction of the "
        "base's share"
    ),
    "sampler_mia_max_auc_above_chance": (
        "GANs: nearest-neighbour membership AUC (forget vs never-seen images, distance to the closest generated "
        "sample) may exceed 0.5 by at most delta"
    ),
    "sampler_mia_max_auc_below_chance": (
        "GANs: nearest-neighbour membership AUC may fall below min(0.5, the base's AUC) by at most delta: the forget "
        "images are not conspicuously far from what the model generates"
    ),
    "sampler_retain_max_frechet_increase": (
        "GANs: the retained classes' Fréchet distance (classifier features, samples vs retain hold-out) may grow "
        "by at most this fraction of the base's"
    ),
}

Threshold = Annotated[float | None, Field(ge=-1e6, le=1e6)]

GateThresholds = create_model(
    "GateThresholds",
    __base__=Closed,
    __doc__="Per-model overrides of the publish gate's thresholds; a finite number, or null to disable the check.",
    **{name: (Threshold, Field(None, description=text)) for name, text in GATE_CHECKS.items()},
)
