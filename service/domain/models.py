"""Model registry: a model is a generator family plus its datasets; version 1 is its base checkpoint."""

from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from service.audit.chain import record
from service.db.enums import DatasetKind, VersionStatus
from service.db.models import Model, ModelVersion
from service.domain.datasets import get_dataset
from service.domain.families import known_families
from service.domain.unlearn_config import InvalidSettings, header_defaults, recommended_defaults
from service.domain.validation import discard_rejected_model, queue_validation
from service.errors import Conflict, NotFound, Unprocessable
from service.schemas.registry import ModelSpec
from service.storage import ArtifactStore
from service.storage.checkpoints import inspect_checkpoint, oblivio_problems


def get_model(session: Session, *, name: str) -> Model:
    model = session.scalar(
        select(Model)
        .where(Model.name == name)
        .options(joinedload(Model.training_dataset), joinedload(Model.proxy_dataset))
    )
    if model is None:
        raise NotFound(f"model '{name}' not found")
    return model


def list_models(session: Session) -> list[Model]:
    query = select(Model).order_by(Model.name).options(joinedload(Model.training_dataset), joinedload(Model.proxy_dataset))
    return list(session.scalars(query))


def register_model(
    session: Session, *, spec: ModelSpec, checkpoint: BinaryIO, features: BinaryIO | None, store: ArtifactStore, actor: str
) -> Model:
    """Record the model with version 1 `validating` and queue the worker's check; 422 lists every problem found here.

    Nothing is recorded when the files are refused. A model whose base checkpoint a worker rejected
    is discarded first, so its name can be registered again.
    """
    existing = session.scalar(select(Model).where(Model.name == spec.name))
    if existing is not None and not _rejected(session, existing):
        raise Conflict(f"model '{spec.name}' already exists")
    problems = []
    training = _dataset_or_problem(session, spec.training_dataset, DatasetKind.training, problems)
    proxy = _dataset_or_problem(session, spec.proxy_dataset, DatasetKind.proxy, problems) if spec.proxy_dataset else None
    header, checkpoint_problems = inspect_checkpoint(checkpoint)
    if header is not None:
        checkpoint_problems += oblivio_problems(header, families=known_families())
    recommended = {}
    if header is not None and not checkpoint_problems:
        try:
            recommended = header_defaults(header=header)
        except InvalidSettings as exc:
            checkpoint_problems.append(f"header unlearn_defaults: {exc}")
    problems += [{"field": "checkpoint", "problem": p} for p in checkpoint_problems]
    if features is not None:
        problems += [{"field": "features", "problem": p} for p in inspect_checkpoint(features)[1]]
    if problems:
        raise Unprocessable({"message": "model not registered", "items": problems})
    if existing is not None:
        discard_rejected_model(session, model=existing, store=store, actor=actor)
    checkpoint.seek(0)
    digest, size = store.put_stream(checkpoint)
    features_digest = None
    if features is not None:
        features.seek(0)
        features_digest, _ = store.put_stream(features)
    model = Model(
        name=spec.name,
        family=header["family"],
        adapter_config=header["config"],
        training_dataset_id=training.id,
        proxy_dataset_id=proxy.id if proxy else None,
        unlearn_defaults={
            **recommended_defaults(family=header["family"], adapter_config=header["config"]),
            **recommended,
            **spec.unlearn_defaults.model_dump(exclude_unset=True),
        },
        gate_thresholds=spec.gate_thresholds.model_dump(exclude_unset=True),
        feature_net_digest=features_digest,
        current_version=None,
    )
    session.add(model)
    session.flush()
    version = ModelVersion(model_id=model.id, version=1, checkpoint_digest=digest, size_bytes=size,
                           status=VersionStatus.validating)
    session.add(version)
    session.flush()
    queue_validation(session, version=version)
    record(session, actor=actor, action="model.registered", subject=f"model:{model.name}",
           data={"family": model.family, "version": 1, "checkpoint_digest": digest, "feature_net_digest": features_digest,
                 "training_dataset": spec.training_dataset, "proxy_dataset": spec.proxy_dataset, "status": "validating"})
    return get_model(session, name=spec.name)


def _rejected(session: Session, model: Model) -> bool:
    statuses = set(session.scalars(select(ModelVersion.status).where(ModelVersion.model_id == model.id)))
    return statuses == {VersionStatus.rejected}


def _dataset_or_problem(session: Session, name: str, kind: DatasetKind, problems: list) -> object:
    try:
        dataset = get_dataset(session, name=name)
    except NotFound:
        problems.append({"field": f"{kind.value}_dataset", "problem": f"dataset '{name}' not found"})
        return None
    if dataset.kind is not kind:
        problems.append({"field": f"{kind.value}_dataset", "problem": f"dataset '{name}' is a {dataset.kind.value} set"})
    return dataset
