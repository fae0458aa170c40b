"""Datasets, samples, models and versions."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from service.db.enums import DatasetKind, VersionStatus
from service.schemas.common import Strict
from service.schemas.unlearn import GateThresholds, UnlearnSettings

Name = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]


class DatasetCreate(Strict):
    name: Name
    kind: DatasetKind
    description: str = Field("", max_length=2000)

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "fmnist-train", "kind": "training", "description": "Fashion-MNIST"}]}
    )


class DatasetView(BaseModel):
    name: str
    kind: DatasetKind
    description: str
    sample_count: int
    classes: list[str]
    created_at: datetime


class SampleIn(Strict):
    sample_key: Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f]+$")]
    class_label: Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]+$")]
    uri: Annotated[str, StringConstraints(min_length=1, max_length=4096)]
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class SamplesAdd(Strict):
    samples: list[SampleIn] = Field(min_length=1, max_length=100_000)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "samples": [
                        {
                            "sample_key": "fmnist-train-00000",
                            "class_label": "ankle_boot",
                            "uri": "/srv/data/fmnist/train/00000.png",
                            "sha256": "0" * 64,
                        }
                    ]
                }
            ]
        }
    )


class SamplesAdded(BaseModel):
    dataset: str
    added: int
    unchanged: int
    sample_count: int


class ModelSpec(Strict):
    name: Name
    training_dataset: str
    proxy_dataset: str | None = None
    unlearn_defaults: UnlearnSettings = Field(
        default_factory=UnlearnSettings,
        description="Unlearning settings of this model; a key left out comes from the checkpoint header's "
        "`unlearn_defaults`, else from the family's recommendation.",
    )
    gate_thresholds: GateThresholds = Field(
        default_factory=GateThresholds, description="Publish-gate overrides; null disables a check (see README, Publish gate)."
    )


class VersionView(BaseModel):
    version: int
    parent_version: int | None
    status: VersionStatus
    checkpoint_digest: str
    size_bytes: int
    created_by_job: str | None
    absorbed_request_ids: list[str]
    metrics: dict[str, Any]
    problems: list[str] = Field(description="Why a worker rejected this checkpoint (status `rejected`).")
    created_at: datetime
    is_current: bool


ModelStatus = Literal["validating", "ready", "rejected"]


class ModelView(BaseModel):
    name: str
    family: str
    adapter_config: dict[str, Any]
    training_dataset: str
    proxy_dataset: str | None
    unlearn_defaults: dict[str, Any] = Field(description="Every setting a request against this model starts from.")
    gate_thresholds: dict[str, float | None] = Field(description="The model's overrides of the publish gate's defaults.")
    current_version: int | None
    status: ModelStatus = Field(
        description="`validating` until a worker has loaded and run the base checkpoint, then `ready` (or `rejected`)."
    )
    created_at: datetime
