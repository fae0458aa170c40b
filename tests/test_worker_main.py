"""`python -m worker` exits 0 only after a requested shutdown; a worker that stops on its own exits
non-zero, so a supervisor restarts it (a Redis restart once ended workers with code 0)."""

import pytest
from celery.signals import worker_shutting_down

import worker.__main__ as entry
from worker.celery_app import make_celery


class FakeApp:
    def __init__(self, ends):
        self.ends = ends

    def worker_main(self, argv):
        self.ends()


def stops_on_its_own():
    raise SystemExit(0)


def stops_after_sigterm():
    worker_shutting_down.send(sender="celery@test", sig="SIGTERM", how="Warm", exitcode=0)
    raise SystemExit(0)


def returns_quietly():
    return None


def fails():
    raise SystemExit(1)


@pytest.mark.parametrize("ends, code", [(stops_on_its_own, 1), (returns_quietly, 1), (stops_after_sigterm, 0), (fails, 1)])
def test_exit_code_says_whether_the_stop_was_asked_for(monkeypatch, ends, code):
    monkeypatch.setattr(entry, "make_celery", lambda settings, store: FakeApp(ends))
    monkeypatch.setattr(entry, "serve_metrics", lambda port: False)
    assert entry.main([]) == code


def test_the_worker_checks_the_s3_bucket_once_and_every_task_uses_that_store(monkeypatch, tmp_path, s3_endpoint, caplog):
    from service.config import Settings
    from service.db.migrate import upgrade
    from service.domain.validation import VALIDATE_VERSION_TASK
    from tests.s3 import CREDENTIALS, Requests, new_bucket, store_env

    bucket = new_bucket(s3_endpoint, versioned=True)
    for name, value in {**CREDENTIALS, **store_env(s3_endpoint, bucket), "OBLIVIO_HOME": str(tmp_path / "home")}.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    upgrade(settings)
    seen, given = Requests(caplog, bucket), []
    monkeypatch.setattr(entry, "get_settings", lambda: settings)
    monkeypatch.setattr(entry, "make_celery", lambda settings, store: given.append(store) or FakeApp(stops_after_sigterm))
    monkeypatch.setattr(entry, "serve_metrics", lambda port: False)
    monkeypatch.setattr(entry, "configure_logging", lambda level: None)  # its handlers would replace caplog's
    assert entry.main([]) == 0
    [store] = given
    assert store.versioned and [r.split()[0] for r in seen.probes()] == ["PUT", "GET", "DELETE"]
    app = make_celery(settings, store=store)
    for _ in range(2):  # the first task builds the worker's context, with that store
        assert app.tasks[VALIDATE_VERSION_TASK].apply(args=[10**6]).get() == "skipped"  # no such version
    assert len(seen.probes()) == 3
