"""Prometheus metrics of the API: HTTP traffic measured in-process, domain state read from the database.

The state gauges (requests by status, queue depth, versions, gate failures) are computed from
Postgres at scrape time, so every API replica reports the same truth and a restart loses nothing.
Only the HTTP, submission and dashboard sign-in counters and histograms are per process.
"""

import logging
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session, sessionmaker

from service.db.base import utcnow
from service.db.enums import TERMINAL_REQUEST_STATUSES, FailureReason, JobStatus, RequestStatus, VersionStatus
from service.db.models import AuditEvent, Job, Model, ModelVersion, OutboxMessage, UnlearnRequest
from service.domain.deadlines import DUE_SOON_DAYS

SUBMISSION_ROUTE = ("POST", "/unlearn-requests")
log = logging.getLogger("oblivio.metrics")


class ApiMetrics:
    """One registry per app, so that tests and several apps in one process never share series."""

    def __init__(self, sessions_of: Callable[[], sessionmaker[Session]]):
        self.registry = CollectorRegistry()
        for collector in (ProcessCollector, PlatformCollector, GCCollector):
            collector(registry=self.registry)
        self.http_requests = Counter(
            "oblivio_http_requests", "HTTP requests answered, by route template and status code.",
            ["method", "route", "status"], registry=self.registry,
        )
        self.http_duration = Histogram(
            "oblivio_http_request_duration_seconds", "Time until the response was sent, by route template.",
            ["method", "route"], registry=self.registry,
        )
        self.submissions = Counter(
            "oblivio_submissions", "POST /unlearn-requests by outcome: created, replayed, refused (4xx), error (5xx).",
            ["outcome"], registry=self.registry,
        )
        self.submission_duration = Histogram(
            "oblivio_submission_duration_seconds", "Latency of POST /unlearn-requests, validation and commit included.",
            registry=self.registry,
        )
        self.dashboard_sign_ins = Counter(
            "oblivio_dashboard_sign_ins", "Dashboard sign-in attempts by outcome: signed_in, refused (missing, "
            "unknown or revoked key). Refusals are counted here, not audited: see service/domain/sign_ins.py.",
            ["outcome"], registry=self.registry,
        )
        self.registry.register(DatabaseCollector(sessions_of))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http_requests.labels(method, route, str(status)).inc()
        self.http_duration.labels(method, route).observe(seconds)
        if (method, route) == SUBMISSION_ROUTE:
            self.submissions.labels(_submission_outcome(status)).inc()
            self.submission_duration.observe(seconds)


def _submission_outcome(status: int) -> str:
    if status == 201:
        return "created"
    if status == 200:
        return "replayed"
    return "refused" if status < 500 else "error"


