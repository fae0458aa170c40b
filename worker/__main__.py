"""`python -m worker [celery worker options]`: one process, one job at a time (--pool=solo).

Logs are JSON lines on stderr (Celery's text banner is left out); /metrics is served on
OBLIVIO_WORKER_METRICS_PORT. The process exits 0 only after a requested shutdown (SIGTERM,
SIGINT, SIGQUIT): a worker that stops on its own (a broker error Celery gave up on) exits 1, so a
supervisor's `on-failure` policy restarts it too.
"""

import logging
import sys

from celery.signals import worker_shutting_down

from service.config import get_settings
from service.logs import configure_logging
from service.queue import QUEUE, WEBHOOK_QUEUE
from service.storage import StoreRefused, make_store
from worker.celery_app import make_celery
from worker.metrics import serve_metrics

log = logging.getLogger("oblivio.worker")
UNEXPECTED_EXIT = 1
REFUSED = 5  # like `oblivio serve`: the configuration must change before it can start


def main(argv: list[str]) -> int:
    settings = get_settings()
    configure_logging(settings.log_level)
    try:
        store = make_store(settings)  # an S3 bucket is checked before any job: reachable, and a purge can delete every version
    except StoreRefused as exc:
        log.error("worker not started: %s", exc)
        return REFUSED
    serve_metrics(settings.worker_metrics_port)
    queues = f"{QUEUE},{WEBHOOK_QUEUE}"  # `--queues webhooks` in argv makes a delivery-only worker
    log.info("worker starting: queues %s, one task at a time, device %s", queues, settings.worker_device,
             extra={"queue": queues, "device": settings.worker_device})
    requested: list[str] = []
    worker_shutting_down.connect(lambda sig, how, **_: requested.append(f"{how} shutdown on {sig}"), weak=False)
    app = make_celery(settings, store=store)  # every task uses this store: the bucket is not checked again
    try:
        app.worker_main(["--quiet", "worker", "--pool=solo", "--concurrency=1", f"--queues={queues}",
                         f"--loglevel={settings.log_level}", *argv])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else UNEXPECTED_EXIT
    if code == 0 and not requested:
        log.error("worker stopped without a shutdown request; exiting %d so a supervisor restarts it", UNEXPECTED_EXIT)
        return UNEXPECTED_EXIT
    log.info("worker stopped (%s), exit code %d", requested[0] if requested else "error", code)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
