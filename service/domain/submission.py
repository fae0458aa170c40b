"""Filing an unlearn request: validation, idempotency, and the few statements a submission costs.

The path is built for throughput (issue 13): the model row (locked when the request may join an
open job), every named sample with its erasure state in one round trip (`sample_key = ANY(:keys)`
on Postgres), the open jobs with their sizes in one query, the request row inserted once in its
final state (`ON CONFLICT DO NOTHING` settles a concurrent retry with the same key, no savepoint),
its samples in one `INSERT … SELECT unnest(…)`, and the response built from what was written
rather than read back. With a new job: two more inserts (the job and its outbox row).
"""

import hashlib
import json
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import String, any_, bindparam, delete, func, insert, or_, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from service.audit.chain import record
from service.config import Settings
from service.db.base import utcnow
from service.db.enums import Mode, RequestStatus
from service.db.models import Job, Model, OutboxMessage, RequestSample, Sample, UnlearnRequest
from service.domain.auth import Principal, actor_of
from service.domain.erasures import erased_from
from service.domain.requests import MAX_DUE_AHEAD, job_for, get_request
from service.domain.unlearn_config import effective_config
from service.errors import Conflict, Unprocessable
from service.schemas.requests import RequestCreate

_SQLITE_CHUNK = 5000  # bound parameters per IN list on SQLite
_REUSED = "this Idempotency-Key or external_id was used with a different body"
_INSERT_SAMPLES = text(
    "INSERT INTO request_samples (request_id, position, sample_id) "
    "SELECT :request_id, t.ord - 1, t.sample_id FROM unnest(CAST(:ids AS BIGINT[])) WITH ORDINALITY AS t(sample_id, ord)"
)


@dataclass(frozen=True)
class Submission:
    """What a submission recorded. A new request's row is not read back: `request` is the row as
    inserted (not in the session), with the model, sample keys and job the view needs beside it."""

    request: UnlearnRequest
    created: bool  # False: a replay of an earlier submission (200); `request` is then the stored row
    due_now: bool = False  # its job may be sent at once (no batching window): worth a dispatch pass
    model: Model | None = None
    sample_keys: list[str] | None = None
    job: Job | None = None


def body_digest(body: RequestCreate) -> str:
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def submit_request(
    session: Session, *, key: Principal, body: RequestCreate, idempotency_key: str | None, settings: Settings
) -> Submission:
    """Record a request (and, unless approval is required, attach it to a job); the view of what was recorded.

    A repeated Idempotency-Key or external_id with the same body returns the first request;
    with a different body it is a conflict. Validation reports every offending item at once.
    """
    digest = body_digest(body)
    previous = _replay(session, key=key, body=body, idempotency_key=idempotency_key, digest=digest)
    if previous is not None:
        return previous
    received = utcnow()
    enqueue = not settings.require_approval
    model, samples = _validate(session, body=body, settings=settings, received=received,
                               lock_model=enqueue and settings.batch_window_seconds > 0)
    due_at = body.due_at or received + timedelta(days=settings.due_days)
    overrides = body.config.model_dump(exclude_unset=True) if body.config else {}
    job, coalesced = (job_for(session, model=model, mode=body.mode, method=body.method, overrides=overrides,
                              due_at=due_at, settings=settings, locked=True) if enqueue else (None, False))
    request = UnlearnRequest(
        id=uuid.uuid4(), api_key_id=key.id, external_id=body.external_id, idempotency_key=idempotency_key,
        body_digest=digest, model_id=model.id, mode=body.mode, method=body.method, classes=sorted(set(body.classes)),
        config=overrides, status=RequestStatus.queued if enqueue else RequestStatus.pending_approval,
        job_id=job.id if job else None, received_at=received, updated_at=received, due_at=due_at,
    )
    if not _insert_request(session, request):  # a concurrent retry with the same key won the race
        if job is not None and not coalesced:
            session.execute(delete(OutboxMessage.__table__).where(OutboxMessage.job_id == job.id))
            session.execute(delete(Job.__table__).where(Job.id == job.id))
        replay = _replay(session, key=key, body=body, idempotency_key=idempotency_key, digest=digest)
        if replay is None:
            raise Conflict("a submission with this Idempotency-Key or external_id is in flight; retry")
        return replay
    if coalesced and due_at < job.not_before:
        job.not_before = due_at  # the joined job's window closes no later than this request's due date
    _insert_samples(session, request_id=request.id, sample_ids=[s for s, _ in samples])
    _record_submission(session, key=key, request=request, model=model, samples=len(samples), job=job,
                       coalesced=coalesced)
    return Submission(request=request, created=True, due_now=job is not None and job.not_before <= utcnow(),
                      model=model, sample_keys=[k for _, k in samples], job=job)


def _record_submission(session: Session, *, key: Principal, request: UnlearnRequest, model: Model, samples: int,
                       job: Job | None, coalesced: bool) -> None:
    actor, subject = actor_of(key), f"request:{request.id}"
    record(session, actor=actor, action="request.received", subject=subject, data={
        "model": model.name, "samples": samples, "classes": request.classes, "mode": request.mode.value,
        "method": request.method.value, "body_digest": request.body_digest, "due_at": request.due_at.isoformat(),
    })
    if job is None:
        record(session, actor=actor, action="request.pending_approval", subject=subject)
    else:
        record(session, actor=actor, action="request.queued", subject=subject,
               data={"job_id": str(job.id), "coalesced": coalesced})


