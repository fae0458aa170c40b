"""The request path's cost: statements per submission (counted by an engine listener, bounded so a
regression shows), the per-process key cache and its revocation, and the admission queue."""

import asyncio
import time
from contextlib import contextmanager

from sqlalchemy import event, func, select, update

from service.api.admission import AdmissionMiddleware
from service.db.base import utcnow
from service.db.enums import Role
from service.db.models import ApiKey, RequestSample, UnlearnRequest, WebhookDelivery

# What one submission may cost, audit log apart: [idempotency look-up] + model (locked) + samples with
# their erasure state + open jobs with their sizes + the request + its samples, and two inserts more
# when it opens a job. Before issue 13 a single-sample submission took 15 (key looked up twice, a
# savepoint, an UPDATE of the row just inserted, two read-backs, one more query per open job).
# The live webhooks its request event is matched against come from the process's cache: no statement.
JOINS, OPENS = 6, 8


@contextmanager
def statements(engine):
    """Statements sent inside the block, less the audit log's own and the test fixture's savepoint pair."""
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)
    savepoints = [s for s in seen if s.startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))]
    assert len(savepoints) == 2, savepoints  # the fixture's, around the request's transaction: the code has none
    seen[:] = [s for s in seen if s not in savepoints and "audit_events" not in s and "pg_advisory" not in s]


def submit(api, body, **headers):
    return api.client.post("/unlearn-requests", json=body, headers={**api.as_(Role.officer), **headers})


def test_a_submission_takes_a_bounded_number_of_statements_whatever_its_size(api, pg_engine):
    api.client.app.state.settings.batch_window_seconds = 3600  # coalescing, as in production
    assert api.client.get("/models", headers=api.as_(Role.officer)).status_code == 200  # the key is cached now
    warm_live_webhooks(api)
    with statements(pg_engine) as opening:
        first = submit(api, {"model": "m", "samples": ["tr-cat-003"]})
    assert first.status_code == 201, first.text
    assert len(opening) <= OPENS, opening
    many = [f"tr-{c}-{i:03d}" for c in ("cat", "dog") for i in range(4) if (c, i) != ("cat", 3)]
    for body, headers in (
        ({"model": "m", "samples": ["tr-cat-000"]}, {}),
        ({"model": "m", "samples": many[1:], "external_id": "x-1"}, {"Idempotency-Key": "k-1"}),
        ({"model": "m", "classes": ["fox"]}, {}),
    ):
        with statements(pg_engine) as seen:
            response = submit(api, body, **headers)
        assert response.status_code == 201, response.text
        assert response.json()["job"]["id"] == first.json()["job"]["id"]  # joined the open job
        assert response.json()["samples"] == body.get("samples", [])
        assert len(seen) <= JOINS, seen
    stored = api.session.scalars(
        select(RequestSample.position).join(UnlearnRequest).where(UnlearnRequest.external_id == "x-1")
        .order_by(RequestSample.position)
    ).all()
    assert stored == list(range(len(many) - 1))


def warm_live_webhooks(api, ttl: float = 3600) -> None:
    """As after the process's first event; a long TTL, so that only a change made here refreshes it."""
    cache = api.client.app.state.live_webhooks
    cache.ttl = ttl
    with api.client.app.state.sessions() as session:
        cache.get(session)


def test_a_webhook_registered_here_gets_the_next_submission_and_submissions_read_no_webhooks(api, pg_engine):
    api.client.app.state.settings.batch_window_seconds = 3600  # no dispatch after the response: one transaction
    warm_live_webhooks(api)
    officer = api.as_(Role.officer)
    hook = api.client.post("/webhooks", json={"url": "https://8.8.8.8/hook", "events": ["request.queued"]},
                           headers=officer).json()
    requests, reads = [], []
    for sample in ("tr-cat-000", "tr-cat-001", "tr-dog-000"):
        with statements(pg_engine) as seen:
            response = submit(api, {"model": "m", "samples": [sample]})
        assert response.status_code == 201, response.text
        requests.append(response.json()["id"])
        reads.append(sum("FROM webhooks" in s for s in seen))
    assert reads == [1, 0, 0]  # the registration emptied the cache: the next submission filled it again
    assert api.client.delete(f"/webhooks/{hook['id']}", headers=officer).status_code == 204
    assert submit(api, {"model": "m", "samples": ["tr-dog-001"]}).status_code == 201
    delivered = api.session.scalars(
        select(WebhookDelivery.payload).where(WebhookDelivery.webhook_id == hook["id"]).order_by(WebhookDelivery.created_at)
    ).all()
    assert [(p["type"], p["data"]["request_id"]) for p in delivered] == [("request.queued", r) for r in requests]


