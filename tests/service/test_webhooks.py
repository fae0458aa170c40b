"""Webhooks: registration and visibility per key, refused destinations, events written with their change,
signed deliveries verified by a real receiver (retries, failure, replay), and Art. 19 notices to the
keys that downloaded a checkpoint later superseded by an erasure."""

import base64
import json
import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from service.db.base import utcnow
from service.db.enums import DeliveryStatus, Role
from service.db.models import ApiKey, AuditEvent, OutboxMessage, Webhook, WebhookDelivery
from service.domain.live_webhooks import live_webhooks
from service.domain.webhooks import DELIVER_WEBHOOK_TASK, create_webhook, recover_deliveries
from tests.builders import publish_job
from tests.receiver import Receiver
from tests.service.test_edges import assert_json_error
from worker.webhooks import deliver


@pytest.fixture
def local(api):
    """The service lets webhooks reach this machine over http (a receiver on loopback) and retries at once."""
    settings = api.client.app.state.settings
    settings.webhook_allow_http = settings.webhook_allow_private = True
    settings.webhook_backoff_seconds, settings.webhook_max_attempts = 0.001, 3
    return api


def register(api, url: str, events: list[str], role: Role = Role.officer) -> httpx.Response:
    return api.client.post("/webhooks", json={"url": url, "events": events}, headers=api.as_(role))


def run_deliveries(api, receiver: Receiver | None = None) -> list[str]:
    """Do what the worker's task does for every pending delivery until none is left; returns the outcomes."""
    sessions, settings = api.client.app.state.sessions, api.client.app.state.settings
    outcomes = []
    with httpx.Client() as client:
        while ids := api.session.scalars(
            select(WebhookDelivery.id).where(WebhookDelivery.status == DeliveryStatus.pending).order_by(WebhookDelivery.created_at)
        ).all():
            api.session.commit()
            outcomes += [deliver(sessions, settings, i, client).result for i in ids]
            assert len(outcomes) < 50
    api.session.expire_all()
    return outcomes


def submit(api) -> dict:
    created = api.client.post("/unlearn-requests", json={"model": "m", "samples": ["tr-cat-000"]}, headers=api.as_(Role.officer))
    assert created.status_code == 201, created.text
    return created.json()


def test_a_webhook_belongs_to_its_key_its_secret_is_shown_once_and_an_admin_sees_all(local):
    api = local
    created = register(api, "http://127.0.0.1:9/hook", ["request.completed", "request.failed"])
    assert created.status_code == 201, created.text
    hook = created.json()
    assert hook["secret"].startswith("whsec_") and hook["events"] == ["request.completed", "request.failed"]
    listed = api.client.get("/webhooks", headers=api.as_(Role.officer)).json()
    assert [w["id"] for w in listed] == [hook["id"]] and "secret" not in listed[0]
    assert api.client.get("/webhooks", headers=api.as_(Role.auditor)).json() == []
    assert api.client.get(f"/webhooks/{hook['id']}", headers=api.as_(Role.auditor)).status_code == 404
    assert api.client.delete(f"/webhooks/{hook['id']}", headers=api.as_(Role.reviewer)).status_code == 404
    assert [w["id"] for w in api.client.get("/webhooks", headers=api.as_(Role.admin)).json()] == [hook["id"]]
    assert api.client.delete(f"/webhooks/{hook['id']}", headers=api.as_(Role.officer)).status_code == 204
    assert api.client.get(f"/webhooks/{hook['id']}", headers=api.as_(Role.officer)).status_code == 404
    actions = api.session.scalars(select(AuditEvent.action).where(AuditEvent.subject == f"webhook:{hook['id']}")).all()
    assert actions == ["webhook.created", "webhook.deleted"]


@pytest.mark.parametrize(("url", "problem"), [
    ("https://127.0.0.1/hook", "loopback"),
    ("https://localhost:8443/hook", "loopback"),
    ("https://[::1]/hook", "loopback"),
    ("https://[::ffff:10.0.0.7]/hook", "private"),
    ("https://10.1.2.3/hook", "private"),
    ("https://192.168.0.10/hook", "private"),
    ("https://169.254.169.254/latest/meta-data", "link-local"),
    ("https://224.0.0.1/hook", "multicast"),
    ("https://0.0.0.0/hook", "unspecified"),
    ("http://8.8.8.8/hook", "scheme must be https"),
    ("ftp://8.8.8.8/hook", "scheme must be https"),
    ("https://user:pw@8.8.8.8/hook", "credentials"),
    ("https://no-such-host.invalid/hook", "cannot resolve"),
])
def test_refused_destinations_are_422_and_nothing_is_recorded(api, url, problem):
    refused = register(api, url, ["request.completed"])
    assert refused.status_code == 422, refused.text
    assert problem in refused.json()["detail"]["items"][0]["problem"]
    assert api.session.scalar(select(func.count()).select_from(Webhook)) == 0


