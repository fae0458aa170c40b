"""Job lifecycle as the worker drives it: claim under a lease, heartbeat, finish.

Each function runs inside the caller's transaction; the worker commits after each call.
"""

import uuid
from datetime import timedelta
from enum import StrEnum

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, joinedload, selectinload

from service.audit.chain import record
from service.db.base import utcnow
from service.db.enums import FailureReason, JobPhase, JobStatus, RequestStatus
from service.db.models import Job, Model, ModelVersion, OutboxMessage, RequestSample, Sample, UnlearnRequest
from service.errors import NotFound

_HISTORY_POINTS = 200


class Claim(StrEnum):
    claimed = "claimed"
    finished = "finished"  # terminal already: a redelivery or duplicate message
    held = "held"  # another worker holds a live lease
    model_busy = "model_busy"  # another job of this model is running or older and due; retry later
    too_early = "too_early"  # its batching window is still open


def get_job(session: Session, *, job_id: uuid.UUID) -> Job:
    job = session.scalar(
        select(Job)
        .where(Job.id == job_id)
        .options(joinedload(Job.model), selectinload(Job.requests).selectinload(UnlearnRequest.samples))
    )
    if job is None:
        raise NotFound(f"job {job_id} not found")
    return job


def claim_job(session: Session, *, job_id: uuid.UUID, owner: str, lease_seconds: int) -> Claim:
    now = utcnow()
    model_id = session.scalar(select(Job.model_id).where(Job.id == job_id))
    if model_id is None:
        raise NotFound(f"job {job_id} not found")
    # Lock the model row first: claims of one model are serialised, so two jobs never share a base.
    model = session.scalar(select(Model).where(Model.id == model_id).with_for_update())
    job = session.scalar(select(Job).where(Job.id == job_id).with_for_update())
    if job.status in (JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled):
        return Claim.finished
    if job.status is JobStatus.running and job.lease_expires_at and job.lease_expires_at > now and job.lease_owner != owner:
        return Claim.held
    if job.status is JobStatus.queued and job.not_before is not None and job.not_before > now:
        return Claim.too_early
    # Jobs of one model run one at a time, oldest first: each starts from the version current then.
    ahead = session.scalar(
        select(func.count()).where(
            Job.model_id == model_id,
            Job.id != job_id,
            or_(
                and_(Job.status == JobStatus.running, Job.lease_expires_at > now),
                and_(Job.status == JobStatus.queued, Job.created_at < job.created_at, Job.not_before <= now),
            ),
        )
    )
    if ahead:
        return Claim.model_busy
    job.status = JobStatus.running
    job.lease_owner = owner
    job.lease_expires_at = now + timedelta(seconds=lease_seconds)
    job.attempts += 1
    job.started_at = now
    job.base_version = model.current_version
    job.progress_step, job.progress_total, job.losses, job.loss_history, job.error = 0, 0, {}, [], None
    job.progress_phase, job.progress_rate = JobPhase.loading, None
    actor = f"worker:{owner}"
    record(session, actor=actor, action="job.started", subject=f"job:{job.id}",
           data={"attempt": job.attempts, "base_version": job.base_version})
    for request in _live_requests(session, job_id=job_id):
        if request.status is not RequestStatus.running:
            request.status = RequestStatus.running
            record(session, actor=actor, action="request.running", subject=f"request:{request.id}", data={"job_id": str(job.id)})
    session.flush()
    return Claim.claimed


