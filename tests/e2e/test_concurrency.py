"""Concurrency against the real API process: submissions, and cancels racing a worker's claim.

More simultaneous writers than the server's thread pool once deadlocked it (every thread waited
on the audit chain's lock while the lock holder's commit waited for a thread); admission to the
database is now awaited on the event loop, so the excess queues instead. A cancel racing a
worker's claim once deadlocked in Postgres (audit lock vs the job's row lock, taken in opposite
orders); one lock order everywhere (service.domain) makes it impossible.
"""

import asyncio
import random
import time

import httpx
import psycopg
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from service.db.enums import Role
from service.db.models import UnlearnRequest
from tests.builders import validate_model
from tests.conftest import PG_ADMIN
from tests.e2e.stack import CLASSES, launch
from tests.e2e.test_end_to_end import TINY_GATE, follow, register_demo_data

CLIENTS = 80  # above the 40 threads of the server's pool


def settle_without_worker(stack) -> None:
    """No worker runs here: record the base checkpoint's verdict as a worker would."""
    engine = create_engine(stack.direct_url)
    with Session(engine) as session:
        validate_model(session, "tiny")
        session.commit()
    engine.dispose()


def test_more_concurrent_submissions_than_server_threads_all_succeed(tmp_path):
    stack = launch("postgres", tmp_path, workers=0)
    try:
        register_demo_data(stack, settle=settle_without_worker)
        keys = [f"tr-{label}-{i:03d}" for label in CLASSES for i in range(12)]  # register_demo_data's samples
        statuses = asyncio.run(_submit_all(stack, keys))
        assert sorted(statuses) == [201] * CLIENTS, stack.log_tail()
        engine = create_engine(stack.direct_url)
        with engine.connect() as connection:
            assert connection.scalar(select(func.count()).select_from(UnlearnRequest)) == CLIENTS
        engine.dispose()
        assert stack.client(Role.auditor).get("/audit-events/verify").json()["ok"]
    finally:
        stack.stop()


async def _submit_all(stack, keys: list[str]) -> list[int]:
    headers = {"Authorization": f"Bearer {stack.keys[Role.officer]}"}
    limits = httpx.Limits(max_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=stack.url, headers=headers, timeout=25, limits=limits) as client:
        async def one(i: int) -> int:
            body = {"model": "tiny", "samples": [keys[i % len(keys)]]}
            response = await client.post("/unlearn-requests", json=body, headers={"Idempotency-Key": f"load-{i}"})
            return response.status_code

        return await asyncio.gather(*(one(i) for i in range(CLIENTS)))


ROUNDS = 40


def test_cancels_racing_a_worker_claim_never_deadlock(tmp_path):
    stack = launch("postgres", tmp_path, {"OBLIVIO_WORKER_METRICS_PORT": "0"})
    database = stack.direct_url.rsplit("/", 1)[1]
    try:
        register_demo_data(stack, gate=dict.fromkeys(TINY_GATE), per_class=14)
        officer, auditor = stack.client(Role.officer), stack.client(Role.auditor)
        deadlocks_before = _deadlocks(database)
        rng = random.Random(11)
        keys = [f"tr-{label}-{i:03d}" for i in range(14) for label in CLASSES][:ROUNDS]
        created, cancels = [], []
        for key in keys:
            response = officer.post("/unlearn-requests", json={"model": "tiny", "samples": [key], "config": {"steps": 5}})
            assert response.status_code == 201, response.text
            created.append(response.json()["id"])
            time.sleep(rng.uniform(0, 0.08))
            cancels.append(officer.post(f"/unlearn-requests/{created[-1]}/cancel"))
        finals = [follow(auditor, request_id, timeout=120)[0] for request_id in created]
    finally:
        stack.stop()  # backends exit, so their statistics (deadlocks) are flushed
    codes = [c.status_code for c in cancels]
    assert all(code == 200 or (code == 409 and final["status"] == "completed") for code, final in zip(codes, finals)), (
        [(c.status_code, c.text[:200]) for c in cancels if c.status_code != 200], stack.log_tail())
    assert {f["status"] for f in finals} <= {"cancelled", "completed"}, [f["status"] for f in finals]
    assert _deadlocks(database) == deadlocks_before, stack.log_tail()


def _deadlocks(database: str) -> int:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        return conn.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = %s", (database,)).fetchone()[0]
