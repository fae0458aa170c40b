"""`python -m worker` exits 0 only after a requested shutdown; a worker that stops on its own exits
non-zero, so a supervisor restarts it (a Redis restart once ended workers with code 0)."""

import pytest
from celery.signals import worker_shutting_down

import worker.__main__ as entry


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
    monkeypatch.setattr(entry, "make_celery", lambda settings: FakeApp(ends))
    monkeypatch.setattr(entry, "serve_metrics", lambda port: False)
    assert entry.main([]) == code
