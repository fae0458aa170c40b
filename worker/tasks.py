"""Thin task: load nothing but the job id, hand over to the pipeline, retry only transient errors."""

import uuid

from celery import Celery
from sqlalchemy.exc import OperationalError

from service.config import Settings
from service.domain.jobs import Claim
from service.domain.requests import RUN_JOB_TASK
from worker.pipeline import WorkerContext, run_job

BUSY_RETRY_SECONDS = 5


def register_tasks(app: Celery, settings: Settings) -> None:
    context: list[WorkerContext] = []  # built on first use, inside the worker process

    @app.task(
        name=RUN_JOB_TASK,
        bind=True,
        autoretry_for=(OperationalError,),
        retry_backoff=2,
        retry_backoff_max=120,
        retry_jitter=True,
        max_retries=20,
    )
    def run_job_task(self, job_id: str) -> str:
        if not context:
            context.append(WorkerContext.from_settings(settings))
        outcome = run_job(context[0], uuid.UUID(job_id))
        if outcome == Claim.model_busy:
            raise self.retry(countdown=BUSY_RETRY_SECONDS, max_retries=None)
        return str(outcome)
