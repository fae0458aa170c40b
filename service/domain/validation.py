"""A registered base checkpoint is checked by a worker before it can be used.

The API checks the file's structure (service.storage.checkpoints); only a worker has torch to load
it strictly into its family's adapter and run it. Version 1 is created `validating` with an outbox
task; the worker's verdict makes it `published` (and the model's current version) or `rejected`
with the problems it found. A rejected model is discarded so that its name can be registered again.
"""

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from service.audit.chain import record
from service.db.enums import VersionStatus
from service.db.models import Model, ModelVersion, OutboxMessage
from service.domain.webhooks import emit_version
from service.storage import ArtifactStore

VALIDATE_VERSION_TASK = "oblivio.validate_version"


def queue_validation(session: Session, *, version: ModelVersion) -> None:
    session.add(OutboxMessage(task_name=VALIDATE_VERSION_TASK, payload={"version_id": version.id}))
    session.flush()


def version_status(session: Session, *, version_id: int) -> VersionStatus | None:
    """The version's status now; None once it is gone (its rejected model was discarded)."""
    return session.scalar(select(ModelVersion.status).where(ModelVersion.id == version_id))


def model_status(session: Session, *, model: Model) -> str:
    """`ready` once a version is current; before that, `validating` or `rejected` by the base version's verdict."""
    if model.current_version is not None:
        return "ready"
    base = session.scalar(select(ModelVersion.status).where(ModelVersion.model_id == model.id, ModelVersion.version == 1))
    return "rejected" if base is VersionStatus.rejected else "validating"


def settle_validation(session: Session, *, version_id: int, problems: list[str], actor: str) -> ModelVersion | None:
    """Record a worker's verdict on a validating version; None when there is nothing to settle (a redelivery)."""
    version = session.scalar(select(ModelVersion).where(ModelVersion.id == version_id).with_for_update())
    if version is None or version.status is not VersionStatus.validating:
        return None
    model = session.get(Model, version.model_id)
    subject, data = f"model:{model.name}", {"version": version.version, "checkpoint_digest": version.checkpoint_digest}
    if problems:
        version.status, version.problems = VersionStatus.rejected, problems
        record(session, actor=actor, action="version.rejected", subject=subject, data={**data, "problems": problems})
    else:
        version.status = VersionStatus.published
        model.current_version = version.version
        record(session, actor=actor, action="version.validated", subject=subject, data=data)
        emit_version(session, event_type="version.published", model=model, version=version)
    session.flush()
    return version


def discard_rejected_model(session: Session, *, model: Model, store: ArtifactStore, actor: str) -> list[str]:
    """Remove a model whose base checkpoint was rejected, and its files unless another model uses them.

    Returns the problems the worker found; the audit log keeps the registration and the verdict.
    """
    versions = list(session.scalars(select(ModelVersion).where(ModelVersion.model_id == model.id)))
    problems = [p for v in versions for p in v.problems]
    digests = {v.checkpoint_digest for v in versions} | ({model.feature_net_digest} - {None})
    session.execute(delete(ModelVersion).where(ModelVersion.model_id == model.id))
    session.delete(model)
    session.flush()
    for digest in digests:
        if not _referenced(session, digest):
            store.delete(digest)
            store.delete_derived(digest)
    record(session, actor=actor, action="model.discarded", subject=f"model:{model.name}",
           data={"reason": "base checkpoint rejected", "problems": problems})
    return problems


def _referenced(session: Session, digest: str) -> bool:
    return (
        session.scalar(select(ModelVersion.id).where(ModelVersion.checkpoint_digest == digest).limit(1)) is not None
        or session.scalar(select(Model.id).where(Model.feature_net_digest == digest).limit(1)) is not None
    )
