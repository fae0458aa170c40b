"""What a job reads: the forget samples of its requests, and the retain-side samples of its mode.

Retain-free mode reads the model's proxy set minus the forget classes; with_retain mode reads the
training set minus the forget set. Every sample read is listed, so the report can prove which
data the job touched.
"""

import random
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.enums import Mode
from service.db.models import Job, ModelVersion, Sample
from service.domain.jobs import forget_classes, forget_samples
from worker.unlearn.data import SampleRecord


@dataclass(frozen=True)
class JobInputs:
    job_id: uuid.UUID
    family: str
    base_version: int
    base_digest: str
    mode: Mode
    config: dict
    forget: list[SampleRecord]
    forget_sample_ids: list[int]
    forget_owners: dict[str, list[str]]  # sample_key -> request ids that named it
    retain: list[SampleRecord]
    retain_source: str
    request_ids: list[str]


def gather_inputs(session: Session, *, job: Job, retain_max: int) -> JobInputs:
    forget = forget_samples(session, job=job)
    classes = forget_classes(session, job=job)
    forget_ids = {s.id for s, _ in forget}
    if job.mode is Mode.retain_free:
        dataset_id, source = job.model.proxy_dataset_id, "proxy"
        query = select(Sample).where(Sample.dataset_id == dataset_id)
    else:
        dataset_id, source = job.model.training_dataset_id, "training"
        query = select(Sample).where(Sample.dataset_id == dataset_id, Sample.erased_at.is_(None))
    if classes:
        query = query.where(Sample.class_label.not_in(classes))
    retain = [s for s in session.scalars(query.order_by(Sample.id)) if s.id not in forget_ids]
    seed = int(job.config.get("seed", 0))
    if len(retain) > retain_max:
        retain = sorted(random.Random(seed).sample(retain, retain_max), key=lambda s: s.id)
    base = session.scalar(
        select(ModelVersion).where(ModelVersion.model_id == job.model_id, ModelVersion.version == job.base_version)
    )
    owners = {s.sample_key: [str(r) for r in reqs] for s, reqs in forget}
    return JobInputs(
        job_id=job.id,
        family=job.model.family,
        base_version=base.version,
        base_digest=base.checkpoint_digest,
        mode=job.mode,
        config=dict(job.config),
        forget=[_record(s) for s, _ in forget],
        forget_sample_ids=sorted(forget_ids),
        forget_owners=owners,
        retain=[_record(s) for s in retain],
        retain_source=source,
        request_ids=sorted({r for reqs in owners.values() for r in reqs}),
    )


def _record(sample: Sample) -> SampleRecord:
    return SampleRecord(sample_key=sample.sample_key, class_label=sample.class_label, uri=sample.uri, sha256=sample.sha256)
