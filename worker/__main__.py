"""`python -m worker [celery worker options]`: one process, one job at a time (--pool=solo)."""

import sys

from service.config import get_settings
from service.logs import configure_logging
from worker.celery_app import make_celery
from worker.metrics import serve_metrics


def main(argv: list[str]) -> None:
    settings = get_settings()
    configure_logging(settings.log_level)
    serve_metrics(settings.worker_metrics_port)
    app = make_celery(settings)
    app.worker_main(["worker", "--pool=solo", "--concurrency=1", "--queues=unlearn", f"--loglevel={settings.log_level}", *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
