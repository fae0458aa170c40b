"""Erasure state of a model's lineage: which samples a model has forgotten, by which request and version."""

import uuid

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from service.db.base import utcnow
from service.db.models import Erasure, Model, Sample


def erased_from(model_id: int) -> ColumnElement[bool]:
    """True for a `Sample` row this model has forgotten (a correlated EXISTS)."""
    return select(Erasure.sample_id).where(Erasure.model_id == model_id, Erasure.sample_id == Sample.id).exists()


def pending_elsewhere() -> ColumnElement[bool]:
    """True for a `Sample` row that some model trained on its dataset has not forgotten yet."""
    forgotten = select(Erasure.sample_id).where(Erasure.model_id == Model.id, Erasure.sample_id == Sample.id).exists()
    return select(Model.id).where(Model.training_dataset_id == Sample.dataset_id, ~forgotten).exists()


def erased_ids(session: Session, *, model_id: int, sample_ids: list[int]) -> set[int]:
    found: set[int] = set()
    for start in range(0, len(sample_ids), 5000):
        chunk = sample_ids[start : start + 5000]
        query = select(Erasure.sample_id).where(Erasure.model_id == model_id, Erasure.sample_id.in_(chunk))
        found.update(session.scalars(query))
    return found


def record_erasures(session: Session, *, model_id: int, version_id: int, requests: dict[int, uuid.UUID]) -> int:
    """Mark each sample (id -> the request that asked for it) as forgotten by this model; returns the new marks.

    A sample forgotten again (two queued requests named it) keeps its first mark. The caller holds
    the model's row lock, so no other publication of this model races the insert.
    """
    already = erased_ids(session, model_id=model_id, sample_ids=list(requests))
    now = utcnow()
    session.add_all(
        Erasure(model_id=model_id, sample_id=s, request_id=r, version_id=version_id, erased_at=now)
        for s, r in requests.items() if s not in already
    )
    session.flush()
    return len(requests) - len(already)
