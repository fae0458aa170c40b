"""Broker configuration shared by producer and worker, and the outbox dispatcher.

The API never sends to the broker inside a transaction: a submission commits an outbox row with
the request and its job; the dispatcher sends committed rows by task name and marks them sent.
A broker outage leaves rows unsent, and they go out when it is back. A message may be sent twice
(crash between send and mark); the worker's claim makes that harmless.
"""

import logging
import threading
from typing import Any

from celery import Celery
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.db.base import utcnow
from service.db.models import Job, OutboxMessage
from service.domain.dispatch import recover_jobs
from service.domain.requests import RUN_JOB_TASK
from service.domain.webhooks import DELIVER_WEBHOOK_TASK, LOST_AFTER_SECONDS, recover_deliveries

QUEUE = "unlearn"
# Deliveries have their own queue: a worker started with `--queues webhooks` sends them while
# unlearning workers are busy with long jobs (the default worker consumes both).
WEBHOOK_QUEUE = "webhooks"
log = logging.getLogger("oblivio.queue")


def celery_config(settings: Settings) -> dict[str, Any]:
    conf: dict[str, Any] = {
        "broker_url": settings.broker_url,
        "task_default_queue": QUEUE,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_ignore_result": True,
        # A broker restart must not end a worker: reconnect for as long as it takes. The running job
        # (solo pool) is not interrupted on connection loss; its lease in the database guards it, and a
        # redelivery of its message is answered `held` by the claim.
        "broker_connection_retry": True,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        "broker_channel_error_retry": True,  # a Redis still loading its data answers with channel errors
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "worker_hijack_root_logger": False,
    }
    if settings.broker_url.startswith("filesystem"):
        folder = settings.broker_folder
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        conf["broker_transport_options"] = {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "store_processed": False,
            "control_folder": str(folder / "control"),
        }
    elif settings.broker_url.startswith("redis"):
        # A job may run longer than Redis' default one-hour visibility timeout; leases guard the rest.
        # Keepalive and health checks find a half-dead connection (a restarted Redis) before a send does.
        conf["broker_transport_options"] = {"visibility_timeout": 6 * 3600, "socket_connect_timeout": 3,
                                            "socket_keepalive": True, "health_check_interval": 10}
    return conf


def queue_of(task_name: str) -> str:
    return WEBHOOK_QUEUE if task_name == DELIVER_WEBHOOK_TASK else QUEUE


def make_producer(settings: Settings) -> Celery:
    app = Celery("oblivio-producer")
    app.conf.update(celery_config(settings))
    return app


class Dispatcher:
    """Sends committed outbox rows to the broker."""

    def __init__(self, producer: Celery, sessions: sessionmaker[Session]):
        self.producer = producer
        self.sessions = sessions
        self._lock = threading.Lock()

    def dispatch_pending(self, limit: int = 100) -> int:
        """Send unsent rows whose job is due (its batching window closed); returns how many went out.

        Lock order (service.domain): the rows' jobs, then the outbox rows, both with SKIP LOCKED,
        so the dispatcher never waits for a lock; a row whose job is locked (being claimed or
        ended) goes out on a later pass.
        """
        now = utcnow()
        with self._lock, self.sessions() as session:
            due = session.execute(
                select(OutboxMessage.id, OutboxMessage.job_id)
                .outerjoin(Job, Job.id == OutboxMessage.job_id)
                .where(OutboxMessage.sent_at.is_(None))
                .where(or_(OutboxMessage.job_id.is_(None), Job.not_before.is_(None), Job.not_before <= now))
                .order_by(OutboxMessage.id)
                .limit(limit)
            ).all()
            job_ids = sorted({job_id for _, job_id in due if job_id is not None})
            held = set(session.scalars(
                select(Job.id).where(Job.id.in_(job_ids)).order_by(Job.id).with_for_update(skip_locked=True, key_share=True)
            )) if job_ids else set()
            rows = list(session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.id.in_([i for i, job_id in due if job_id is None or job_id in held]))
                .where(OutboxMessage.sent_at.is_(None))
                .order_by(OutboxMessage.id)
                .with_for_update(skip_locked=True)
            ))
            sent = 0
            for row in rows:
                row.attempts += 1
                try:
                    self.producer.send_task(row.task_name, kwargs=row.payload, queue=queue_of(row.task_name), retry=False)
                except Exception as exc:  # broker down: keep the row, try again later
                    log.warning("broker unavailable, outbox row %s kept: %s", row.id, exc)
                    break
                row.sent_at = utcnow()
                if row.job_id is not None:
                    session.execute(update(Job).where(Job.id == row.job_id).values(last_dispatched_at=row.sent_at))
                sent += 1
            session.commit()
            return sent

    def recover(self, redispatch_seconds: float) -> int:
        with self.sessions() as session:
            count = recover_jobs(session, redispatch_seconds=redispatch_seconds, task_name=RUN_JOB_TASK)
            count += recover_deliveries(session, stale_seconds=max(redispatch_seconds, LOST_AFTER_SECONDS))
            session.commit()
            return count

    def run_forever(self, stop: threading.Event, interval: float, redispatch_seconds: float) -> None:
        while not stop.wait(interval):
            try:
                self.recover(redispatch_seconds)
                self.dispatch_pending()
            except Exception:
                log.exception("outbox dispatch failed")
