"""Unlearn requests: the job a request joins, approval, listing, cancellation (filing: service.domain.submission)."""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, bindparam, func, insert, select, update
from sqlalchemy.orm import Session, joinedload, selectinload

from service.audit.chain import record
from service.config import Settings
from service.db.base import utcnow
from service.db.enums import JobStatus, Method, Mode, RequestStatus, Role
from service.db.models import Job, Model, OutboxMessage, RequestSample, UnlearnRequest
from service.domain.auth import Principal, actor_of
from service.domain.cursors import after_cursor, page_of
from service.domain.unlearn_config import effective_config
from service.errors import Conflict, Forbidden, NotFound
from service.domain.webhooks import emit_request_status

RUN_JOB_TASK = "oblivio.run_job"
CANCELLABLE = frozenset({RequestStatus.received, RequestStatus.pending_approval, RequestStatus.queued, RequestStatus.running})


_JOBS, _REQUESTS, _OUTBOX = Job.__table__, UnlearnRequest.__table__, OutboxMessage.__table__
_SIZE = select(func.count()).where(_REQUESTS.c.job_id == _JOBS.c.id).scalar_subquery()
# Statements built once: executing a prebuilt statement skips SQLAlchemy's per-call construction and cache key.
_LOCK_MODEL = select(Model.__table__.c.id).where(Model.__table__.c.id == bindparam("model_id")).with_for_update(key_share=True)
_OPEN_JOBS = (
    select(_JOBS.c.id, _JOBS.c.status, _JOBS.c.config, _JOBS.c.not_before, _JOBS.c.base_version, _JOBS.c.result_version,
           _JOBS.c.attempts, _JOBS.c.progress_phase, _JOBS.c.progress_step, _JOBS.c.progress_total,
           _JOBS.c.progress_rate, _JOBS.c.losses)
    .where(_JOBS.c.model_id == bindparam("model_id"), _JOBS.c.status == bindparam("queued", type_=_JOBS.c.status.type),
           _JOBS.c.not_before > bindparam("now", type_=_JOBS.c.not_before.type))
    .where(_JOBS.c.mode == bindparam("mode", type_=_JOBS.c.mode.type),
           _JOBS.c.method == bindparam("method", type_=_JOBS.c.method.type), _SIZE < bindparam("max_size"))
    .order_by(_JOBS.c.created_at)
    .limit(20)
    .with_for_update(of=_JOBS, key_share=True)
)
_INSERT_JOB = insert(_JOBS)
_INSERT_OUTBOX = insert(_OUTBOX)
_NARROW = update(_JOBS).where(_JOBS.c.id == bindparam("job_id")).values(not_before=bindparam("not_before"))


def job_for(
    session: Session, *, model: Model, mode: Mode, method: Method, overrides: dict, due_at: datetime,
    settings: Settings, locked: bool = False,
) -> tuple[Job, bool]:
    """The open job a request joins (row locked, its window narrowed to the request's due date) or a
    new job with its outbox row; True when it joins an existing one.

    A job stays open for `batch_window_seconds` (never past its earliest due date); the dispatcher
    sends it when the window closes, so everything that arrived meanwhile runs in one pass. Takes
    the model row (unless the caller holds it: `locked`), then job rows. The job returned is a
    plain record of the row (not in the session): what the caller and the response need.
    """
    now = utcnow()
    config = effective_config(model=model, method=method, overrides=overrides)
    connection = session.connection()
    if settings.batch_window_seconds > 0:
        if not locked:  # several job rows of one model are locked: the model row first (lock order, service.domain)
            connection.execute(_LOCK_MODEL, {"model_id": model.id})
        candidates = connection.execute(_OPEN_JOBS, {
            "model_id": model.id, "queued": JobStatus.queued, "now": now, "mode": mode, "method": method,
            "max_size": settings.batch_max_requests})
        for row in candidates:
            if row.config == config:
                job = Job(**row._asdict())
                if due_at < job.not_before:
                    job.not_before = due_at
                    connection.execute(_NARROW, {"job_id": job.id, "not_before": due_at})
                return job, True
    job = Job(id=uuid.uuid4(), model_id=model.id, status=JobStatus.queued, mode=mode, method=method, config=config,
              not_before=min(now + timedelta(seconds=settings.batch_window_seconds), due_at), created_at=now,
              attempts=0, progress_step=0, progress_total=0, losses={})
    connection.execute(_INSERT_JOB, {"id": job.id, "model_id": model.id, "status": job.status, "mode": mode,
                                     "method": method, "config": config, "not_before": job.not_before, "created_at": now})
    connection.execute(_INSERT_OUTBOX, {"task_name": RUN_JOB_TASK, "job_id": job.id, "payload": {"job_id": str(job.id)}})
    return job, False


def _attach(session: Session, *, request: UnlearnRequest, job: Job, coalesced: bool, actor: str) -> None:
    request.job_id, request.status = job.id, RequestStatus.queued
    session.flush()
    record(session, actor=actor, action="request.queued", subject=_subject(request),
           data={"job_id": str(job.id), "coalesced": coalesced})
    emit_request_status(session, request=request)


