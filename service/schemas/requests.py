"""Unlearn request bodies and views."""

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from service.db.enums import JobStatus, Method, Mode, RequestStatus
from service.schemas.common import Strict

SampleKey = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f]+$")]
ClassLabel = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]+$")]
MAX_LIST = 10_000


class RequestCreate(Strict):
    model: Annotated[str, StringConstraints(min_length=1, max_length=128)] = Field(
        description="Name of the registered model to make forget."
    )
    samples: list[SampleKey] = Field(
        default_factory=list, max_length=MAX_LIST, description="Sample keys of the model's training dataset."
    )
    classes: list[ClassLabel] = Field(default_factory=list, max_length=1000, description="Whole classes to forget.")
    mode: Mode = Field(Mode.retain_free, description="retain_free reads only forget samples and the proxy set.")
    method: Method = Field(Method.encoder_l2, description="Unlearning method.")
    external_id: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = Field(
        None, description="Caller's own id; unique per API key, makes retries safe."
    )
    due_at: datetime | None = Field(None, description="Legal deadline; default received + due_days.")
    config: "UnlearnOverrides | None" = Field(None, description="Per-request overrides of the model's unlearning defaults.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"model": "fmnist-mae", "classes": ["trouser"], "external_id": "dsr-2026-0042"},
                {"model": "fmnist-mae", "samples": ["fmnist-train-00017", "fmnist-train-00021"]},
                {"model": "fmnist-mae", "classes": ["bag"], "method": "gradient_surgery",
                 "config": {"params": {"forget_objective": "encoder_l2"}}},
            ]
        }
    )

    @model_validator(mode="after")
    def _params_fit_the_method(self) -> "RequestCreate":
        if self.config is None or self.config.params is None:
            return self
        schema = METHOD_PARAMS[self.method]
        try:
            checked = schema.model_validate(self.config.params)
        except ValidationError as err:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'params'}: {e['msg']}" for e in err.errors())
            known = list(schema.model_fields) or "none"
            raise ValueError(
                f"config.params do not fit method {self.method.value!r} ({problems}); its parameters: {known}"
            ) from None
        self.config.params = checked.model_dump(exclude_none=True)
        return self


class Progress(BaseModel):
    step: int
    total: int
    losses: dict[str, float]


class JobSummary(BaseModel):
    id: uuid.UUID
    status: JobStatus
    base_version: int | None
    result_version: int | None
    attempts: int
    progress: Progress


class RequestView(BaseModel):
    id: uuid.UUID
    external_id: str | None
    model: str
    status: RequestStatus
    reason: str | None
    reason_detail: str | None
    mode: Mode
    method: Method
    samples: list[str]
    classes: list[str]
    config: dict[str, Any]
    received_at: datetime
    updated_at: datetime
    due_at: datetime
    finished_at: datetime | None
    result_version: int | None
    job: JobSummary | None
    links: dict[str, str]


class RequestPage(BaseModel):
    items: list[RequestView]
    next_cursor: str | None = Field(description="Pass as `cursor` to get the next page; null on the last page.")


class Rejection(Strict):
    reason: Annotated[str, StringConstraints(min_length=1, max_length=2000)] = Field(description="Why the request is rejected.")


class NoParams(Strict):
    """A method without parameters of its own."""


class MaxLossParams(Strict):
    forget_bound: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="Cap on each forget row's ascended reconstruction error (a hinge)."
    )


class GradientSurgeryParams(Strict):
    forget_objective: Literal["encoder_l2", "max_loss"] = Field(
        "encoder_l2", description="Forget objective whose gradient is projected: encoder-L2 forget term or gradient ascent."
    )


# Per-method parameters; checked again by the worker's method registry.
METHOD_PARAMS: dict[Method, type[Strict]] = {
    Method.encoder_l2: NoParams,
    Method.max_loss: MaxLossParams,
    Method.noisy_label: NoParams,
    Method.retain_label: NoParams,
    Method.random_encoder: NoParams,
    Method.gradient_surgery: GradientSurgeryParams,
}


class UnlearnOverrides(Strict):
    """Per-request overrides of the model's unlearning defaults; checked again by the worker's config."""

    lr: float | None = Field(None, gt=0, le=1)
    alpha: float | None = Field(None, gt=0, le=100)
    epochs: int | None = Field(None, ge=1, le=100)
    batch_size: int | None = Field(None, ge=2, le=4096, multiple_of=2)
    optimizer: Literal["adam", "adamw"] | None = None
    weight_decay: float | None = Field(None, ge=0, le=1)
    grad_clip: float | None = Field(None, gt=0)
    seed: int | None = Field(None, ge=0, le=2**31 - 1)
    max_steps: int | None = Field(None, ge=1, le=1_000_000)
    forget_target: Literal["noise", "substitute", "mixture"] | None = Field(
        None,
        description="encoder-L2: what forget latents are pulled to: the teacher's latents of noise (the paper's), "
        "of the nearest proxy images (retain-free mode only), or a per-row mixture of both.",
    )
    noise_share: float | None = Field(None, ge=0, le=1, description="mixture: share of forget rows with noise targets")
    substitutes: int | None = Field(None, ge=1, le=64, description="nearest proxy images per forget image")
    params: dict[str, Any] | None = Field(
        None,
        description="Parameters of the request's `method`: max_loss takes forget_bound, gradient_surgery takes "
        "forget_objective; the other methods take none.",
    )


RequestCreate.model_rebuild()
