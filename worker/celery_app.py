"""make_celery(settings): the Celery app of the worker, queue `unlearn`, one job at a time."""

from celery import Celery

from service.config import Settings
from service.queue import celery_config
from worker.tasks import register_tasks


def make_celery(settings: Settings) -> Celery:
    app = Celery("oblivio")
    app.conf.update(celery_config(settings))
    register_tasks(app, settings)
    return app
