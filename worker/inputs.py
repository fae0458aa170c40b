"""What a job reads, and the proof of it.

Retain-free mode reads the forget samples and the model's proxy set (minus the forget classes);
with_retain mode reads the training set minus the forget set instead of the proxy set. A slice of
the retain source is held out for evaluation, and proxy images of the forget samples' classes serve
as the never-trained reference. Every image load goes through a ReadLog, so the report states
what was read from which dataset, counted, not assumed.
"""

import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.audit.canonical import digest
from service.db.enums import Mode
from service.db.models import Dataset, Job, ModelVersion, Sample
from service.domain.erasures import erased_from
from service.domain.jobs import forget_classes, forget_samples
from service.storage.paths import SampleFiles, SamplePathError
from worker.gate import gate_thresholds
from worker.unlearn.data import SampleLoadError, SampleRecord, load_images


@dataclass(frozen=True)
class Part:
    dataset: str
    records: list[SampleRecord]

    @property
    def digest(self) -> str:
        return digest(sorted([r.sample_key, r.sha256] for r in self.records))


@dataclass(frozen=True)
class JobInputs:
    job_id: uuid.UUID
    model: str
    family: str
    attempt: int
    base_version: int
    base_digest: str
    feature_net_digest: str | None
    gate_overrides: dict
    mode: Mode
    method: str
    config: dict
    training_dataset: str
    forget: Part
    forget_requests: dict[int, uuid.UUID]  # sample id -> the first request that asked for it
    forget_classes: list[str]  # the classes forgotten whole (their held-out images get class evidence)
    forget_owners: dict[str, list[str]]  # sample_key -> ids of the requests that named it
    retain: Part
    holdout: Part
    reference: Part | None
    retain_manifest_digest: str
    request_ids: list[str]
    proxy: Part | None = None  # retain-free: the whole proxy set, what the teacher cache covers


@dataclass
class ReadLog:
    """Every sample whose bytes were read: (dataset, sample_key).

    Files are read through service.storage.paths: the stored URI is located again and the file opened
    below its data root without following links; a refusal is a SampleLoadError naming the sample.
    """

    roots: list[Path]
    entries: list[tuple[str, str]] = field(default_factory=list)

    def load(self, part: Part, image_shape: tuple[int, int, int]) -> torch.Tensor:
        if not part.records:
            return torch.empty(0, *image_shape)
        try:
            with SampleFiles(self.roots) as files:
                images = load_images(part.records, image_shape=image_shape, read=lambda r: _read(files, r))
        except SampleLoadError as exc:
            exc.dataset = part.dataset
            raise
        self.entries += [(part.dataset, r.sample_key) for r in part.records]
        return images

    def count(self, dataset: str, *, excluding: set[str] = frozenset()) -> int:
        return len({k for d, k in self.entries if d == dataset and k not in excluding})


def _read(files: SampleFiles, record: SampleRecord) -> bytes:
    """A sample's bytes under the data-root rule; a refusal names the sample and a generic cause only."""
    try:
        return files.read(record.uri)
    except SamplePathError as exc:
        raise SampleLoadError(record.sample_key, str(exc)) from None


def gather_inputs(session: Session, *, job: Job, retain_max: int, eval_max: int) -> JobInputs:
    model = job.model
    forget = forget_samples(session, job=job)
    classes = forget_classes(session, job=job)
    forget_ids = {s.id for s, _ in forget}
    seed = int(job.config.get("seed", 0))
    training = session.get(Dataset, model.training_dataset_id)
    proxy = session.get(Dataset, model.proxy_dataset_id) if model.proxy_dataset_id else None
    if job.mode is Mode.retain_free:
        source = proxy
        query = select(Sample).where(Sample.dataset_id == proxy.id)
    else:
        source = training
        query = select(Sample).where(Sample.dataset_id == training.id, ~erased_from(model.id))
    everything = list(session.scalars(query.order_by(Sample.id)))
    pool = [s for s in everything if s.id not in forget_ids and s.class_label not in classes]
    rng = random.Random(seed)
    holdout = rng.sample(pool, min(eval_max, len(pool) // 5))
    held = {s.id for s in holdout}
    retain = [s for s in pool if s.id not in held]
    if len(retain) > retain_max:
        retain = sorted(rng.sample(retain, retain_max), key=lambda s: s.id)
    reference = _reference(session, proxy=proxy, labels=Counter(s.class_label for s, _ in forget), eval_max=eval_max, rng=rng)
    base = session.scalar(
        select(ModelVersion).where(ModelVersion.model_id == job.model_id, ModelVersion.version == job.base_version)
    )
    owners = {s.sample_key: [str(r) for r in reqs] for s, reqs in forget}
    forget_records = [_record(s) for s, _ in forget]
    return JobInputs(
        job_id=job.id,
        model=model.name,
        family=model.family,
        attempt=job.attempts,
        base_version=base.version,
        base_digest=base.checkpoint_digest,
        feature_net_digest=model.feature_net_digest,
        gate_overrides=gate_thresholds(model.family, model.gate_thresholds),
        mode=job.mode,
        method=job.method.value,
        config=dict(job.config),
        training_dataset=training.name,
        forget=Part(training.name, forget_records),
        forget_requests={s.id: reqs[0] for s, reqs in forget},
        forget_classes=sorted(classes),
        forget_owners=owners,
        retain=Part(source.name, [_record(s) for s in retain]),
        holdout=Part(source.name, [_record(s) for s in holdout]),
        reference=reference,
        retain_manifest_digest=digest(sorted([s.sample_key, s.class_label, s.sha256] for s in everything)),
        request_ids=sorted({r for reqs in owners.values() for r in reqs}),
        proxy=Part(proxy.name, [_record(s) for s in everything]) if job.mode is Mode.retain_free else None,
    )


def _reference(session: Session, *, proxy: Dataset | None, labels: Counter, eval_max: int, rng: random.Random) -> Part | None:
    """Never-trained images of the forget samples' classes (the proxy set's, when it has them), in the
    forget set's class proportions, at least one per class: membership is compared within classes and
    a class forgotten whole is judged on its own images, so a uniform draw over the classes (6,000
    forget images of one class and 8 of seven others got 4 reference images of that class out of 64)
    would judge the bulk of the request on a handful of images. At most eval_max + one per class."""
    if proxy is None or not labels:
        return None
    rows = list(session.scalars(
        select(Sample).where(Sample.dataset_id == proxy.id, Sample.class_label.in_(sorted(labels))).order_by(Sample.id)
    ))
    if not rows:
        return None
    by_label: dict[str, list[Sample]] = {}
    for sample in rows:
        by_label.setdefault(sample.class_label, []).append(sample)
    return Part(proxy.name, [_record(s) for s in draw_in_mix(by_label, labels, eval_max, rng)])


def draw_in_mix(by_label: dict, mix: Counter, n: int, rng: random.Random) -> list:
    """About ``n`` items of ``by_label`` (label -> candidates) in the proportions of ``mix`` (label ->
    count), at least one per label that has candidates; labels in sorted order, each a seeded sample."""
    total = sum(mix[label] for label in by_label)
    picked = []
    for label in sorted(by_label):
        quota = max(1, round(n * mix[label] / total))
        picked += rng.sample(by_label[label], min(quota, len(by_label[label])))
    return picked


def _record(sample: Sample) -> SampleRecord:
    return SampleRecord(sample_key=sample.sample_key, class_label=sample.class_label, uri=sample.uri, sha256=sample.sha256)
