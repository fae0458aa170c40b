"""Validate a registered base checkpoint: load it strictly into its family's adapter and run it once.

The API has already checked the file's structure; it waits for this verdict (service.domain.validation).
"""

import logging

from service.db.enums import VersionStatus
from service.db.models import ModelVersion
from service.domain.validation import settle_validation
from service.storage import ArtifactDamaged
from worker.pipeline import WorkerContext
from worker.unlearn.checkpoint import checkpoint_problems

log = logging.getLogger("oblivio.validation")


def validate_version(ctx: WorkerContext, version_id: int) -> str:
    """'published' or 'rejected'; 'skipped' when the version is gone or already settled (a redelivery)."""
    with ctx.sessions() as session:
        version = session.get(ModelVersion, version_id)
        if version is None or version.status is not VersionStatus.validating:
            return "skipped"
        digest = version.checkpoint_digest
    try:
        problems = checkpoint_problems(ctx.store.get(digest))
    except OSError as exc:
        problems = [f"checkpoint file cannot be read from the store: {exc}"]
    except ArtifactDamaged as exc:
        problems = [str(exc)]
    with ctx.sessions.begin() as session:
        settled = settle_validation(session, version_id=version_id, problems=problems, actor=ctx.actor)
    if settled is None:
        return "skipped"
    log.info("version id %s %s", version_id, settled.status.value, extra={"problems": problems})
    return settled.status.value