def approve_request(session: Session, *, request_id: uuid.UUID, approver: Principal, settings: Settings) -> UnlearnRequest:
    """Four eyes: the approving key is never the key that filed the request, whatever its role."""
    peek = get_request(session, request_id=request_id)
    if peek.api_key_id == approver.id:
        raise Forbidden("four eyes: a request cannot be approved with the API key that filed it")
    _require(peek, RequestStatus.pending_approval, "approved")
    actor = actor_of(approver)
    # Lock order: the model and job rows before the request row (service.domain).
    job, coalesced = job_for(session, model=peek.model, mode=peek.mode, method=peek.method, overrides=peek.config,
                             due_at=peek.due_at, settings=settings)
    request = get_request(session, request_id=request_id, for_update=True)
    _require(request, RequestStatus.pending_approval, "approved")  # a concurrent decision won: rolled back
    request.reviewed_by, request.reviewed_at = actor, utcnow()
    record(session, actor=actor, action="request.approved", subject=_subject(request))
    _attach(session, request=request, job=job, coalesced=coalesced, actor=actor)
    session.expire(request, ["job"])
    return get_request(session, request_id=request_id)


def _require(request: UnlearnRequest, status: RequestStatus, verb: str) -> None:
    if request.status is not status:
        raise Conflict(f"request is {request.status.value}; only {status.value} requests can be {verb}")


def reject_request(session: Session, *, request_id: uuid.UUID, reason: str, actor: str) -> UnlearnRequest:
    request = get_request(session, request_id=request_id, for_update=True)
    _require(request, RequestStatus.pending_approval, "rejected")
    now = utcnow()
    request.status, request.reason, request.reason_detail = RequestStatus.rejected, "rejected", reason
    request.reviewed_by, request.reviewed_at, request.finished_at = actor, now, now
    record(session, actor=actor, action="request.rejected", subject=_subject(request), data={"reason": reason})
    emit_request_status(session, request=request)
    session.flush()
    return get_request(session, request_id=request_id)


def _subject(request: UnlearnRequest) -> str:
    return f"request:{request.id}"


def get_request(session: Session, *, request_id: uuid.UUID, for_update: bool = False) -> UnlearnRequest:
    query = (
        select(UnlearnRequest)
        .where(UnlearnRequest.id == request_id)
        .options(
            joinedload(UnlearnRequest.model),
            joinedload(UnlearnRequest.job),
            selectinload(UnlearnRequest.samples).joinedload(RequestSample.sample),
        )
    )
    if for_update:
        query = query.with_for_update(of=UnlearnRequest, key_share=True).execution_options(populate_existing=True)
    request = session.scalar(query)
    if request is None:
        raise NotFound(f"unlearn request {request_id} not found")
    return request


@dataclass(frozen=True)
class RequestFilter:
    status: RequestStatus | None = None
    model: str | None = None
    due_before: datetime | None = None


def list_requests(
    session: Session, *, filters: RequestFilter, cursor: str | None, limit: int
) -> tuple[list[UnlearnRequest], str | None]:
    """Newest first, keyset-paginated on (received_at, id)."""
    query: Select = select(UnlearnRequest).options(
        joinedload(UnlearnRequest.model),
        joinedload(UnlearnRequest.job),
        selectinload(UnlearnRequest.samples).joinedload(RequestSample.sample),
    )
    if filters.status is not None:
        query = query.where(UnlearnRequest.status == filters.status)
    if filters.model is not None:
        query = query.join(Model, Model.id == UnlearnRequest.model_id).where(Model.name == filters.model)
    if filters.due_before is not None:
        query = query.where(UnlearnRequest.due_at < filters.due_before)
    if cursor:
        query = query.where(after_cursor(cursor, UnlearnRequest.received_at, UnlearnRequest.id))
    query = query.order_by(UnlearnRequest.received_at.desc(), UnlearnRequest.id.desc()).limit(limit + 1)
    return page_of(list(session.scalars(query).unique()), limit, lambda r: (r.received_at, r.id))


def cancel_request(session: Session, *, request_id: uuid.UUID, key: Principal) -> UnlearnRequest:
    """Cancel while not yet published; a running job notices at its next heartbeat or before publishing.

    An officer cancels only the requests filed with its own key; an admin cancels any.
    Lock order (service.domain): the request's job row, then the request row. The job id is read
    first without a lock; if an approval attached the request to a job in between, the request's
    lock is given back (its savepoint rolled back) and both are taken again in order.
    """
    job, request = _lock_job_then_request(session, request_id=request_id)
    if key.role is not Role.admin and request.api_key_id != key.id:
        raise Forbidden("only the API key that filed this request, or an admin, may cancel it")
    actor = actor_of(key)
    if request.status not in CANCELLABLE:
        raise Conflict(f"request is {request.status.value} and can no longer be cancelled")
    previous = request.status
    request.status = RequestStatus.cancelled
    request.finished_at = utcnow()
    session.flush()
    record(session, actor=actor, action="request.cancelled", subject=_subject(request), data={"was": previous.value})
    emit_request_status(session, request=request)
    if job is not None and job.status is JobStatus.queued:
        remaining = session.scalar(
            select(func.count())
            .where(UnlearnRequest.job_id == job.id, UnlearnRequest.status != RequestStatus.cancelled)
        )
        if remaining == 0:
            job.status = JobStatus.cancelled
            job.finished_at = utcnow()
            record(session, actor=actor, action="job.cancelled", subject=f"job:{job.id}")
    session.flush()
    return request


def _lock_job_then_request(session: Session, *, request_id: uuid.UUID) -> tuple[Job | None, UnlearnRequest]:
    while True:
        job_id = session.scalar(select(UnlearnRequest.job_id).where(UnlearnRequest.id == request_id))
        job = session.scalar(
            select(Job).where(Job.id == job_id).with_for_update(key_share=True).execution_options(populate_existing=True)
        ) if job_id else None
        savepoint = session.begin_nested()
        request = get_request(session, request_id=request_id, for_update=True)
        if request.job_id == job_id:
            savepoint.commit()
            return job, request
        savepoint.rollback()  # job ids only ever go from none to set: the next round holds