def _replay(
    session: Session, *, key: Principal, body: RequestCreate, idempotency_key: str | None, digest: str
) -> Submission | None:
    clauses = []
    if idempotency_key:
        clauses.append(UnlearnRequest.idempotency_key == idempotency_key)
    if body.external_id:
        clauses.append(UnlearnRequest.external_id == body.external_id)
    if not clauses:
        return None
    found = session.execute(
        select(UnlearnRequest.id, UnlearnRequest.body_digest).where(UnlearnRequest.api_key_id == key.id, or_(*clauses))
    ).first()
    if found is None:
        return None
    if found.body_digest != digest:
        raise Conflict(_REUSED)
    return Submission(request=get_request(session, request_id=found.id), created=False)


def _insert_request(session: Session, request: UnlearnRequest) -> bool:
    """Insert the request row as it is; False when a row with its idempotency key or external id exists."""
    table = UnlearnRequest.__table__
    values = {c.key: getattr(request, c.key) for c in table.columns if c.key not in ("reason", "reason_detail",
              "reviewed_by", "reviewed_at", "result_version", "finished_at")}
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        statement = pg_insert(table).values(values).on_conflict_do_nothing()
    else:
        statement = sqlite_insert(table).values(values).on_conflict_do_nothing()
    return session.execute(statement.returning(table.c.id)).first() is not None


def _insert_samples(session: Session, *, request_id: uuid.UUID, sample_ids: list[int]) -> None:
    if not sample_ids:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_INSERT_SAMPLES, {"request_id": request_id, "ids": sample_ids})
    else:
        rows = [{"request_id": request_id, "position": i, "sample_id": s} for i, s in enumerate(sample_ids)]
        session.execute(insert(RequestSample.__table__), rows)


def _validate(
    session: Session, *, body: RequestCreate, settings: Settings, received: datetime, lock_model: bool
) -> tuple[Model, list[tuple[int, str]]]:
    """The model and the (sample id, key) pairs named, in order; every problem at once as a 422."""
    problems: list[dict[str, str]] = []
    for field, values in (("samples", body.samples), ("classes", body.classes)):
        dupes = sorted(v for v, n in Counter(values).items() if n > 1)
        problems += [{"field": field, "value": v, "problem": "listed more than once"} for v in dupes]
    if body.due_at is not None and not received < body.due_at <= received + MAX_DUE_AHEAD:
        problems.append({"field": "due_at", "value": body.due_at.isoformat(),
                         "problem": f"must lie after receipt ({received.isoformat()}) and at most 10 years ahead"})
    if len(body.samples) > settings.max_samples_per_request:
        problems.append({"field": "samples", "problem": f"more than {settings.max_samples_per_request} samples"})
    if not body.samples and not body.classes:
        problems.append({"field": "samples", "problem": "the forget set is empty: name samples or classes"})
    query = select(Model).where(Model.name == body.model)
    if lock_model:  # it may join an open job: the model row first (lock order, service.domain)
        query = query.with_for_update(key_share=True)
    model = session.scalar(query)
    if model is None:
        problems.append({"field": "model", "value": body.model, "problem": "unknown model"})
        raise Unprocessable({"message": "request refused; nothing was recorded", "items": problems})
    if model.current_version is None:
        raise Conflict(f"model '{model.name}' has no validated version: a worker has not checked its base checkpoint "
                       f"yet, or rejected it (GET /models/{model.name}/versions)")
    if body.mode is Mode.retain_free and model.proxy_dataset_id is None:
        problems.append({"field": "mode", "value": "retain_free", "problem": "model has no proxy dataset"})
    samples = _check_samples(session, model=model, keys=list(dict.fromkeys(body.samples)), problems=problems)
    _check_classes(session, model=model, labels=sorted(set(body.classes)), problems=problems)
    if problems:
        raise Unprocessable({"message": "request refused; nothing was recorded", "items": problems})
    return model, samples


def _check_samples(session: Session, *, model: Model, keys: list[str], problems: list) -> list[tuple[int, str]]:
    """Each key's sample id and erasure state in one round trip (chunks of IN lists on SQLite)."""
    if not keys:
        return []
    erased = erased_from(model.id).label("erased")
    base = select(Sample.id, Sample.sample_key, erased).where(Sample.dataset_id == model.training_dataset_id)
    found: dict[str, tuple[int, bool]] = {}
    if session.get_bind().dialect.name == "postgresql":
        chunks = [base.where(Sample.sample_key == any_(bindparam("keys", keys, type_=ARRAY(String))))]
    else:
        chunks = [base.where(Sample.sample_key.in_(keys[i : i + _SQLITE_CHUNK])) for i in range(0, len(keys), _SQLITE_CHUNK)]
    for query in chunks:
        found.update({key: (sample_id, bool(gone)) for sample_id, key, gone in session.execute(query)})
    for k in keys:
        if k not in found:
            problems.append({"field": "samples", "value": k, "problem": "unknown sample in the model's training dataset"})
        elif found[k][1]:
            problems.append({"field": "samples", "value": k, "problem": "already erased from this model"})
    return [(found[k][0], k) for k in keys if k in found]


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
