"""Prometheus metrics of a worker process: job outcomes, durations and optimisation speed.

Each `python -m worker` process serves its own /metrics (OBLIVIO_WORKER_METRICS_PORT, 0 disables);
Prometheus scrapes every worker. The task wrapper records one observation per delivered job.
"""

import logging
import uuid

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest, start_http_server
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.models import Job, ModelVersion
from service.domain.jobs import Claim

log = logging.getLogger("oblivio.worker.metrics")
# Outcomes of a delivery that did not run the job (a duplicate, a held lease, a wait): counted, not timed.
NOT_RUN = frozenset(c.value for c in Claim if c is not Claim.claimed)
JOB_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800)


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.registry = registry
        self.jobs = Counter(
            "oblivio_worker_jobs", "Job deliveries handled, by outcome (published, gate_failed, failed, cancelled, "
            "lease_lost, error; finished, held, model_busy, too_early when the job did not run).",
            ["outcome"], registry=registry,
        )
        self.duration = Histogram(
            "oblivio_worker_job_duration_seconds", "Wall time of jobs that ran: claim, load, unlearn, evaluate, publish.",
            ["outcome"], buckets=JOB_BUCKETS, registry=registry,
        )
        self.steps = Counter("oblivio_worker_steps", "Unlearning optimisation steps taken.", registry=registry)
        self.steps_per_second = Gauge(
            "oblivio_worker_steps_per_second", "Optimisation steps per second of the last published job's unlearning loop.",
            registry=registry,
        )
        self.running = Gauge("oblivio_worker_jobs_running", "1 while this process runs a job.", registry=registry)

    def record(self, outcome: str, *, seconds: float, steps: int, loop_seconds: float | None) -> None:
        self.jobs.labels(outcome).inc()
        if outcome in NOT_RUN:
            return
        self.duration.labels(outcome).observe(seconds)
        self.steps.inc(steps)
        if loop_seconds:
            self.steps_per_second.set(steps / loop_seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def job_stats(session: Session, *, job_id: uuid.UUID) -> tuple[int, float | None]:
    """(steps taken, seconds of the unlearning loop if the job published a version) from the job's rows."""
    steps = session.scalar(select(Job.progress_step).where(Job.id == job_id)) or 0
    summary = session.scalar(select(ModelVersion.metrics).where(ModelVersion.created_by_job_id == job_id))
    return steps, (summary or {}).get("seconds")


def serve_metrics(port: int) -> bool:
    """Expose the process registry on 0.0.0.0:port; a busy port is logged, never fatal to the worker."""
    if not port:
        return False
    try:
        start_http_server(port, registry=REGISTRY)
    except OSError as exc:
        log.warning("worker metrics not served: port %s: %s", port, exc)
        return False
    log.info("worker metrics on :%s/metrics", port)
    return True


JOB_METRICS = WorkerMetrics(REGISTRY)  # the process-wide registry: one worker process, one set of series
