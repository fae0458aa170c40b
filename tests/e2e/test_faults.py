"""Real failures, real processes: a worker SIGKILLed mid-job, Redis restarted, Postgres unreachable.

After each: every request reaches a terminal state, exactly one version per finished job, and the
audit log verifies.
"""

import os
import shutil
import signal
import socket
import subprocess
import time

import httpx
import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from service.db.models import ModelVersion, UnlearnRequest
from service.db.enums import Role
from tests.e2e.proxy import CuttableProxy
from tests.e2e.stack import free_port, launch
from tests.e2e.test_end_to_end import TINY_GATE, follow, register_demo_data

pytestmark = pytest.mark.integration
GATE_OFF = dict.fromkeys(TINY_GATE)  # the subject here is delivery, not quality
FAST_RECOVERY = {"OBLIVIO_LEASE_SECONDS": "5", "OBLIVIO_OUTBOX_POLL_SECONDS": "0.5", "OBLIVIO_REDISPATCH_SECONDS": "4"}


def wait_running(client, request_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/unlearn-requests/{request_id}").json()
        if body["status"] == "running" and body["job"]["progress"]["step"] > 0:
            return body
        time.sleep(0.05)
    raise AssertionError(f"request never ran: {body}")


def assert_consistent(stack) -> None:
    auditor = stack.client(Role.auditor)
    engine = create_engine(stack.direct_url)
    with Session(engine) as session:
        statuses = dict(session.execute(select(UnlearnRequest.status, func.count()).group_by(UnlearnRequest.status)).all())
        per_job = session.execute(
            select(ModelVersion.created_by_job_id, func.count()).where(ModelVersion.created_by_job_id.is_not(None))
            .group_by(ModelVersion.created_by_job_id)
        ).all()
    engine.dispose()
    assert set(statuses) <= {"completed", "failed", "cancelled", "rejected"}, statuses
    assert all(n == 1 for _, n in per_job), per_job
    assert auditor.get("/audit-events/verify").json()["ok"] is True


def test_worker_killed_mid_job_is_finished_by_another(tmp_path):
    stack = launch("postgres", tmp_path, FAST_RECOVERY)
    try:
        register_demo_data(stack, gate=GATE_OFF)
        officer, auditor = stack.client(Role.officer), stack.client(Role.auditor)
        created = officer.post("/unlearn-requests", json={"model": "tiny", "classes": ["circle"]}).json()
        wait_running(auditor, created["id"])
        stack.processes["worker"].send_signal(signal.SIGKILL)
        stack.processes["worker"].wait()
        stack.start("worker2", "-m", "worker")
        final, _ = follow(auditor, created["id"], timeout=120)
        assert final["status"] == "completed", stack.log_tail()
        assert final["job"]["attempts"] == 2
        versions = auditor.get("/models/tiny/versions").json()
        assert [v["version"] for v in versions] == [1, 2]
        events = auditor.get("/audit-events", params={"subject": f"job:{final['job']['id']}"}).json()["items"]
        assert "job.lease_expired" in [e["action"] for e in events]
        assert_consistent(stack)
    finally:
        stack.stop()


@pytest.fixture
def private_redis(tmp_path):
    """A Redis of the test's own (no persistence, like the machine's), so it can be restarted."""
    assert shutil.which("redis-server"), "redis-server is installed on these machines"
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
               "--dir", str(tmp_path)]

    class Redis:
        url = f"redis://127.0.0.1:{port}/0"

        def start(self):
            self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)
            for _ in range(100):
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        return
                time.sleep(0.05)
            raise RuntimeError("redis did not start")

        def stop(self):
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    redis = Redis()
    redis.start()
    yield redis
    if redis.proc.poll() is None:
        redis.stop()


