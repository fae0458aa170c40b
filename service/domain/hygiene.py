"""Erasure hygiene: superseded checkpoints still hold the forgotten data, so their files are purged
after a grace period; the purge is recorded and checked (the file is gone)."""

from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.audit.chain import record
from service.db.base import utcnow
from service.db.enums import VersionStatus
from service.db.models import Model, ModelVersion, Sample
from service.domain.erasures import pending_elsewhere
from service.domain.webhooks import emit_version
from service.storage import ArtifactStore
from service.storage.paths import SampleFiles, SamplePathError


def purge_superseded(session: Session, *, store: ArtifactStore, grace_seconds: int, actor: str) -> list[ModelVersion]:
    """Purge versions superseded longer than the grace period ago.

    A purged version is never served again (410), whatever the store holds. Its blob, and what was
    derived from it (teacher caches), is deleted once no live version of any model references it:
    blobs are content-addressed, so another model's base or a re-upload may share it.
    """
    cutoff = utcnow() - timedelta(seconds=grace_seconds)
    due = list(
        session.scalars(
            select(ModelVersion)
            .where(ModelVersion.status == VersionStatus.superseded, ModelVersion.superseded_at <= cutoff)
            .order_by(ModelVersion.id)
            .with_for_update(skip_locked=True)
        )
    )
    for version in due:
        version.status, version.purged_at = VersionStatus.purged, utcnow()
        session.flush()
        shared = _referenced(session, digest=version.checkpoint_digest)
        if not shared:
            store.delete(version.checkpoint_digest)
            store.delete_derived(version.checkpoint_digest)
        model = session.get(Model, version.model_id)
        record(session, actor=actor, action="version.purged", subject=f"model:{model.name}", data={
            "version": version.version, "checkpoint_digest": version.checkpoint_digest,
            "file_gone": not store.exists(version.checkpoint_digest), "shared_with_live_version": shared,
        })
        emit_version(session, event_type="version.purged", model=model, version=version)
    session.flush()
    return due


def _referenced(session: Session, *, digest: str) -> bool:
    """Whether a live (published or superseded, not purged) version of any model, or a feature net, uses this blob."""
    live = select(ModelVersion.id).where(
        ModelVersion.checkpoint_digest == digest, ModelVersion.status != VersionStatus.purged
    )
    return session.scalar(select(live.exists() | select(Model.id).where(Model.feature_net_digest == digest).exists()))


def delete_forget_files(session: Session, *, sample_ids: list[int], roots: list[Path], actor: str, job_id: str) -> int:
    """Delete the source files of erased samples (inside the data roots, never through a link); rows keep
    keys and hashes.

    A file stays while another model trained on its dataset has not forgotten it: that model must
    still be able to read it when asked to.
    """
    deleted = kept = 0
    with SampleFiles(roots) as files:
        for start in range(0, len(sample_ids), 5000):
            chunk = sample_ids[start : start + 5000]
            kept += session.scalar(select(func.count()).where(Sample.id.in_(chunk), pending_elsewhere()))
            for sample in session.scalars(select(Sample).where(Sample.id.in_(chunk), ~pending_elsewhere())):
                try:
                    deleted += files.remove(sample.uri)
                except SamplePathError:
                    continue
    record(session, actor=actor, action="samples.files_deleted", subject=f"job:{job_id}",
           data={"deleted": deleted, "kept_for_other_models": kept})
    session.flush()
    return deleted
