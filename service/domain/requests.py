"""Unlearn requests: submission with validation and idempotency, listing, cancellation."""

import base64
import hashlib
import json
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, selectinload

from service.audit.chain import record
from service.config import Settings
from service.db.base import utcnow
from service.db.enums import JobStatus, Mode, RequestStatus, Role
from service.db.models import ApiKey, Job, Model, OutboxMessage, RequestSample, Sample, UnlearnRequest
from service.domain.auth import actor_of
from service.domain.deadlines import default_due, due_at_problem
from service.domain.erasures import erased_from, erased_ids
from service.domain.families import method_problem
from service.domain.unlearn_config import effective_config
from service.domain.webhooks import emit_request_status
from service.errors import BadRequest, Conflict, Forbidden, NotFound, Unprocessable
from service.schemas.requests import RequestCreate

RUN_JOB_TASK = "oblivio.run_job"
CANCELLABLE = frozenset({RequestStatus.received, RequestStatus.pending_approval, RequestStatus.queued, RequestStatus.running})


def body_digest(body: RequestCreate) -> str:
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def submit_request(
    session: Session, *, key: ApiKey, body: RequestCreate, idempotency_key: str | None, settings: Settings
) -> tuple[UnlearnRequest, bool]:
    """Record a request (and, unless approval is required, its job and outbox row); returns (request, created).

    A repeated Idempotency-Key or external_id with the same body returns the first request;
    with a different body it is a conflict. Validation reports every offending item at once.
    """
    digest = body_digest(body)
    previous = _previous_submission(session, key=key, body=body, idempotency_key=idempotency_key)
    if previous is not None:
        if previous.body_digest != digest:
            raise Conflict("this Idempotency-Key or external_id was used with a different body")
        return previous, False

    received = utcnow()
    model, samples = _validate(session, body=body, settings=settings, received=received)
    request = UnlearnRequest(
        api_key_id=key.id,
        external_id=body.external_id,
        idempotency_key=idempotency_key,
        body_digest=digest,
        model_id=model.id,
        mode=body.mode,
        method=body.method,
        classes=sorted(set(body.classes)),
        config=body.config.model_dump(exclude_unset=True) if body.config else {},
        status=RequestStatus.received,
        received_at=received,
        due_at=body.due_at or default_due(received, settings),
    )
    try:
        with session.begin_nested():
            session.add(request)
            session.flush()
    except IntegrityError:  # a concurrent retry with the same key won the race
        previous = _previous_submission(session, key=key, body=body, idempotency_key=idempotency_key)
        if previous is None:
            raise
        if previous.body_digest != digest:
            raise Conflict("this Idempotency-Key or external_id was used with a different body") from None
        return previous, False
    session.add_all(RequestSample(request_id=request.id, position=i, sample_id=s.id) for i, s in enumerate(samples))
    actor = actor_of(key)
    record(session, actor=actor, action="request.received", subject=_subject(request), data={
        "model": model.name, "samples": len(samples), "classes": request.classes, "mode": body.mode.value,
        "method": body.method.value, "body_digest": digest, "due_at": request.due_at.isoformat(),
    })
    if settings.require_approval:
        request.status = RequestStatus.pending_approval
        record(session, actor=actor, action="request.pending_approval", subject=_subject(request))
        emit_request_status(session, request=request)
    else:
        _enqueue(session, request=request, model=model, actor=actor, settings=settings)
    session.flush()
    return get_request(session, request_id=request.id), True


def _enqueue(session: Session, *, request: UnlearnRequest, model: Model, actor: str, settings: Settings) -> Job:
    """Attach the request to an open job of its model (coalescing) or open a new one with its outbox row.

    A job stays open for `batch_window_seconds` (never past its earliest due date); the dispatcher
    sends it when the window closes, so everything that arrived meanwhile runs in one pass.
    """
    job, coalesced = _job_for(session, request=request, model=model, settings=settings)
    _attach(session, request=request, job=job, coalesced=coalesced, actor=actor)
    return job


