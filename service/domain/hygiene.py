"""Erasure hygiene: superseded checkpoints still hold the forgotten data, so their files are purged
after a grace period; the purge is recorded and checked (the file is gone)."""

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.audit.chain import record
from service.db.base import utcnow
from service.db.enums import VersionStatus
from service.db.models import Model, ModelVersion, Sample
from service.storage import ArtifactStore
from service.storage.paths import SampleFiles, SamplePathError


def purge_superseded(session: Session, *, store: ArtifactStore, grace_seconds: int, actor: str) -> list[ModelVersion]:
    """Delete checkpoint files (and what was derived from them) of versions superseded longer than the grace period ago."""
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
        still_used = session.scalar(
            select(ModelVersion.id).where(
                ModelVersion.checkpoint_digest == version.checkpoint_digest,
                ModelVersion.status == VersionStatus.published,
            )
        )
        if still_used is None:
            store.delete(version.checkpoint_digest)
            store.delete_derived(version.checkpoint_digest)
        gone = not store.exists(version.checkpoint_digest)
        version.status, version.purged_at = VersionStatus.purged, utcnow()
        model = session.get(Model, version.model_id)
        record(session, actor=actor, action="version.purged", subject=f"model:{model.name}", data={
            "version": version.version, "checkpoint_digest": version.checkpoint_digest, "file_gone": gone,
            "shared_with_published_version": still_used is not None,
        })
    session.flush()
    return due


def delete_forget_files(session: Session, *, sample_ids: list[int], roots: list[Path], actor: str, job_id: str) -> int:
    """Delete erased samples' source files (inside the data roots, never through a link); rows keep keys and hashes."""
    deleted = 0
    with SampleFiles(roots) as files:
        for start in range(0, len(sample_ids), 5000):
            for sample in session.scalars(select(Sample).where(Sample.id.in_(sample_ids[start : start + 5000]))):
                try:
                    deleted += files.remove(sample.uri)
                except SamplePathError:
                    continue
    record(session, actor=actor, action="samples.files_deleted", subject=f"job:{job_id}", data={"deleted": deleted})
    session.flush()
    return deleted
