"""`python -m worker [celery worker options]`: one process, one job at a time (--pool=solo).

Logs are JSON lines on stderr (Celery's text banner is left out); /metrics is served on
OBLIVIO_WORKER_METRICS_PORT.
"""

import logging
import sys

from service.config import get_settings
from service.logs import configure_logging
from service.queue import QUEUE
from worker.celery_app import make_celery
from worker.metrics import serve_metrics

log = logging.getLogger("oblivio.worker")


def main(argv: list[str]) -> None:
    settings = get_settings()
    configure_logging(settings.log_level)
    serve_metrics(settings.worker_metrics_port)
    log.info("worker starting: queue %s, one job at a time, device %s", QUEUE, settings.worker_device,
             extra={"queue": QUEUE, "device": settings.worker_device})
    app = make_celery(settings)
    app.worker_main(["--quiet", "worker", "--pool=solo", "--concurrency=1", f"--queues={QUEUE}",
                     f"--loglevel={settings.log_level}", *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