def _job_for(session: Session, *, request: UnlearnRequest, model: Model, settings: Settings) -> tuple[Job, bool]:
    """The open job this request joins (locked, its window narrowed to the request's due date) or a new
    job with its outbox row; True when it joins an existing one. Takes the model row, then job rows."""
    now = utcnow()
    config = effective_config(model=model, method=request.method, overrides=request.config)
    job = _open_job(session, model=model, request=request, config=config, now=now, settings=settings)
    if job is not None:
        job.not_before = min(job.not_before, request.due_at)
        return job, True
    window = timedelta(seconds=settings.batch_window_seconds)
    job = Job(model_id=model.id, mode=request.mode, method=request.method, config=config,
              not_before=min(now + window, request.due_at))
    session.add(job)
    session.flush()
    session.add(OutboxMessage(task_name=RUN_JOB_TASK, job_id=job.id, payload={"job_id": str(job.id)}))
    return job, False


def _attach(session: Session, *, request: UnlearnRequest, job: Job, coalesced: bool, actor: str) -> None:
    request.job_id, request.status = job.id, RequestStatus.queued
    session.flush()
    record(session, actor=actor, action="request.queued", subject=_subject(request),
           data={"job_id": str(job.id), "coalesced": coalesced})
    emit_request_status(session, request=request)


def _open_job(
    session: Session, *, model: Model, request: UnlearnRequest, config: dict, now: datetime, settings: Settings
) -> Job | None:
    if settings.batch_window_seconds <= 0:
        return None
    # Several job rows of one model are locked: the model row first (lock order, service.domain).
    session.scalar(select(Model.id).where(Model.id == model.id).with_for_update(key_share=True))
    candidates = session.scalars(
        select(Job)
        .where(Job.model_id == model.id, Job.status == JobStatus.queued, Job.not_before > now)
        .where(Job.mode == request.mode, Job.method == request.method)
        .order_by(Job.created_at)
        .with_for_update(key_share=True)
    )
    for job in candidates:
        size = session.scalar(select(func.count()).where(UnlearnRequest.job_id == job.id))
        if job.config == config and size < settings.batch_max_requests:
            return job
    return None


def approve_request(session: Session, *, request_id: uuid.UUID, approver: ApiKey, settings: Settings) -> UnlearnRequest:
    """Four eyes: the approving key is never the key that filed the request, whatever its role."""
    peek = get_request(session, request_id=request_id)
    if peek.api_key_id == approver.id:
        raise Forbidden("four eyes: a request cannot be approved with the API key that filed it")
    _require(peek, RequestStatus.pending_approval, "approved")
    actor = actor_of(approver)
    # Lock order: the model and job rows before the request row (service.domain).
    job, coalesced = _job_for(session, request=peek, model=peek.model, settings=settings)
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


def _previous_submission(
    session: Session, *, key: ApiKey, body: RequestCreate, idempotency_key: str | None
) -> UnlearnRequest | None:
    clauses = []
    if idempotency_key:
        clauses.append(UnlearnRequest.idempotency_key == idempotency_key)
    if body.external_id:
        clauses.append(UnlearnRequest.external_id == body.external_id)
    if not clauses:
        return None
    found = session.scalar(select(UnlearnRequest.id).where(UnlearnRequest.api_key_id == key.id, or_(*clauses)))
    return get_request(session, request_id=found) if found else None


