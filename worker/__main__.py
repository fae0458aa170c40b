"""`python -m worker [celery worker options]`: one process, one job at a time (--pool=solo)."""

import sys

from service.config import get_settings
from service.logs import configure_logging
from worker.celery_app import make_celery


def main(argv: list[str]) -> None:
    settings = get_settings()
    configure_logging(settings.log_level)
    app = make_celery(settings)
    app.worker_main(["worker", "--pool=solo", "--concurrency=1", "--queues=unlearn", f"--loglevel={settings.log_level}", *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
