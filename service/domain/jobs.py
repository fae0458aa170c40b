"""Job lifecycle as the worker drives it: claim under a lease, heartbeat, finish.

Each function runs inside the caller's transaction; the worker commits after each call. Locks
follow the order of service.domain: claim and the finishing paths (`owns_running_job`) take the
model row, then the job row, then request rows; heartbeats take the job row alone.
"""

import uuid
from collections.abc import Sequence
from datetime import timedelta
from enum import StrEnum

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, joinedload, selectinload

from service.audit.chain import record
from service.db.base import utcnow
from service.db.enums import FailureReason, JobPhase, JobStatus, RequestStatus
from service.db.models import Job, Model, ModelVersion, RequestSample, Sample, UnlearnRequest
from service.domain.dispatch import dispatch_next
from service.domain.erasures import erased_from, record_erasures
from service.domain.webhooks import emit_request_status
from service.errors import NotFound

_HISTORY_POINTS = 200


class Claim(StrEnum):
    claimed = "claimed"
    finished = "finished"  # terminal already: a redelivery or duplicate message
    held = "held"  # another worker holds a live lease
    model_busy = "model_busy"  # another job of this model is running or older and due; sent again when it is free
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
    # The model row first: claims of one model are serialised, so two jobs never share a base.
    model = _lock(session, Model, model_id)
    job = _lock(session, Job, job_id)
    if job.status in (JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled):
        return Claim.finished
    if job.status is JobStatus.running and job.lease_expires_at and job.lease_expires_at > now and job.lease_owner != owner:
        return Claim.held
    if job.status is JobStatus.queued and job.not_before is not None and job.not_before > now:
        job.last_dispatched_at = None  # this message is spent: the sweep sends the job once it is due
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
        job.last_dispatched_at = None  # no message in flight: the model's next dispatch sends it (service.domain.dispatch)
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
            emit_request_status(session, request=request)
    session.flush()
    return Claim.claimed


def keeps_history_point(step: int, total: int) -> bool:
    """Whether step ``step`` of ``total`` belongs in a job's loss history: at most _HISTORY_POINTS
    evenly spaced steps, plus the last."""
    return step % max(1, -(-total // _HISTORY_POINTS)) == 0 or step == total


def heartbeat(
    session: Session,
    *,
    job_id: uuid.UUID,
    owner: str,
    lease_seconds: int,
    phase: JobPhase,
    step: int,
    total: int,
    rate: float | None,
    losses: dict[str, float],
    history: Sequence[dict[str, float]] = (),
) -> bool:
    """Record progress and extend the lease; False means stop: the lease is lost or every request was cancelled.

    history: the loss entries ({"step": s, <term>: value}) of the steps since the previous heartbeat;
    the job keeps those :func:`keeps_history_point` selects, in step order, each step once.
    """
    job = _lock(session, Job, job_id)
    if job.status is not JobStatus.running or job.lease_owner != owner:
        return False
    job.progress_phase, job.progress_step, job.progress_total, job.progress_rate = phase, step, total, rate
    job.losses = losses
    last = job.loss_history[-1]["step"] if job.loss_history else 0
    kept = [h for h in history if h["step"] > last and keeps_history_point(h["step"], total)]
    if kept:
        job.loss_history = [*job.loss_history, *sorted(kept, key=lambda h: h["step"])]
    job.lease_expires_at = utcnow() + timedelta(seconds=lease_seconds)
    session.flush()
    return has_live_requests(session, job_id=job_id)


def extend_lease(session: Session, *, job_id: uuid.UUID, owner: str, lease_seconds: int) -> bool:
    """Extend this worker's lease without touching progress; False if it no longer holds the job."""
    job = _lock(session, Job, job_id)
    if job is None or job.status is not JobStatus.running or job.lease_owner != owner:
        return False
    job.lease_expires_at = utcnow() + timedelta(seconds=lease_seconds)
    return True


def has_live_requests(session: Session, *, job_id: uuid.UUID) -> bool:
    return bool(_live_requests(session, job_id=job_id))


def forget_samples(session: Session, *, job: Job) -> list[tuple[Sample, list[uuid.UUID]]]:
    """The union of samples named by the job's live requests (explicit keys and whole classes, minus
    samples this model already forgot), each with the requests that asked for it (each once), in a
    stable order."""
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
                ~erased_from(job.model_id),
            )
        ) if request.classes else []
        for sample in [*named, *by_class]:
            samples[sample.id] = sample
            if request.id not in owners.setdefault(sample.id, []):
                owners[sample.id].append(request.id)
    return [(samples[i], owners[i]) for i in sorted(samples)]


