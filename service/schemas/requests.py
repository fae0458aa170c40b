"""Unlearn request bodies and views."""

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from service.db.enums import JobPhase, JobStatus, Method, Mode, RequestStatus
from service.schemas.common import AwareDatetime, Strict
from service.schemas.unlearn import METHOD_PARAMS, UnlearnOverrides

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
    due_at: AwareDatetime | None = Field(
        None,
        description="Legal deadline with its UTC offset (e.g. 2026-07-01T00:00:00Z): after receipt and no later "
        "than one month after it (GDPR Art. 12(3)); default one month after receipt. Extend it with "
        "POST /unlearn-requests/{id}/extension.",
    )
    config: UnlearnOverrides | None = Field(None, description="Per-request overrides of the model's unlearning defaults.")

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
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" if e["loc"] else e["msg"] for e in err.errors())
            raise ValueError(f"config.params do not fit method {self.method.value!r}: {problems}") from None
        self.config.params = checked.model_dump(exclude_unset=True)
        return self


class Progress(BaseModel):
    phase: JobPhase | None = Field(description="What the job is doing now; only `unlearning` advances `step`.")
    step: int = Field(description="Unlearning steps done (the teacher-target build and evaluation are not steps).")
    total: int
    steps_per_second: float | None = Field(description="Unlearning steps per second, measured by the worker so far.")
    losses: dict[str, float]


class JobSummary(BaseModel):
    id: uuid.UUID
    status: JobStatus
    base_version: int | None
    result_version: int | None
    attempts: int
    planned_steps: int | None = Field(
        description="Optimiser steps the job runs (its config's `steps`); null for a job recorded before budgets were explicit."
    )
    progress: Progress


class ExtensionView(BaseModel):
    original_due_at: datetime = Field(description="The due date before the extension.")
    extended_at: datetime
    extended_by: str = Field(description="The key that extended it (audit actor).")
    reason: str


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
    config: dict[str, Any] = Field(description="The request's own overrides, as submitted.")
    effective_config: dict[str, Any] = Field(
        description="What the job runs with: the model family's recommended settings, overridden by the model's "
        "`unlearn_defaults`, then by the request's `config`; `params` holds every parameter of the method."
    )
    planned_steps: int | None = Field(description="Optimiser steps the job runs (`effective_config.steps`).")
    received_at: datetime
    updated_at: datetime
    due_at: datetime
    finished_at: datetime | None
    result_version: int | None
    job: JobSummary | None
    extension: ExtensionView | None = Field(
        None, description="The one extension of the deadline (GDPR Art. 12(3)); null while not extended."
    )
    links: dict[str, str]


class RequestPage(BaseModel):
    items: list[RequestView]
    next_cursor: str | None = Field(description="Pass as `cursor` to get the next page; null on the last page.")


class Rejection(Strict):
    reason: Annotated[str, StringConstraints(min_length=1, max_length=2000)] = Field(description="Why the request is rejected.")



class Extension(Strict):
    months: Annotated[int, Field(ge=1, le=2, description="Further months (Art. 12(3) allows at most two).")] = 2
    reason: Annotated[str, StringConstraints(min_length=1, max_length=2000, strip_whitespace=True)] = Field(
        description="Why more time is necessary (complexity, number of requests); told to the data subject."
    )
