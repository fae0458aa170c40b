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
from datetime import datetime

from sqlalchemy import String, any_, bindparam, delete, func, insert, or_, select, text
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
from service.domain.deadlines import default_due, due_at_problem
from service.domain.families import method_problem
from service.domain.requests import get_request, job_for
from service.domain.webhooks import emit_request_status
from service.errors import Conflict, Unprocessable
from service.schemas.requests import RequestCreate

_SQLITE_CHUNK = 5000  # bound parameters per IN list on SQLite
_MODELS, _SAMPLES, _REQUESTS = Model.__table__, Sample.__table__, UnlearnRequest.__table__
# Statements built once (executing a prebuilt statement skips SQLAlchemy's construction and cache key per call).
_MODEL = select(_MODELS).where(_MODELS.c.name == bindparam("name"))
_MODEL_LOCKED = _MODEL.with_for_update(key_share=True)
_ERASED = erased_from(bindparam("model_id")).label("erased")
_NAMED = select(_SAMPLES.c.id, _SAMPLES.c.sample_key, _ERASED).where(_SAMPLES.c.dataset_id == bindparam("dataset_id"))
# The keys travel as one string split by the server: sample keys hold no control characters (the schema
# refuses them), so the unit separator cannot occur inside a key; binding a 10,000-item array costs more.
_SEPARATOR = "\x1f"
_NAMED_PG = _NAMED.where(_SAMPLES.c.sample_key == any_(func.string_to_array(bindparam("keys", type_=String), _SEPARATOR)))
_NAMED_IN = _NAMED.where(_SAMPLES.c.sample_key.in_(bindparam("keys", expanding=True)))
_PREVIOUS = {
    (by_key, by_external): select(_REQUESTS.c.id, _REQUESTS.c.body_digest).where(
        _REQUESTS.c.api_key_id == bindparam("api_key_id"),
        or_(*([_REQUESTS.c.idempotency_key == bindparam("idempotency_key")] if by_key else []),
            *([_REQUESTS.c.external_id == bindparam("external_id")] if by_external else [])))
    for by_key in (True, False) for by_external in (True, False) if by_key or by_external
}
_INSERT_REQUEST = {
    "postgresql": pg_insert(_REQUESTS).on_conflict_do_nothing().returning(_REQUESTS.c.id),
    "sqlite": sqlite_insert(_REQUESTS).on_conflict_do_nothing().returning(_REQUESTS.c.id),
}
_REQUEST_COLUMNS = ("id", "api_key_id", "external_id", "idempotency_key", "body_digest", "model_id", "mode", "method",
                    "classes", "config", "status", "job_id", "received_at", "updated_at", "due_at")
_REUSED = "this Idempotency-Key or external_id was used with a different body"
_INSERT_SAMPLES = text(
    "INSERT INTO request_samples (request_id, position, sample_id) "
    "SELECT :request_id, t.ord - 1, t.sample_id "
    "FROM unnest(CAST(string_to_array(:ids, ',') AS BIGINT[])) WITH ORDINALITY AS t(sample_id, ord)"
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
    due_at = body.due_at or default_due(received, settings)
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
    emit_request_status(session, request=request, model_name=model.name)  # webhooks: pending_approval or queued


def _replay(
    session: Session, *, key: Principal, body: RequestCreate, idempotency_key: str | None, digest: str
) -> Submission | None:
    if not idempotency_key and not body.external_id:
        return None
    query = _PREVIOUS[(bool(idempotency_key), bool(body.external_id))]
    found = session.connection().execute(query, {"api_key_id": key.id, "idempotency_key": idempotency_key,
                                                  "external_id": body.external_id}).first()
    if found is None:
        return None
    if found.body_digest != digest:
        raise Conflict(_REUSED)
    return Submission(request=get_request(session, request_id=found.id), created=False)


def _insert_request(session: Session, request: UnlearnRequest) -> bool:
    """Insert the request row as it is; False when a row with its idempotency key or external id exists."""
    values = {name: getattr(request, name) for name in _REQUEST_COLUMNS}
    statement = _INSERT_REQUEST[session.get_bind().dialect.name]
    return session.connection().execute(statement, values).first() is not None


def _insert_samples(session: Session, *, request_id: uuid.UUID, sample_ids: list[int]) -> None:
    if not sample_ids:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.connection().execute(_INSERT_SAMPLES, {"request_id": request_id, "ids": ",".join(map(str, sample_ids))})
    else:
        rows = [{"request_id": request_id, "position": i, "sample_id": s} for i, s in enumerate(sample_ids)]
        session.connection().execute(insert(RequestSample.__table__), rows)


def _validate(
    session: Session, *, body: RequestCreate, settings: Settings, received: datetime, lock_model: bool
) -> tuple[Model, list[tuple[int, str]]]:
    """The model and the (sample id, key) pairs named, in order; every problem at once as a 422."""
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
    # A plain row, not an ORM object; locked when the request may join an open job (model row first:
    # lock order, service.domain).
    model = session.connection().execute(_MODEL_LOCKED if lock_model else _MODEL, {"name": body.model}).first()
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


def _check_samples(session: Session, *, model: Model, keys: list[str], problems: list) -> list[tuple[int, str]]:
    """Each key's sample id and erasure state in one round trip (chunks of IN lists on SQLite)."""
    if not keys:
        return []
    connection = session.connection()
    params = {"dataset_id": model.training_dataset_id, "model_id": model.id}
    if session.get_bind().dialect.name == "postgresql":
        rows = connection.execute(_NAMED_PG, {**params, "keys": _SEPARATOR.join(keys)}).all()
    else:
        rows = [r for i in range(0, len(keys), _SQLITE_CHUNK)
                for r in connection.execute(_NAMED_IN, {**params, "keys": keys[i : i + _SQLITE_CHUNK]})]
    found: dict[str, tuple[int, bool]] = {key: (sample_id, bool(gone)) for sample_id, key, gone in rows}
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
