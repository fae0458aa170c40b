"""Datasets and their sample catalogues."""

from pathlib import Path

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from service.audit.canonical import digest
from service.audit.chain import record
from service.db.enums import DatasetKind
from service.db.models import Dataset, Sample
from service.errors import Conflict, NotFound, Unprocessable
from service.schemas.registry import SampleIn
from service.storage.paths import SampleFiles, SamplePathError


def get_dataset(session: Session, *, name: str) -> Dataset:
    dataset = session.scalar(select(Dataset).where(Dataset.name == name))
    if dataset is None:
        raise NotFound(f"dataset '{name}' not found")
    return dataset


def create_dataset(session: Session, *, name: str, kind: DatasetKind, description: str, actor: str) -> Dataset:
    if session.scalar(select(Dataset.id).where(Dataset.name == name)) is not None:
        raise Conflict(f"dataset '{name}' already exists")
    dataset = Dataset(name=name, kind=kind, description=description)
    session.add(dataset)
    session.flush()
    record(session, actor=actor, action="dataset.created", subject=f"dataset:{name}", data={"kind": kind.value})
    return dataset


def dataset_stats(session: Session, *, dataset: Dataset) -> tuple[int, list[str]]:
    count = session.scalar(select(func.count()).where(Sample.dataset_id == dataset.id)) or 0
    classes = session.scalars(
        select(Sample.class_label).where(Sample.dataset_id == dataset.id).distinct().order_by(Sample.class_label)
    )
    return count, list(classes)


def add_samples(
    session: Session, *, dataset: Dataset, samples: list[SampleIn], roots: list[Path], actor: str
) -> tuple[int, int]:
    """Register samples in bulk; a key already present with the same content is left alone.

    Every problem in the batch is reported at once and nothing is written if there is any.
    """
    problems: list[dict[str, str]] = []
    seen: set[str] = set()
    with SampleFiles(roots) as files:
        for s in samples:
            if s.sample_key in seen:
                problems.append({"sample_key": s.sample_key, "problem": "duplicate sample_key in this batch"})
            seen.add(s.sample_key)
            try:
                files.check(s.uri)
            except SamplePathError as exc:
                problems.append({"sample_key": s.sample_key, "problem": str(exc)})
    existing = _existing(session, dataset=dataset, keys=list(seen))
    fresh = []
    for s in samples:
        old = existing.get(s.sample_key)
        if old is None:
            fresh.append(s)
        elif (old.class_label, old.uri, old.sha256) != (s.class_label, s.uri, s.sha256):
            problems.append({"sample_key": s.sample_key, "problem": "already registered with different content"})
    if problems:
        raise Unprocessable({"message": f"{len(problems)} sample(s) refused; nothing was registered", "items": problems})
    if fresh:
        rows = [{"dataset_id": dataset.id, **s.model_dump()} for s in fresh]
        session.execute(insert(Sample), rows)
        batch = digest([[s.sample_key, s.class_label, s.sha256] for s in fresh])
        record(session, actor=actor, action="samples.registered", subject=f"dataset:{dataset.name}",
               data={"added": len(fresh), "batch_digest": batch})
    session.flush()
    return len(fresh), len(samples) - len(fresh)


def _existing(session: Session, *, dataset: Dataset, keys: list[str]) -> dict[str, Sample]:
    found: dict[str, Sample] = {}
    for start in range(0, len(keys), 5000):
        chunk = keys[start : start + 5000]
        rows = session.scalars(select(Sample).where(Sample.dataset_id == dataset.id, Sample.sample_key.in_(chunk)))
        found.update({row.sample_key: row for row in rows})
    return found
