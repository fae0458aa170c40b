"""Model versions: listing, resolving `current`, download rights, promotion, and publication by a job."""

import re
import uuid

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.audit.chain import record
from service.db.base import utcnow
from service.db.enums import Role, VersionStatus
from service.db.models import ApiKey, Model, ModelVersion
from service.domain.auth import actor_of
from service.domain.webhooks import emit_version, notify_holders, record_download
from service.errors import Conflict, Forbidden, Gone, NotFound

_VERSION_NUMBER = re.compile(r"[0-9]{1,9}", re.ASCII)  # not str.isdigit: '²' and '١' are digits to it


_NOT_PROMOTABLE = {
    VersionStatus.validating: "a worker has not checked its checkpoint yet",
    VersionStatus.rejected: "a worker rejected its checkpoint",
    VersionStatus.superseded: "it predates an erasure and may never be current again",
    VersionStatus.purged: "it predates an erasure and may never be current again",
}


def list_versions(session: Session, *, model: Model) -> list[ModelVersion]:
    return list(session.scalars(select(ModelVersion).where(ModelVersion.model_id == model.id).order_by(ModelVersion.version)))


def get_version(session: Session, *, model: Model, ref: str) -> ModelVersion:
    """`ref` is a version number or the alias 'current'."""
    if ref == "current":
        number = model.current_version
    elif _VERSION_NUMBER.fullmatch(ref):
        number = int(ref)
    else:
        raise NotFound(f"version '{ref}' of model '{model.name}' not found (use a number or 'current')")
    version = session.scalar(
        select(ModelVersion).where(ModelVersion.model_id == model.id, ModelVersion.version == number)
    )
    if version is None:
        raise NotFound(f"version '{ref}' of model '{model.name}' not found")
    return version


def downloadable(session: Session, *, model: Model, ref: str, key: ApiKey) -> ModelVersion:
    """The version whose checkpoint this caller may download; every download is recorded.

    A purged version is gone (410) whatever the store still holds; a superseded one predates an
    erasure and is for admins only until it is purged. The download is kept per key: its holders are
    told to delete their copy when the version is superseded (service.domain.webhooks).
    """
    version = get_version(session, model=model, ref=ref)
    if version.status is VersionStatus.validating:
        raise Conflict(f"version {version.version} of model '{model.name}' is still being validated by a worker")
    if version.status is VersionStatus.rejected:
        raise Gone(f"version {version.version} of model '{model.name}' was rejected: {'; '.join(version.problems)}")
    if version.status is VersionStatus.purged:
        raise Gone(f"version {version.version} of model '{model.name}' predates an erasure and was purged "
                   f"on {version.purged_at:%Y-%m-%d}; it is no longer served")
    if version.status is VersionStatus.superseded and key.role is not Role.admin:
        raise Forbidden(f"version {version.version} of model '{model.name}' predates an erasure (superseded); "
                        "until it is purged only an admin may download it")
    record_download(session, key=key, version=version)
    record(session, actor=actor_of(key), action="checkpoint.downloaded", subject=f"model:{model.name}",
           data={"version": version.version, "checkpoint_digest": version.checkpoint_digest,
                 "status": version.status.value})
    return version


def promote(session: Session, *, model: Model, ref: str, actor: str) -> ModelVersion:
    version = get_version(session, model=model, ref=ref)
    if version.status is not VersionStatus.published:
        raise Conflict(f"version {version.version} is {version.status.value}: {_NOT_PROMOTABLE[version.status]}")
    previous, model.current_version = model.current_version, version.version
    session.flush()
    record(session, actor=actor, action="version.promoted", subject=f"model:{model.name}",
           data={"from": previous, "to": version.version})
    return version


def publish(
    session: Session,
    *,
    model: Model,
    parent_version: int,
    job_id: uuid.UUID,
    digest: str,
    size: int,
    request_ids: list[str],
    metrics: dict,
    actor: str,
) -> ModelVersion:
    """Create version n+1, supersede every earlier version and move `current`.

    Unique constraints on (model, version) and (created_by_job) make a second publication of the
    same job, or a racing one, fail instead of producing two versions.
    """
    latest = session.scalar(
        select(ModelVersion.version).where(ModelVersion.model_id == model.id).order_by(ModelVersion.version.desc()).limit(1)
    )
    version = ModelVersion(
        model_id=model.id,
        version=(latest or 0) + 1,
        parent_version=parent_version,
        checkpoint_digest=digest,
        size_bytes=size,
        created_by_job_id=job_id,
        absorbed_request_ids=request_ids,
        metrics=metrics,
    )
    session.add(version)
    session.flush()
    superseded = list(
        session.scalars(
            update(ModelVersion)
            .where(ModelVersion.model_id == model.id, ModelVersion.version < version.version)
            .where(ModelVersion.status == VersionStatus.published)
            .values(status=VersionStatus.superseded, superseded_at=utcnow())
            .returning(ModelVersion.id)
        )
    )
    superseded_rows = list(session.scalars(
        select(ModelVersion).where(ModelVersion.id.in_(superseded)).order_by(ModelVersion.version)
        .execution_options(populate_existing=True)
    )) if superseded else []
    model.current_version = version.version
    session.flush()
    record(session, actor=actor, action="version.published", subject=f"model:{model.name}",
           data={"version": version.version, "parent_version": parent_version, "checkpoint_digest": digest,
                 "job_id": str(job_id), "request_ids": request_ids,
                 "superseded": [v.version for v in superseded_rows]})
    emit_version(session, event_type="version.published", model=model, version=version)
    notify_holders(session, model=model, superseded=superseded_rows, by_version=version.version, actor=actor)
    return version