def test_a_public_https_destination_is_accepted_and_bad_events_are_422(api):
    assert register(api, "https://8.8.8.8/hook", ["version.published"]).status_code == 201
    for events in ([], ["request.exploded"], ["request.received"]):
        assert register(api, "https://8.8.8.8/hook", events).status_code == 422, events


def test_status_changes_are_delivered_signed_and_retried_until_the_receiver_accepts(local):
    api = local
    with Receiver(fail_first=2) as receiver:
        hook = register(api, receiver.url, ["request.queued"]).json()
        receiver.secret = hook["secret"]
        request = submit(api)
        outbox = api.session.scalars(select(OutboxMessage).where(OutboxMessage.task_name == DELIVER_WEBHOOK_TASK)).all()
        assert len(outbox) == 1  # written in the submission's transaction
        assert run_deliveries(api) == ["retry", "retry", "succeeded"]
        payloads = receiver.verified()
    assert [r.status for r in receiver.received] == [500, 500, 200]
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1  # one message, three attempts
    assert payloads[0] == payloads[2] and payloads[0]["type"] == "request.queued"
    assert payloads[0]["data"]["request_id"] == request["id"] and payloads[0]["data"]["model"] == "m"
    [delivery] = api.client.get(f"/webhooks/{hook['id']}/deliveries", headers=api.as_(Role.officer)).json()["items"]
    assert delivery["id"] == receiver.received[0].headers["webhook-id"]
    assert delivery["status"] == "succeeded" and delivery["attempts"] == 3 and delivery["last_status_code"] == 200
    assert [(a["number"], a["status_code"]) for a in delivery["attempt_log"]] == [(1, 500), (2, 500), (3, 200)]
    assert all(a["duration_ms"] > 0 for a in delivery["attempt_log"])


def test_a_delivery_fails_after_its_attempts_and_a_replay_sends_it_again(local):
    api = local
    with Receiver(fail_first=3) as receiver:
        hook = register(api, receiver.url, ["request.queued", "request.cancelled"]).json()
        receiver.secret = hook["secret"]
        request = submit(api)
        assert run_deliveries(api) == ["retry", "retry", "failed"]
        [failed] = api.client.get(f"/webhooks/{hook['id']}/deliveries", headers=api.as_(Role.officer)).json()["items"]
        assert failed["status"] == "failed" and failed["next_attempt_at"] is None
        replay = f"/webhooks/{hook['id']}/deliveries/{failed['id']}/replay"
        assert api.client.post(replay, headers=api.as_(Role.auditor)).status_code == 404  # not its webhook
        replayed = api.client.post(replay, headers=api.as_(Role.officer))
        assert replayed.status_code == 202 and replayed.json()["status"] == "pending"
        assert run_deliveries(api) == ["succeeded"]
        cancelled = api.client.post(f"/unlearn-requests/{request['id']}/cancel", headers=api.as_(Role.officer))
        assert cancelled.status_code == 200
        assert run_deliveries(api) == ["succeeded"]
        payloads = receiver.verified()
    assert [p["type"] for p in payloads] == ["request.queued"] * 4 + ["request.cancelled"]
    queued, cancelled_delivery = (api.client.get(f"/webhooks/{hook['id']}/deliveries", headers=api.as_(Role.officer))
                                  .json()["items"][::-1])
    assert [a["status_code"] for a in queued["attempt_log"]] == [500, 500, 500, 200] and queued["attempts"] == 1
    assert cancelled_delivery["payload"]["data"]["status"] == "cancelled"


