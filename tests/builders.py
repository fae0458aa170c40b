"""Small builders for test data (no fixture piles)."""

import hashlib
import json
import struct
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.enums import DatasetKind, Role
from service.db.models import Model, ModelVersion
from service.domain.auth import create_api_key
from service.domain.datasets import add_samples, create_dataset
from service.domain.validation import settle_validation
from service.schemas.registry import SampleIn


def safetensors_file(tensors: dict[str, tuple[str, list[int], bytes]], metadata: dict[str, str] | None = None,
                     offsets: dict[str, list[int]] | None = None) -> bytes:
    """A safetensors file from {name: (dtype, shape, raw bytes)}; `offsets` overrides the computed data_offsets."""
    header: dict = {"__metadata__": metadata} if metadata is not None else {}
    data, position = b"", 0
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": (offsets or {}).get(name, [position, position + len(raw)])}
        data, position = data + raw, position + len(raw)
    encoded = json.dumps(header).encode()
    return struct.pack("<Q", len(encoded)) + encoded + data


def oblivio_metadata(family: str = "mae", config: dict | None = None, **extra) -> dict[str, str]:
    oblivio = {"format": "oblivio-checkpoint/1", "family": family, "config": {"image_size": 16} if config is None else config,
               **extra}
    return {"oblivio": json.dumps(oblivio)}


def tiny_checkpoint(family: str = "mae", config: dict | None = None, **extra) -> bytes:
    """A complete, self-consistent checkpoint (two small float32 tensors): passes the API's structural check.

    Only a worker can tell whether the tensors fit the family; API tests without one settle the
    verdict with `validate_model`.
    """
    tensors = {"cls_token": ("F32", [1, 1, 4], struct.pack("<4f", 0.1, 0.2, 0.3, 0.4)),
               "norm.weight": ("F32", [4], struct.pack("<4f", 1, 1, 1, 1))}
    return safetensors_file(tensors, oblivio_metadata(family, config, **extra))


def validate_model(session: Session, name: str, problems: list[str] | None = None) -> None:
    """Record a worker's verdict on the model's version 1 (what the worker does after loading and running it)."""
    version = session.scalar(select(ModelVersion).join(Model).where(Model.name == name, ModelVersion.version == 1))
    settle_validation(session, version_id=version.id, problems=problems or [], actor="test")


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
