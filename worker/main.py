"""Module-level Celery app for the `celery` command line (`celery -A worker.main:app ...`, Flower)."""

from service.config import get_settings
from worker.celery_app import make_celery

app = make_celery(get_settings())
