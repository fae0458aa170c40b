"""Which queued jobs get a broker message, and when: a bounded number of deliveries per job.

A job has at most one unsent outbox row (a partial unique index; `send` checks first under the
job's lock). A worker that finds a job's model busy does not send it back through the broker: it
marks the job as having no message in flight (`last_dispatched_at` cleared) and moves on. The job
is sent again by whoever can know the model is free:

- the worker that ends a model's job (published, failed, stopped) sends the model's next job in
  the same transaction (`dispatch_next`, model row held);
- the sweep (`recover_jobs`, every outbox poll) re-queues jobs whose lease expired and re-sends
  the head of every idle model whose message is gone (bounced, or sent long ago and lost with a
  broker restart).

So a job's deliveries do not grow with the time it waits behind its model's other jobs.
"""

from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, aliased

from service.audit.chain import record
from service.db.base import utcnow
from service.db.enums import JobStatus, RequestStatus
from service.db.models import Job, OutboxMessage, UnlearnRequest
from service.domain.requests import RUN_JOB_TASK
from service.domain.webhooks import emit_request_status


def send(session: Session, *, job: Job, task_name: str = RUN_JOB_TASK) -> bool:
    """Queue one message for `job` (whose row the caller holds) unless one is already waiting."""
    waiting = session.scalar(select(OutboxMessage.id).where(OutboxMessage.job_id == job.id, OutboxMessage.sent_at.is_(None)))
    if waiting is not None:
        return False
    session.add(OutboxMessage(task_name=task_name, job_id=job.id, payload={"job_id": str(job.id)}))
    session.flush()
    return True


def dispatch_next(session: Session, *, model_id: int) -> Job | None:
    """Send the model's next due job if no message for it is in flight; the caller holds the model row."""
    head = session.scalar(
        select(Job)
        .where(Job.model_id == model_id, Job.status == JobStatus.queued, Job.not_before <= utcnow())
        .order_by(Job.created_at, Job.id)
        .limit(1)
        .with_for_update(key_share=True)
    )
    if head is None or head.last_dispatched_at is not None:
        return None  # nothing due, or its message is still on its way to a worker
    return head if send(session, job=head) else None


def recover_jobs(session: Session, *, redispatch_seconds: float, task_name: str = RUN_JOB_TASK) -> int:
    """Put lost work back on the queue; returns how many messages were queued.

    A running job whose lease expired lost its worker: it goes back to queued and is sent again;
    it runs from the version current when it is next claimed. The head of each idle model is sent
    again when no message for it is in flight, or its last one is older than `redispatch_seconds`
    (lost with a broker restart). Every lock here is taken with SKIP LOCKED: the sweep never waits.
    """
    now = utcnow()
    sent = 0
    expired = session.scalars(
        select(Job).where(Job.status == JobStatus.running, Job.lease_expires_at < now)
        .order_by(Job.id).with_for_update(skip_locked=True, key_share=True)
    )
    for job in list(expired):
        record(session, actor="system:recovery", action="job.lease_expired", subject=f"job:{job.id}",
               data={"owner": job.lease_owner, "attempt": job.attempts})
        job.status, job.lease_owner, job.lease_expires_at, job.last_dispatched_at = JobStatus.queued, None, None, None
        for request in session.scalars(
            select(UnlearnRequest).where(UnlearnRequest.job_id == job.id, UnlearnRequest.status == RequestStatus.running)
        ):
            request.status = RequestStatus.queued
            emit_request_status(session, request=request)
        sent += send(session, job=job, task_name=task_name)
    for job in list(session.scalars(_idle_heads(now, stale=now - timedelta(seconds=redispatch_seconds)))):
        sent += send(session, job=job, task_name=task_name)
    session.flush()
    return sent


def _idle_heads(now: datetime, *, stale: datetime):
    other = aliased(Job)
    busy = select(other.id).where(
        other.model_id == Job.model_id, other.status == JobStatus.running, other.lease_expires_at > now
    ).exists()
    ahead = select(other.id).where(
        other.model_id == Job.model_id, other.status == JobStatus.queued, other.not_before <= now,
        or_(other.created_at < Job.created_at, and_(other.created_at == Job.created_at, other.id < Job.id)),
    ).exists()
    waiting = select(OutboxMessage.id).where(OutboxMessage.job_id == Job.id, OutboxMessage.sent_at.is_(None)).exists()
    return (
        select(Job)
        .where(Job.status == JobStatus.queued, Job.not_before <= now, ~busy, ~ahead, ~waiting)
        .where(or_(Job.last_dispatched_at.is_(None), Job.last_dispatched_at < stale))
        .order_by(Job.id)
        .with_for_update(of=Job, skip_locked=True, key_share=True)
    )