def test_the_response_is_what_a_read_shows(api):
    created = submit(api, {"model": "m", "samples": ["tr-dog-002", "tr-cat-001"], "classes": ["fox"],
                           "config": {"lr": 0.01}})
    assert created.status_code == 201, created.text
    shown = api.client.get(f"/unlearn-requests/{created.json()['id']}", headers=api.as_(Role.auditor)).json()
    assert created.json() == shown


def test_a_cached_key_revoked_here_is_refused_at_once(api):
    made = api.client.post("/api-keys", headers=api.as_(Role.admin), json={"name": "tmp", "role": "officer"}).json()
    own = {"X-API-Key": made["key"]}
    assert api.client.get("/models", headers=own).status_code == 200  # now cached
    api.client.post(f"/api-keys/{made['id']}/revoke", headers=api.as_(Role.admin)).raise_for_status()
    assert api.client.get("/models", headers=own).status_code == 401
    assert api.client.post("/unlearn-requests", json={"model": "m", "samples": ["tr-cat-000"]}, headers=own).status_code == 401


def test_a_key_revoked_by_another_process_is_refused_once_its_cache_entry_expires(api, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr("service.domain.auth.time.monotonic", lambda: clock[0])
    ttl = api.client.app.state.key_cache.ttl
    made = api.client.post("/api-keys", headers=api.as_(Role.admin), json={"name": "tmp", "role": "auditor"}).json()
    own = {"X-API-Key": made["key"]}
    assert api.client.get("/models", headers=own).status_code == 200
    # Another API process revokes it: the row changes, this process's cache is not told.
    api.session.execute(update(ApiKey).where(ApiKey.id == made["id"]).values(revoked_at=utcnow()))
    api.session.commit()
    assert api.client.get("/models", headers=own).status_code == 200  # served from the cache, within its TTL
    clock[0] += ttl + 0.01
    assert api.client.get("/models", headers=own).status_code == 401
    assert 0 < ttl <= 5


def test_admission_refuses_at_once_beyond_the_queue_and_completes_what_it_admitted():
    async def scenario() -> None:
        gate, finished = asyncio.Event(), []

        async def slow_app(scope, receive, send):
            await gate.wait()
            await send({"type": "http.response.start", "status": 201, "headers": []})
            await send({"type": "http.response.body", "body": b"{}"})
            finished.append(scope["path"])

        admission = AdmissionMiddleware(slow_app, max_in_flight=2, max_queue=2, wait_seconds=5)

        async def call(path: str) -> tuple[int, dict, float]:
            sent: list[dict] = []

            async def send(message):
                sent.append(message)

            async def receive():
                return {"type": "http.request", "body": b"", "more_body": False}

            started = time.perf_counter()
            await admission({"type": "http", "method": "POST", "path": path, "headers": []}, receive, send)
            head = sent[0]
            return head["status"], dict(head["headers"]), time.perf_counter() - started

        admitted = [asyncio.create_task(call(f"/a{i}")) for i in range(4)]  # 2 in flight, 2 queued
        await asyncio.sleep(0.05)
        refused = await asyncio.gather(*(call(f"/r{i}") for i in range(5)))
        assert all(status == 503 and headers[b"retry-after"] == b"5" for status, headers, _ in refused)
        assert max(elapsed for _, _, elapsed in refused) < 0.1
        assert call_count(admission) == (2, 2)
        gate.set()
        assert [status for status, _, _ in await asyncio.gather(*admitted)] == [201] * 4
        assert sorted(finished) == ["/a0", "/a1", "/a2", "/a3"] and call_count(admission) == (0, 0)

        gate.clear()
        admission.interval = 2.0  # recently one request finished every 2 s: 2 s per place in the queue
        holding = [asyncio.create_task(call(f"/c{i}")) for i in range(3)]  # 2 in flight, 1 queued (expects 2 s < 5/2)
        await asyncio.sleep(0.05)
        status, headers, elapsed = await call("/c3")  # would wait 4 s > 5/2: refused at once though the queue has room
        assert status == 503 and elapsed < 0.1 and call_count(admission) == (2, 1)
        gate.set()
        assert [s for s, _, _ in await asyncio.gather(*holding)] == [201] * 3

        gate.clear()
        short = AdmissionMiddleware(slow_app, max_in_flight=1, max_queue=1, wait_seconds=0.2)
        admission = short
        running = asyncio.create_task(call("/b0"))
        await asyncio.sleep(0.01)
        status, _, waited = await call("/b1")  # queued, then its wait ran out
        assert status == 503 and 0.2 <= waited < 1
        gate.set()
        assert (await running)[0] == 201 and call_count(short) == (0, 0)

    asyncio.run(scenario())


def call_count(admission: AdmissionMiddleware) -> tuple[int, int]:
    return admission.in_flight, len(admission.waiting)


def test_a_refusal_by_the_admission_queue_is_a_json_problem(api):
    admission = _find(api.client.app.middleware_stack, AdmissionMiddleware)
    admission.in_flight, admission.max_queue = admission.max_in_flight, 0  # as if full
    try:
        refused = submit(api, {"model": "m", "samples": ["tr-cat-000"]})
        assert api.client.get("/healthz").status_code == 200  # probes bypass the queue
    finally:
        admission.in_flight = 0
    assert refused.status_code == 503 and refused.headers["retry-after"] == "4"
    assert refused.json()["error"] == "Unavailable" and refused.json()["request_id"]
    assert api.session.scalar(select(func.count()).select_from(UnlearnRequest)) == 0


def _find(app, kind):
    while not isinstance(app, kind):
        app = app.app
    return app


def test_serve_runs_one_api_process_per_cpu_on_postgres_and_one_on_sqlite(tmp_path):
    import os

    from service.cli.operations import api_workers
    from service.config import Settings

    postgres = Settings(database_url="postgresql+psycopg://x@127.0.0.1/x", home=tmp_path)
    assert api_workers(postgres, None) == len(os.sched_getaffinity(0))
    assert api_workers(postgres, 3) == 3
    assert api_workers(Settings(database_url="postgresql+psycopg://x@127.0.0.1/x", home=tmp_path, api_workers=2), None) == 2
    assert api_workers(Settings(home=tmp_path), None) == 1


def test_the_same_path_on_sqlite(tmp_path):
    """Embedded mode: IN lists instead of ANY, executemany instead of unnest, the same answers."""
    from fastapi.testclient import TestClient

    from service.config import Settings
    from service.db.enums import DatasetKind
    from service.db.migrate import upgrade
    from service.main import create_app
    from tests.builders import make_dataset, make_key, tiny_checkpoint, validate_model, write_samples

    settings = Settings(home=tmp_path / "home", data_roots=[tmp_path / "data"], batch_window_seconds=3600,
                        outbox_poll_seconds=3600, register_wait_seconds=0)
    upgrade(settings)
    app = create_app(settings)
    with app.state.sessions() as session:
        officer, admin = make_key(session, Role.officer), make_key(session, Role.admin)
        make_dataset(session, "train", DatasetKind.training, write_samples(tmp_path / "data", "tr", ["cat", "dog"], 3),
                     settings.data_roots)
        make_dataset(session, "proxy", DatasetKind.proxy, write_samples(tmp_path / "data", "px", ["cat"], 2),
                     settings.data_roots)
        session.commit()
    with TestClient(app) as client:
        client.post("/models", headers={"Authorization": f"Bearer {admin}"},
                    data={"spec": '{"name": "m", "training_dataset": "train", "proxy_dataset": "proxy"}'},
                    files={"checkpoint": ("m.safetensors", tiny_checkpoint())}).raise_for_status()
        with app.state.sessions() as session:
            validate_model(session, "m")
            session.commit()
        as_officer = {"Authorization": f"Bearer {officer}", "Idempotency-Key": "k"}
        body = {"model": "m", "samples": ["tr-dog-002", "tr-cat-000"], "classes": ["cat"]}
        first = client.post("/unlearn-requests", json=body, headers=as_officer)
        again = client.post("/unlearn-requests", json=body, headers=as_officer)
        other = client.post("/unlearn-requests", json={"model": "m", "samples": ["tr-cat-001"]}, headers=as_officer)
        joined = client.post("/unlearn-requests", json={"model": "m", "samples": ["tr-cat-001"]},
                             headers={"Authorization": f"Bearer {officer}"})
        unknown = client.post("/unlearn-requests", json={"model": "m", "samples": ["nope"]},
                              headers={"Authorization": f"Bearer {officer}"})
        shown = client.get(f"/unlearn-requests/{first.json()['id']}", headers={"Authorization": f"Bearer {admin}"})
    assert first.status_code == 201 and again.status_code == 200 and again.json() == first.json() == shown.json()
    assert first.json()["samples"] == ["tr-dog-002", "tr-cat-000"]
    assert other.status_code == 409  # same key, another body
    assert joined.status_code == 201 and joined.json()["job"]["id"] == first.json()["job"]["id"]
    assert unknown.status_code == 422 and unknown.json()["detail"]["items"][0]["value"] == "nope"
