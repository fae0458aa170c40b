"""make_celery(settings): the Celery app of the worker, queue `unlearn`, one job at a time."""

from celery import Celery

from service.config import Settings
from service.queue import celery_config
from service.storage import ArtifactStore
from worker.tasks import register_tasks


def make_celery(settings: Settings, *, store: ArtifactStore | None = None) -> Celery:
    """`store`: the one the process checked at start-up, used by every task (else built, and checked, at the first)."""
    app = Celery("oblivio")
    app.conf.update(celery_config(settings))
    register_tasks(app, settings, store=store)
    return app