def _validate(
    session: Session, *, body: RequestCreate, settings: Settings, received: datetime
) -> tuple[Model, list[Sample]]:
    problems: list[dict[str, str]] = []
    for field, values in (("samples", body.samples), ("classes", body.classes)):
        dupes = sorted(v for v, n in Counter(values).items() if n > 1)
        problems += [{"field": field, "value": v, "problem": "listed more than once"} for v in dupes]
    if body.due_at is not None and (why := due_at_problem(body.due_at, received)):
        problems.append({"field": "due_at", "value": body.due_at.isoformat(), "problem": why})
    if len(body.samples) > settings.max_samples_per_request:
        problems.append({"field": "samples", "problem": f"more than {settings.max_samples_per_request} samples"})
    if not body.samples and not body.classes:
        problems.append({"field": "samples", "problem": "the forget set is empty: name samples or classes"})
    model = session.scalar(select(Model).where(Model.name == body.model))
    if model is None:
        problems.append({"field": "model", "value": body.model, "problem": "unknown model"})
        raise Unprocessable({"message": "request refused; nothing was recorded", "items": problems})
    if model.current_version is None:
        raise Conflict(f"model '{model.name}' has no validated version: a worker has not checked its base checkpoint "
                       f"yet, or rejected it (GET /models/{model.name}/versions)")
    mismatch = method_problem(family=model.family, method=body.method.value)
    if mismatch:
        problems.append({"field": "method", "value": body.method.value, "problem": mismatch})
    if body.mode is Mode.retain_free and model.proxy_dataset_id is None:
        problems.append({"field": "mode", "value": "retain_free", "problem": "model has no proxy dataset"})
    samples = _check_samples(session, model=model, keys=list(dict.fromkeys(body.samples)), problems=problems)
    _check_classes(session, model=model, labels=sorted(set(body.classes)), problems=problems)
    if problems:
        raise Unprocessable({"message": "request refused; nothing was recorded", "items": problems})
    return model, samples


def _check_samples(session: Session, *, model: Model, keys: list[str], problems: list) -> list[Sample]:
    found: dict[str, Sample] = {}
    for start in range(0, len(keys), 5000):
        chunk = keys[start : start + 5000]
        query = select(Sample).where(Sample.dataset_id == model.training_dataset_id, Sample.sample_key.in_(chunk))
        found.update({s.sample_key: s for s in session.scalars(query)})
    erased = erased_ids(session, model_id=model.id, sample_ids=[s.id for s in found.values()])
    for k in keys:
        if k not in found:
            problems.append({"field": "samples", "value": k, "problem": "unknown sample in the model's training dataset"})
        elif found[k].id in erased:
            problems.append({"field": "samples", "value": k, "problem": "already erased from this model"})
    return [found[k] for k in keys if k in found]


def _check_classes(session: Session, *, model: Model, labels: list[str], problems: list) -> None:
    if not labels:
        return
    counts = dict(
        session.execute(
            select(Sample.class_label, func.count().filter(~erased_from(model.id)))
            .where(Sample.dataset_id == model.training_dataset_id, Sample.class_label.in_(labels))
            .group_by(Sample.class_label)
        ).all()
    )
    for label in labels:
        if label not in counts:
            problems.append({"field": "classes", "value": label, "problem": "unknown class in the model's training dataset"})
        elif counts[label] == 0:
            problems.append({"field": "classes", "value": label, "problem": "every sample of this class is already erased"})


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
        at, last_id = _decode_cursor(cursor)
        query = query.where(
            or_(UnlearnRequest.received_at < at, and_(UnlearnRequest.received_at == at, UnlearnRequest.id < last_id))
        )
    query = query.order_by(UnlearnRequest.received_at.desc(), UnlearnRequest.id.desc()).limit(limit + 1)
    rows = list(session.scalars(query).unique())
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], _encode_cursor(last.received_at, last.id)


def _encode_cursor(at: datetime, request_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(json.dumps([at.isoformat(), str(request_id)]).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The inverse of `_encode_cursor`; anything it did not produce is a 400, never a crash."""
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not (isinstance(decoded, list) and len(decoded) == 2 and all(isinstance(p, str) for p in decoded)):
            raise ValueError("not a pair of strings")
        at = datetime.fromisoformat(decoded[0])
        if at.tzinfo is None:
            raise ValueError("naive")
        return at.astimezone(UTC), uuid.UUID(decoded[1])
    except (ValueError, OverflowError) as exc:
        raise BadRequest("invalid cursor; use the next_cursor value of a previous page") from exc


def cancel_request(session: Session, *, request_id: uuid.UUID, key: ApiKey) -> UnlearnRequest:
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
