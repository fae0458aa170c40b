"""Many concurrent submissions against the real API process: all are recorded, none hangs.

More simultaneous writers than the server's thread pool once deadlocked it (every thread waited
on the audit chain's lock while the lock holder's commit waited for a thread); admission to the
database is now awaited on the event loop, so the excess queues instead.
"""

import asyncio

import httpx
from sqlalchemy import create_engine, func, select

from service.db.enums import Role
from service.db.models import UnlearnRequest
from tests.e2e.stack import CLASSES, launch
from tests.e2e.test_end_to_end import register_demo_data

CLIENTS = 80  # above the 40 threads of the server's pool


def test_more_concurrent_submissions_than_server_threads_all_succeed(tmp_path):
    stack = launch("postgres", tmp_path, workers=0)
    try:
        register_demo_data(stack)
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
