"""Thin task: load nothing but the job id, hand over to the pipeline, retry only transient errors.

A job that cannot run yet (its model is busy, its window still open) is not sent back through the
broker: it stays queued in the database and is sent again when its model is free
(service.domain.dispatch). Every log line of a job carries its id, and each delivery is counted
and timed in the worker's metrics.
"""

import logging
import time
import uuid

import httpx
from celery import Celery
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from service.config import Settings
from service.db.session import make_engine, make_sessionmaker
from service.domain.requests import RUN_JOB_TASK
from service.domain.validation import VALIDATE_VERSION_TASK
from service.domain.webhooks import DELIVER_WEBHOOK_TASK
from service.logs import log_context
from service.queue import WEBHOOK_QUEUE
from service.storage import ArtifactStore, StoreUnavailable
from worker.metrics import JOB_METRICS, NOT_RUN, job_stats
from worker.pipeline import WorkerContext, run_job
from worker.validation import validate_version
from worker.webhooks import deliver

log = logging.getLogger("oblivio.worker")


def register_tasks(app: Celery, settings: Settings, *, store: ArtifactStore | None = None) -> None:
    context: list[WorkerContext] = []  # built on first use, inside the worker process, with `store` if given

    @app.task(
        name=RUN_JOB_TASK,
        autoretry_for=(OperationalError, StoreUnavailable),
        retry_backoff=2,
        retry_backoff_max=120,
        retry_jitter=True,
        max_retries=20,
    )
    def run_job_task(job_id: str) -> str:
        if not context:
            context.append(WorkerContext.from_settings(settings, producer=app, store=store))
        with log_context(job_id=job_id):
            log.info("job %s delivered", job_id)  # one line per broker delivery (benchmarks/soak.py counts them)
            return _observed_run(context[0], uuid.UUID(job_id))

    @app.task(name=VALIDATE_VERSION_TASK, autoretry_for=(OperationalError, StoreUnavailable), retry_backoff=2, max_retries=20)
    def validate_version_task(version_id: int) -> str:
        if not context:
            context.append(WorkerContext.from_settings(settings, producer=app, store=store))
        return validate_version(context[0], version_id)

    senders: list = []  # (sessions, HTTP client), built on first use: a delivery-only worker needs no torch context

    @app.task(name=DELIVER_WEBHOOK_TASK, autoretry_for=(OperationalError,), retry_backoff=2, max_retries=20)
    def deliver_webhook_task(delivery_id: str) -> str:
        if not senders:
            senders.append((make_sessionmaker(make_engine(settings)), httpx.Client(follow_redirects=False)))
        sessions, client = senders[0]
        outcome = deliver(sessions, settings, uuid.UUID(delivery_id), client)
        if outcome.retry_in is not None:
            try:
                deliver_webhook_task.apply_async(kwargs={"delivery_id": delivery_id}, countdown=outcome.retry_in,
                                                 queue=WEBHOOK_QUEUE, retry=False)
            except BrokerError as exc:  # the API's sweep sends it again once it is overdue
                log.warning("retry of webhook delivery %s not scheduled: %s", delivery_id, exc)
        return outcome.result


def _observed_run(ctx: WorkerContext, job_id: uuid.UUID) -> str:
    started = time.perf_counter()
    with JOB_METRICS.running.track_inprogress():
        try:
            outcome = str(run_job(ctx, job_id))
        except Exception:
            JOB_METRICS.record("error", seconds=time.perf_counter() - started, steps=0, loop_seconds=None)
            raise
    seconds = time.perf_counter() - started
    if outcome in NOT_RUN:
        JOB_METRICS.record(outcome, seconds=seconds, steps=0, loop_seconds=None)
        return outcome
    steps, loop_seconds = _stats(ctx, job_id)
    JOB_METRICS.record(outcome, seconds=seconds, steps=steps, loop_seconds=loop_seconds)
    log.info("job %s: %s after %.1f s, %d steps", job_id, outcome, seconds, steps,
             extra={"outcome": outcome, "seconds": round(seconds, 3), "steps": steps})
    return outcome


def _stats(ctx: WorkerContext, job_id: uuid.UUID) -> tuple[int, float | None]:
    try:
        with ctx.sessions() as session:
            return job_stats(session, job_id=job_id)
    except SQLAlchemyError as exc:  # metrics must never turn a finished job into a retry
        log.warning("job metrics not recorded: %s", exc)
        return 0, None