class HttpMetricsMiddleware:
    """ASGI middleware: count and time each HTTP request under its route template (never the raw path)."""

    def __init__(self, app, metrics: ApiMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status, observed = 500, False

        def observe() -> None:
            nonlocal observed
            if not observed:
                observed = True
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                self.metrics.observe(scope["method"], route, status, time.perf_counter() - started)

        async def send_observed(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                observe()

        try:
            await self.app(scope, receive, send_observed)
        finally:
            observe()


class DatabaseCollector(Collector):
    """Gauges read from the system of record at scrape time; `sessions_of` is looked up then, not captured."""

    def __init__(self, sessions_of: Callable[[], sessionmaker[Session]]):
        self.sessions_of = sessions_of

    def describe(self) -> list:
        return []  # never query the database when the collector is registered

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("oblivio_database_up", "1 if the last scrape could read the database.")
        try:
            sessions = self.sessions_of()
            with sessions() as session:
                families = list(_state_gauges(session))
        except Exception as exc:
            log.warning("metrics scrape could not read the database: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families


def _state_gauges(session: Session) -> Iterator[GaugeMetricFamily]:
    models = list(session.scalars(select(Model.name).order_by(Model.name)))

    requests = GaugeMetricFamily("oblivio_unlearn_requests", "Unlearn requests by model and status.", labels=["model", "status"])
    counts = _grouped(session, UnlearnRequest.model_id, UnlearnRequest.status)
    for model in models:
        for status in RequestStatus:
            requests.add_metric([model, status.value], counts.get((model, status.value), 0))
    yield requests

    overdue = GaugeMetricFamily(
        "oblivio_unlearn_requests_overdue", "Requests past their legal due date and not yet finished.", labels=["model"]
    )
    late = _grouped(
        session, UnlearnRequest.model_id,
        where=[UnlearnRequest.status.not_in(TERMINAL_REQUEST_STATUSES), UnlearnRequest.due_at < utcnow()],
    )
    for model in models:
        overdue.add_metric([model], late.get((model,), 0))
    yield overdue

    yield _due_soon(session, models)

    failures = GaugeMetricFamily("oblivio_request_failures", "Failed requests by model and reason.", labels=["model", "reason"])
    failed = _grouped(
        session, UnlearnRequest.model_id, UnlearnRequest.reason, where=[UnlearnRequest.status == RequestStatus.failed]
    )
    for model in models:
        for reason in FailureReason:
            failures.add_metric([model, reason.value], failed.get((model, reason.value), 0))
    yield failures

    gate = GaugeMetricFamily("oblivio_gate_failures", "Jobs whose candidate failed the publish gate.", labels=["model"])
    gated = dict(
        session.execute(
            select(Model.name, func.count(distinct(UnlearnRequest.job_id)))
            .select_from(UnlearnRequest)
            .join(Model, Model.id == UnlearnRequest.model_id)
            .where(UnlearnRequest.reason == FailureReason.gate_failed.value)
            .group_by(Model.name)
        ).all()
    )
    for model in models:
        gate.add_metric([model], gated.get(model, 0))
    yield gate

    jobs = GaugeMetricFamily("oblivio_jobs", "Unlearning jobs by model and status.", labels=["model", "status"])
    job_counts = _grouped(session, Job.model_id, Job.status)
    for model in models:
        for status in JobStatus:
            jobs.add_metric([model, status.value], job_counts.get((model, status.value), 0))
    yield jobs

    depth = GaugeMetricFamily(
        "oblivio_queue_depth",
        "Work waiting: outbox = committed messages not yet handed to the broker, jobs = jobs queued for a worker, "
        "audit = committed audit events not yet sealed into the transparency log.",
        labels=["stage"],
    )
    depth.add_metric(["outbox"], session.scalar(select(func.count()).where(OutboxMessage.sent_at.is_(None))))
    depth.add_metric(["jobs"], session.scalar(select(func.count()).where(Job.status == JobStatus.queued)))
    depth.add_metric(["audit"], session.scalar(select(func.count()).where(AuditEvent.leaf_index.is_(None))))
    yield depth

    versions = GaugeMetricFamily(
        "oblivio_model_versions", "Checkpoint versions published, by model and current status.", labels=["model", "status"]
    )
    version_counts = _grouped(session, ModelVersion.model_id, ModelVersion.status)
    for model in models:
        for status in VersionStatus:
            versions.add_metric([model, status.value], version_counts.get((model, status.value), 0))
    yield versions

    current = GaugeMetricFamily("oblivio_model_current_version", "The version `current` points to.", labels=["model"])
    for model, version in session.execute(select(Model.name, Model.current_version)):
        if version is not None:
            current.add_metric([model], version)
    yield current


def _due_soon(session: Session, models: list[str], days: int = DUE_SOON_DAYS) -> GaugeMetricFamily:
    """Open requests not yet overdue whose due date falls within `days` (GDPR Art. 12(3) deadlines)."""
    now = utcnow()
    soon = GaugeMetricFamily(
        "oblivio_unlearn_requests_due_soon", f"Unfinished requests due within {days} days (not yet overdue).",
        labels=["model"],
    )
    counts = _grouped(
        session, UnlearnRequest.model_id,
        where=[UnlearnRequest.status.not_in(TERMINAL_REQUEST_STATUSES), UnlearnRequest.due_at >= now,
               UnlearnRequest.due_at < now + timedelta(days=days)],
    )
    for model in models:
        soon.add_metric([model], counts.get((model,), 0))
    return soon


def _grouped(session: Session, model_id, *columns, where=()) -> dict[tuple[str, ...], int]:
    """Row counts keyed by (model name, *column values as strings)."""
    query = (
        select(Model.name, *columns, func.count())
        .select_from(model_id.class_)
        .join(Model, Model.id == model_id)
        .where(*where)
        .group_by(Model.name, *columns)
    )
    return {tuple(_text(v) for v in row[:-1]): row[-1] for row in session.execute(query)}


def _text(value) -> str:
    return getattr(value, "value", value)
