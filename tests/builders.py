"""Small builders for test data (no fixture piles)."""

import hashlib
import json
import struct
from pathlib import Path

from sqlalchemy.orm import Session

from service.db.enums import DatasetKind, Role
from service.domain.auth import create_api_key
from service.domain.datasets import add_samples, create_dataset
from service.schemas.registry import SampleIn


def header_only_checkpoint(family: str = "mae", config: dict | None = None, **extra) -> bytes:
    """A valid safetensors file with no tensors and an Oblivio header (enough for the API)."""
    oblivio = {"format": "oblivio.checkpoint/1", "family": family, "config": config or {"image_size": 16}, **extra}
    header = json.dumps({"__metadata__": {"oblivio": json.dumps(oblivio)}}).encode()
    return struct.pack("<Q", len(header)) + header


def make_key(session: Session, role: Role, name: str | None = None) -> str:
    return create_api_key(session, name=name or f"{role.value}-key", role=role)[1]


def write_samples(root: Path, prefix: str, classes: list[str], per_class: int) -> list[SampleIn]:
    """Files with distinct bytes under root, described as samples."""
    root.mkdir(parents=True, exist_ok=True)
    samples = []
    for label in classes:
        for i in range(per_class):
            key = f"{prefix}-{label}-{i:03d}"
            path = root / f"{key}.bin"
            path.write_bytes(key.encode())
            digest = hashlib.sha256(key.encode()).hexdigest()
            samples.append(SampleIn(sample_key=key, class_label=label, uri=str(path), sha256=digest))
    return samples


def make_dataset(session: Session, name: str, kind: DatasetKind, samples: list[SampleIn], roots: list[Path]):
    dataset = create_dataset(session, name=name, kind=kind, description="", actor="test")
    add_samples(session, dataset=dataset, samples=samples, roots=roots, actor="test")
    return dataset


def publish_job(session: Session, store, job_id, data: bytes):
    """Do what the worker does around a successful job (claim, publish `data` as the new version, erase), no torch."""
    import uuid

    from service.db.models import Model
    from service.domain.jobs import Claim, claim_job, complete_job, forget_samples, get_job
    from service.domain.versions import publish

    job_id = uuid.UUID(str(job_id))
    assert claim_job(session, job_id=job_id, owner="test-worker", lease_seconds=60) is Claim.claimed
    job = get_job(session, job_id=job_id)
    forget = forget_samples(session, job=job)
    digest = store.put(data)
    version = publish(session, model=session.get(Model, job.model_id), parent_version=job.base_version, job_id=job.id,
                      digest=digest, size=len(data), request_ids=[str(r.id) for r in job.requests], metrics={},
                      actor="test")
    complete_job(session, job=job, version=version, erased={s.id: owners[0] for s, owners in forget}, actor="test")
    session.commit()
    return version