def test_a_refused_change_sends_nothing_and_a_deleted_webhook_gets_nothing_more(local):
    api = local
    with Receiver() as receiver:
        hook = register(api, receiver.url, ["request.queued"]).json()
        refused = api.client.post("/unlearn-requests", json={"model": "m", "samples": ["nope"]}, headers=api.as_(Role.officer))
        assert refused.status_code == 422
        assert api.session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0
        submit(api)
        assert api.client.delete(f"/webhooks/{hook['id']}", headers=api.as_(Role.officer)).status_code == 204
        assert run_deliveries(api) == ["failed"]
        submit_second = api.client.post("/unlearn-requests", json={"model": "m", "samples": ["tr-dog-000"]},
                                        headers=api.as_(Role.officer))
        assert submit_second.status_code == 201
        assert run_deliveries(api) == []
    assert receiver.received == []


def test_keys_that_downloaded_a_superseded_checkpoint_are_told_to_delete_it(local):
    api = local
    with Receiver() as holder, Receiver() as bystander:
        holder_hook = register(api, holder.url, ["request.completed"], Role.reviewer).json()  # not subscribed to notices
        holder.secret = holder_hook["secret"]
        bystander.secret = register(api, bystander.url, ["version.published"], Role.auditor).json()["secret"]
        v1 = api.client.get("/models/m/versions/current/checkpoint", headers=api.as_(Role.reviewer))
        assert v1.status_code == 200
        request = submit(api)
        publish_job(api.session, api.client.app.state.store, request["job"]["id"], b"m v2")
        assert sorted(run_deliveries(api)) == ["succeeded"] * 3
        notices = holder.verified()
        published = bystander.verified()
    assert sorted(p["type"] for p in notices) == ["request.completed", "version.superseded"]
    [notice] = [p["data"] for p in notices if p["type"] == "version.superseded"]
    assert notice["model"] == "m" and notice["version"] == 1 and notice["superseded_by_version"] == 2
    assert notice["checkpoint_digest"] == v1.headers["x-checkpoint-sha256"] and "delete" in notice["action"]
    assert [(p["type"], p["data"]["version"]) for p in published] == [("version.published", 2)]
    audit = api.session.scalar(select(AuditEvent).where(AuditEvent.action == "version.holders_notified"))
    reviewer_id = api.session.scalar(select(Webhook.api_key_id).where(Webhook.id == uuid.UUID(holder_hook["id"])))
    assert audit.data["holders"] == [reviewer_id] and audit.data["without_webhook"] == []


def test_a_delivery_whose_message_was_lost_is_queued_again_once_overdue(local):
    api = local
    register(api, "http://127.0.0.1:9/hook", ["request.queued"])
    submit(api)
    delivery = api.session.scalar(select(WebhookDelivery))
    queued = select(func.count()).where(OutboxMessage.task_name == DELIVER_WEBHOOK_TASK)
    assert recover_deliveries(api.session, stale_seconds=600) == 0 and api.session.scalar(queued) == 1
    delivery.next_attempt_at -= timedelta(seconds=601)
    assert recover_deliveries(api.session, stale_seconds=600) == 1 and api.session.scalar(queued) == 2
    assert recover_deliveries(api.session, stale_seconds=600) == 0  # due now: not queued twice


def test_an_unreachable_receiver_is_recorded_as_such_and_the_delivery_fails(local):
    api = local
    with Receiver() as closed:
        url = closed.url  # the port is closed once the receiver stops
    hook = register(api, url, ["request.queued"]).json()
    submit(api)
    assert run_deliveries(api) == ["retry", "retry", "failed"]
    [delivery] = api.client.get(f"/webhooks/{hook['id']}/deliveries", headers=api.as_(Role.officer)).json()["items"]
    assert delivery["status"] == "failed" and delivery["last_status_code"] is None
    assert all(a["status_code"] is None and a["error"].startswith("ConnectError") for a in delivery["attempt_log"])


def test_the_destination_is_checked_again_before_every_attempt(local):
    api = local
    with Receiver() as receiver:
        hook = register(api, receiver.url, ["request.queued"]).json()
        api.client.app.state.settings.webhook_allow_private = False  # as if its name now resolved inward
        submit(api)
        assert run_deliveries(api) == ["retry", "retry", "failed"]
    assert receiver.received == []
    [delivery] = api.client.get(f"/webhooks/{hook['id']}/deliveries", headers=api.as_(Role.officer)).json()["items"]
    assert all(a["error"].startswith("DestinationRefused") and "loopback" in a["error"] for a in delivery["attempt_log"])


def officer_id(api) -> int:
    return api.session.scalar(select(ApiKey.id).where(ApiKey.role == Role.officer))