def heartbeat(
    session: Session, *, job_id: uuid.UUID, owner: str, lease_seconds: int, phase: JobPhase, step: int, total: int,
    rate: float | None, losses: dict[str, float],
) -> bool:
    """Record progress and extend the lease; False means stop: the lease is lost or every request was cancelled."""
    job = session.scalar(select(Job).where(Job.id == job_id).with_for_update())
    if job.status is not JobStatus.running or job.lease_owner != owner:
        return False
    stepped = step != job.progress_step
    job.progress_phase, job.progress_step, job.progress_total, job.progress_rate = phase, step, total, rate
    job.losses = losses
    stride = max(1, total // _HISTORY_POINTS)
    if stepped and (step % stride == 0 or step == total):
        job.loss_history = [*job.loss_history, {"step": step, **losses}]
    job.lease_expires_at = utcnow() + timedelta(seconds=lease_seconds)
    session.flush()
    return has_live_requests(session, job_id=job_id)


def extend_lease(session: Session, *, job_id: uuid.UUID, owner: str, lease_seconds: int) -> bool:
    """Extend this worker's lease without touching progress; False if it no longer holds the job."""
    job = session.scalar(select(Job).where(Job.id == job_id).with_for_update())
    if job is None or job.status is not JobStatus.running or job.lease_owner != owner:
        return False
    job.lease_expires_at = utcnow() + timedelta(seconds=lease_seconds)
    return True


def has_live_requests(session: Session, *, job_id: uuid.UUID) -> bool:
    return bool(_live_requests(session, job_id=job_id))


def forget_samples(session: Session, *, job: Job) -> list[tuple[Sample, list[uuid.UUID]]]:
    """The union of samples named by the job's live requests (explicit keys and whole classes), each
    with the requests that asked for it, in a stable order."""
    requests = _live_requests(session, job_id=job.id)
    owners: dict[int, list[uuid.UUID]] = {}
    samples: dict[int, Sample] = {}
    for request in requests:
        named = session.scalars(
            select(Sample).join(RequestSample, RequestSample.sample_id == Sample.id).where(RequestSample.request_id == request.id)
        )
        by_class = session.scalars(
            select(Sample).where(
                Sample.dataset_id == job.model.training_dataset_id,
                Sample.class_label.in_(request.classes),
                Sample.erased_at.is_(None),
            )
        ) if request.classes else []
        for sample in [*named, *by_class]:
            samples[sample.id] = sample
            owners.setdefault(sample.id, []).append(request.id)
    return [(samples[i], owners[i]) for i in sorted(samples)]


def forget_classes(session: Session, *, job: Job) -> list[str]:
    return sorted({c for r in _live_requests(session, job_id=job.id) for c in r.classes})


def owns_running_job(session: Session, *, job_id: uuid.UUID, owner: str) -> Job | None:
    """Lock the job for publication; None if this worker no longer holds it."""
    job = session.scalar(select(Job).where(Job.id == job_id).with_for_update())
    if job is None or job.status is not JobStatus.running or job.lease_owner != owner:
        return None
    return job


def complete_job(
    session: Session, *, job: Job, version: ModelVersion, sample_ids: list[int], actor: str
) -> list[UnlearnRequest]:
    now = utcnow()
    job.status, job.result_version, job.finished_at, job.lease_expires_at = JobStatus.succeeded, version.version, now, None
    record(session, actor=actor, action="job.succeeded", subject=f"job:{job.id}",
           data={"result_version": version.version, "erased_samples": len(sample_ids)})
    requests = _live_requests(session, job_id=job.id)
    for request in requests:
        request.status, request.result_version, request.finished_at = RequestStatus.completed, version.version, now
        record(session, actor=actor, action="request.completed", subject=f"request:{request.id}",
               data={"result_version": version.version})
    for start in range(0, len(sample_ids), 5000):
        for sample in session.scalars(select(Sample).where(Sample.id.in_(sample_ids[start : start + 5000]))):
            sample.erased_at, sample.erased_by_version_id = now, version.id
    session.flush()
    return requests


def cancel_job(session: Session, *, job: Job, actor: str) -> None:
    job.status, job.finished_at, job.lease_expires_at = JobStatus.cancelled, utcnow(), None
    record(session, actor=actor, action="job.cancelled", subject=f"job:{job.id}")
    session.flush()


def fail_job(session: Session, *, job_id: uuid.UUID, reason: FailureReason, detail: str, actor: str) -> None:
    job = session.scalar(select(Job).where(Job.id == job_id).with_for_update())
    now = utcnow()
    job.status, job.error, job.finished_at, job.lease_expires_at = JobStatus.failed, detail, now, None
    record(session, actor=actor, action="job.failed", subject=f"job:{job.id}", data={"reason": reason.value, "detail": detail[:500]})
    for request in _live_requests(session, job_id=job_id):
        request.status, request.reason, request.reason_detail, request.finished_at = (
            RequestStatus.failed, reason.value, detail[:4000], now,
        )
        record(session, actor=actor, action="request.failed", subject=f"request:{request.id}", data={"reason": reason.value})
    session.flush()


def _live_requests(session: Session, *, job_id: uuid.UUID) -> list[UnlearnRequest]:
    return list(
        session.scalars(
            select(UnlearnRequest)
            .where(UnlearnRequest.job_id == job_id, UnlearnRequest.status.not_in([RequestStatus.cancelled]))
            .order_by(UnlearnRequest.received_at)
        )
    )


def recover_jobs(session: Session, *, redispatch_seconds: float, task_name: str) -> int:
    """Put lost work back on the queue; returns how many jobs were re-sent.

    A running job whose lease expired lost its worker: it goes back to queued and runs again from
    the version current when it is next claimed. A due queued job that was sent long ago but never
    claimed lost its message (a broker restart): it is sent again. Duplicates are harmless: the
    claim decides.
    """
    now = utcnow()
    resend: list[Job] = []
    expired = session.scalars(
        select(Job).where(Job.status == JobStatus.running, Job.lease_expires_at < now).with_for_update(skip_locked=True)
    )
    for job in expired:
        record(session, actor="system:recovery", action="job.lease_expired", subject=f"job:{job.id}",
               data={"owner": job.lease_owner, "attempt": job.attempts})
        job.status, job.lease_owner, job.lease_expires_at = JobStatus.queued, None, None
        for request in _live_requests(session, job_id=job.id):
            if request.status is RequestStatus.running:
                request.status = RequestStatus.queued
        resend.append(job)
    stale = now - timedelta(seconds=redispatch_seconds)
    unsent = select(OutboxMessage.id).where(OutboxMessage.job_id == Job.id, OutboxMessage.sent_at.is_(None)).exists()
    lost = session.scalars(
        select(Job)
        .where(Job.status == JobStatus.queued, Job.not_before <= now, Job.last_dispatched_at < stale, ~unsent)
        .with_for_update(skip_locked=True)
    )
    resend += list(lost)
    for job in resend:
        session.add(OutboxMessage(task_name=task_name, job_id=job.id, payload={"job_id": str(job.id)}))
    session.flush()
    return len(resend)
