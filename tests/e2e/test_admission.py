"""Overload against the real API process: past its admission queue it answers 503 + Retry-After at once,
and every request it answered 201 is in the database (nothing accepted is lost)."""

import asyncio
import time

import httpx
from sqlalchemy import create_engine, text

from service.db.enums import Role
from tests.e2e.stack import CLASSES, launch
from tests.e2e.test_concurrency import settle_without_worker
from tests.e2e.test_end_to_end import register_demo_data

CLIENTS = 40


def test_past_the_queue_requests_are_refused_at_once_and_every_accepted_one_is_stored(tmp_path):
    env = {"OBLIVIO_ADMISSION_MAX_IN_FLIGHT": "2", "OBLIVIO_ADMISSION_MAX_QUEUE": "2",
           "OBLIVIO_ADMISSION_WAIT_SECONDS": "30"}
    stack = launch("postgres", tmp_path, env, workers=0)
    try:
        register_demo_data(stack, settle=settle_without_worker)
        keys = [f"tr-{label}-{i:03d}" for label in CLASSES for i in range(12)]
        answers = asyncio.run(_burst(stack, keys))
        accepted = [body["id"] for status, _, _, body in answers if status == 201]
        refused = [(headers, seconds, body) for status, headers, seconds, body in answers if status == 503]
        assert len(accepted) + len(refused) == CLIENTS, [a[0] for a in answers]
        assert len(accepted) >= 4 and len(refused) >= CLIENTS // 2  # 2 in flight + 2 queued at a time
        assert all(h.get("retry-after") and b["error"] == "Unavailable" for h, _, b in refused)
        assert sorted(s for _, s, _ in refused)[len(refused) // 2] < 1.0  # refused at once, not after a wait
        engine = create_engine(stack.direct_url)
        with engine.connect() as connection:
            stored = connection.scalars(text("SELECT CAST(id AS TEXT) FROM unlearn_requests")).all()
        engine.dispose()
        assert sorted(stored) == sorted(accepted)
    finally:
        stack.stop()


async def _burst(stack, keys: list[str]) -> list[tuple[int, dict, float, dict]]:
    headers = {"Authorization": f"Bearer {stack.keys[Role.officer]}"}
    async with httpx.AsyncClient(base_url=stack.url, headers=headers, timeout=60,
                                 limits=httpx.Limits(max_connections=CLIENTS)) as client:
        await client.get("/models")  # the key is cached from here on

        async def one(i: int) -> tuple[int, dict, float, dict]:
            started = time.perf_counter()
            response = await client.post("/unlearn-requests", json={"model": "tiny", "samples": [keys[i % len(keys)]]},
                                         headers={"Idempotency-Key": f"burst-{i}"})
            return response.status_code, dict(response.headers), time.perf_counter() - started, response.json()

        return await asyncio.gather(*(one(i) for i in range(CLIENTS)))
