"""Model registry: a model is a generator family plus its datasets; version 1 is its base checkpoint."""

from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from service.audit.chain import record
from service.db.enums import DatasetKind
from service.db.models import Model, ModelVersion
from service.domain.datasets import get_dataset
from service.domain.unlearn_config import InvalidSettings, header_defaults, recommended_defaults
from service.errors import Conflict, NotFound, Unprocessable
from service.schemas.registry import ModelSpec
from service.storage import ArtifactStore
from service.storage.checkpoints import CheckpointFormatError, read_checkpoint_header


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
    if session.scalar(select(Model.id).where(Model.name == spec.name)) is not None:
        raise Conflict(f"model '{spec.name}' already exists")
    problems = []
    training = _dataset_or_problem(session, spec.training_dataset, DatasetKind.training, problems)
    proxy = _dataset_or_problem(session, spec.proxy_dataset, DatasetKind.proxy, problems) if spec.proxy_dataset else None
    try:
        header = read_checkpoint_header(checkpoint)
        recommended = header_defaults(header=header)
    except CheckpointFormatError as exc:
        problems.append({"field": "checkpoint", "problem": str(exc)})
    except InvalidSettings as exc:
        problems.append({"field": "checkpoint", "problem": f"header unlearn_defaults: {exc}"})
    if features is not None:
        try:
            read_checkpoint_header(features, require_family=False)
        except CheckpointFormatError as exc:
            problems.append({"field": "features", "problem": str(exc)})
    if problems:
        raise Unprocessable({"message": "model not registered", "items": problems})
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
        current_version=1,
    )
    session.add(model)
    session.flush()
    session.add(ModelVersion(model_id=model.id, version=1, checkpoint_digest=digest, size_bytes=size))
    session.flush()
    record(session, actor=actor, action="model.registered", subject=f"model:{model.name}",
           data={"family": model.family, "version": 1, "checkpoint_digest": digest, "feature_net_digest": features_digest,
                 "training_dataset": spec.training_dataset, "proxy_dataset": spec.proxy_dataset})
    return get_model(session, name=spec.name)


def _dataset_or_problem(session: Session, name: str, kind: DatasetKind, problems: list) -> object:
    try:
        dataset = get_dataset(session, name=name)
    except NotFound:
        problems.append({"field": f"{kind.value}_dataset", "problem": f"dataset '{name}' not found"})
        return None
    if dataset.kind is not kind:
        problems.append({"field": f"{kind.value}_dataset", "problem": f"dataset '{name}' is a {dataset.kind.value} set"})
    return dataset