def test_redis_restart_while_requests_are_queued(tmp_path, private_redis):
    stack = launch("postgres", tmp_path, {**FAST_RECOVERY, "OBLIVIO_BROKER_URL": private_redis.url})
    try:
        register_demo_data(stack, gate=GATE_OFF)
        officer, auditor = stack.client(Role.officer), stack.client(Role.auditor)
        # 1. messages sitting in Redis when it restarts (no persistence) are lost: re-dispatch recovers them
        stack.processes["worker"].send_signal(signal.SIGTERM)
        stack.processes["worker"].wait()
        in_redis = [officer.post("/unlearn-requests", json={"model": "tiny", "samples": [f"tr-stripe-00{i}"]}).json()
                    for i in range(2)]
        time.sleep(1)
        private_redis.stop()
        # 2. submissions while the broker is down still succeed: the outbox keeps them
        during = [officer.post("/unlearn-requests", json={"model": "tiny", "samples": [f"tr-square-00{i}"]})
                  for i in range(2)]
        assert [r.status_code for r in during] == [201, 201]
        assert httpx.get(f"{stack.url}/readyz").status_code == 503
        private_redis.start()
        stack.start("worker-after", "-m", "worker")
        for request in in_redis + [r.json() for r in during]:
            final, _ = follow(auditor, request["id"], timeout=180)
            assert final["status"] == "completed", (final, stack.log_tail())
        versions = auditor.get("/models/tiny/versions").json()
        assert [v["version"] for v in versions] == [1, 2, 3, 4, 5]
        assert_consistent(stack)
    finally:
        stack.stop()


def test_postgres_unreachable_during_submission_and_during_a_job(tmp_path):
    proxy = CuttableProxy(5432)
    stack = launch("postgres", tmp_path, FAST_RECOVERY, db_port=proxy.port)
    try:
        register_demo_data(stack, gate=GATE_OFF)
        officer, auditor = stack.client(Role.officer), stack.client(Role.auditor)
        proxy.cut()
        response = officer.post("/unlearn-requests", json={"model": "tiny", "samples": ["tr-circle-000"]})
        assert response.status_code == 503, response.text
        assert response.json()["error"] == "Unavailable" and int(response.headers["retry-after"]) > 0
        proxy.restore()
        page = auditor.get("/unlearn-requests").json()
        assert page["items"] == [], "nothing was recorded half-way"

        created = officer.post("/unlearn-requests", json={"model": "tiny", "classes": ["square"]}).json()
        wait_running(auditor, created["id"])
        proxy.cut()
        time.sleep(3)
        proxy.restore()
        final, _ = follow(auditor, created["id"], timeout=180)
        assert final["status"] == "completed", (final, stack.log_tail())
        assert [v["version"] for v in auditor.get("/models/tiny/versions").json()] == [1, 2]
        assert_consistent(stack)
    finally:
        stack.stop()
        proxy.cut()


def test_redis_restart_under_running_workers_without_a_supervisor(tmp_path, private_redis):
    """Workers connected while Redis dies and comes back (a job running, others queued) keep serving."""
    stack = launch("postgres", tmp_path, {**FAST_RECOVERY, "OBLIVIO_BROKER_URL": private_redis.url,
                                          "OBLIVIO_WORKER_METRICS_PORT": "0"}, workers=2)
    try:
        register_demo_data(stack, gate=GATE_OFF)
        officer, auditor = stack.client(Role.officer), stack.client(Role.auditor)
        created = [officer.post("/unlearn-requests", json={"model": "tiny", "samples": [f"tr-{label}-00{i}"]}).json()
                   for label in ("circle", "square") for i in range(3)]
        wait_running(auditor, created[0]["id"])
        private_redis.stop()
        time.sleep(2)
        private_redis.start()
        for request in created:
            final, _ = follow(auditor, request["id"], timeout=240)
            assert final["status"] == "completed", (final, stack.log_tail())
        exited = {name: proc.returncode for name, proc in stack.processes.items() if proc.poll() is not None}
        assert exited == {}, (exited, stack.log_tail())
        assert_consistent(stack)
    finally:
        stack.stop()