def queued_for(api, webhook_id) -> list[str]:
    return [p["data"]["request_id"] for p in api.session.scalars(
        select(WebhookDelivery.payload).where(WebhookDelivery.webhook_id == webhook_id).order_by(WebhookDelivery.created_at))]


def test_a_webhook_registered_by_another_process_gets_events_at_the_latest_one_cache_ttl_later(api, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr("service.domain.live_webhooks.time.monotonic", lambda: clock[0])
    ttl = api.client.app.state.live_webhooks.ttl
    submit(api)  # this process now holds the live set: no webhook
    # Another process registers one: the row is committed, this process's cache is not told.
    hook = Webhook(api_key_id=officer_id(api), url="https://8.8.8.8/hook", events=["request.queued"], secret="whsec_x")
    api.session.add(hook)
    api.session.commit()
    submit(api)  # within the TTL: not queued for it
    clock[0] += ttl + 0.01
    after = submit(api)["id"]
    assert queued_for(api, hook.id) == [after]
    assert 0 < ttl <= 5


def test_a_webhook_created_in_a_transaction_that_rolls_back_never_reaches_the_cache(api):
    """The creating session reads around the cache: its uncommitted row must not be offered to other sessions."""
    app = api.client.app
    app.state.live_webhooks.ttl = 3600
    with app.state.sessions() as session:
        key = session.get(ApiKey, officer_id(api))
        created = create_webhook(session, key=key, url="https://8.8.8.8/hook", events=["request.queued"], description="",
                                 settings=app.state.settings)
        assert [w.id for w in live_webhooks(session).subscribed_to("request.queued")] == [created.id]
        session.rollback()
    submit(api)  # a delivery for the rolled-back webhook would break its foreign key
    assert api.session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0


def add_deliveries(api, webhook_id: str, times: list) -> list[WebhookDelivery]:
    rows = [WebhookDelivery(webhook_id=uuid.UUID(webhook_id), event_type="request.queued", payload={"n": n}, created_at=at)
            for n, at in enumerate(times)]
    api.session.add_all(rows)
    api.session.commit()
    return rows


def test_deliveries_page_newest_first_each_once_while_new_ones_arrive(local):
    api, officer = local, local.as_(Role.officer)
    hook, other = (register(api, f"http://127.0.0.1:9/{n}", ["request.queued"]).json()["id"] for n in ("a", "b"))
    base = utcnow().replace(microsecond=0)
    times = [base - timedelta(seconds=n // 3) for n in range(8)]  # threes share a created_at: the id breaks ties
    rows = add_deliveries(api, hook, times)
    add_deliveries(api, other, times[:2])
    expected = [str(d.id) for d in sorted(rows, key=lambda d: (d.created_at, d.id), reverse=True)]

    seen, pages, cursor = [], [], None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = api.client.get(f"/webhooks/{hook}/deliveries", params=params, headers=officer)
        assert page.status_code == 200, page.text
        seen += [d["id"] for d in page.json()["items"]]
        pages.append(len(page.json()["items"]))
        if (cursor := page.json()["next_cursor"]) is None:
            break
        if len(pages) == 1:
            add_deliveries(api, hook, [base + timedelta(seconds=5)])  # newer than the cursor: not on a later page
    assert seen == expected and pages == [3, 3, 2]
    everything = api.client.get(f"/webhooks/{hook}/deliveries", params={"limit": 200}, headers=officer).json()
    assert len(everything["items"]) == 9 and everything["next_cursor"] is None


def test_a_malformed_delivery_cursor_is_refused(local):
    api, officer = local, local.as_(Role.officer)
    hook = register(api, "http://127.0.0.1:9/hook", ["request.queued"]).json()["id"]
    url = f"/webhooks/{hook}/deliveries"
    forged = base64.urlsafe_b64encode(json.dumps(["2026-01-01T00:00:00", str(uuid.uuid4())]).encode()).decode()
    for cursor in ("!!!", "bm90IGpzb24", forged):
        assert_json_error(api.client.get(url, params={"cursor": cursor}, headers=officer), 400, "BadRequest")
    assert_json_error(api.client.get(url, params={"cursor": "A" * 513}, headers=officer), 422, "ValidationError")
    assert_json_error(api.client.get(url, params={"limit": 201}, headers=officer), 422, "ValidationError")