def forget_classes(session: Session, *, job: Job) -> list[str]:
    return sorted({c for r in _live_requests(session, job_id=job.id) for c in r.classes})


def owns_running_job(session: Session, *, job_id: uuid.UUID, owner: str) -> Job | None:
    """Lock the job to end it (publish, fail, stop); None if this worker no longer holds it.

    Every path that ends a job comes here: with the model row held, the model's next job is locked
    too and sent if no message for it is in flight, in the transaction that frees the model. Lock
    order: model, this job, the next job (service.domain).
    """
    model_id = session.scalar(select(Job.model_id).where(Job.id == job_id))
    if model_id is None:
        return None
    _lock(session, Model, model_id)
    job = _lock(session, Job, job_id)
    if job.status is not JobStatus.running or job.lease_owner != owner:
        return None
    dispatch_next(session, model_id=model_id)
    return job


def complete_job(
    session: Session, *, job: Job, version: ModelVersion, erased: dict[int, uuid.UUID], actor: str
) -> list[UnlearnRequest]:
    """Succeed the job and its live requests; `erased` maps each forgotten sample to the request that asked first."""
    now = utcnow()
    job.status, job.result_version, job.finished_at, job.lease_expires_at = JobStatus.succeeded, version.version, now, None
    marked = record_erasures(session, model_id=job.model_id, version_id=version.id, requests=erased)
    record(session, actor=actor, action="job.succeeded", subject=f"job:{job.id}",
           data={"result_version": version.version, "erased_samples": len(erased), "newly_erased": marked})
    requests = _live_requests(session, job_id=job.id)
    for request in requests:
        request.status, request.result_version, request.finished_at = RequestStatus.completed, version.version, now
        record(session, actor=actor, action="request.completed", subject=f"request:{request.id}",
               data={"result_version": version.version})
        emit_request_status(session, request=request)
    session.flush()
    return requests


def cancel_job(session: Session, *, job: Job, actor: str) -> None:
    """End a job whose requests were all cancelled; the caller holds it through `owns_running_job`."""
    job.status, job.finished_at, job.lease_expires_at = JobStatus.cancelled, utcnow(), None
    record(session, actor=actor, action="job.cancelled", subject=f"job:{job.id}")
    session.flush()


def fail_job(session: Session, *, job_id: uuid.UUID, reason: FailureReason, detail: str, actor: str) -> None:
    """Fail the job and its live requests; the caller holds it through `owns_running_job`."""
    job = _lock(session, Job, job_id)
    now = utcnow()
    job.status, job.error, job.finished_at, job.lease_expires_at = JobStatus.failed, detail, now, None
    record(session, actor=actor, action="job.failed", subject=f"job:{job.id}", data={"reason": reason.value, "detail": detail[:500]})
    for request in _live_requests(session, job_id=job_id):
        request.status, request.reason, request.reason_detail, request.finished_at = (
            RequestStatus.failed, reason.value, detail[:4000], now,
        )
        record(session, actor=actor, action="request.failed", subject=f"request:{request.id}", data={"reason": reason.value})
        emit_request_status(session, request=request)
    session.flush()


def _live_requests(session: Session, *, job_id: uuid.UUID) -> list[UnlearnRequest]:
    return list(
        session.scalars(
            select(UnlearnRequest)
            .where(UnlearnRequest.job_id == job_id, UnlearnRequest.status.not_in([RequestStatus.cancelled]))
            .order_by(UnlearnRequest.received_at)
        )
    )


def _lock(session: Session, entity: type, key):
    """SELECT … FOR NO KEY UPDATE, refreshing what the session held: foreign-key checks of inserts
    (which take KEY SHARE on the parent row) are never blocked by it."""
    return session.scalar(
        select(entity).where(entity.id == key).with_for_update(key_share=True).execution_options(populate_existing=True)
    )
