"""Submission validation, idempotency, reading, listing and cancelling requests."""

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from service.db.enums import Role
from service.db.models import Job, OutboxMessage, UnlearnRequest
from service.db.base import utcnow
from service.domain.deadlines import add_months
from service.domain.requests import RUN_JOB_TASK


def submit(api, body, role=Role.officer, **headers):
    return api.client.post("/unlearn-requests", json=body, headers={**api.as_(role), **headers})


def counts(api):
    """Requests, jobs, and job tasks in the outbox (the fixture's model registration queued a validation task)."""
    rows = [select(func.count()).select_from(t) for t in (UnlearnRequest, Job)]
    rows.append(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.task_name == RUN_JOB_TASK))
    return tuple(api.session.scalar(query) for query in rows)


def test_submit_records_request_job_and_outbox_row(api):
    response = submit(api, {"model": "m", "samples": ["tr-cat-000", "tr-dog-001"], "classes": ["fox"]})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "queued"
    assert body["samples"] == ["tr-cat-000", "tr-dog-001"]
    assert body["classes"] == ["fox"]
    assert body["mode"] == "retain_free" and body["method"] == "encoder_l2"
    received = datetime.fromisoformat(body["received_at"])
    assert datetime.fromisoformat(body["due_at"]) == add_months(received, 1)  # GDPR Art. 12(3)
    assert body["job"]["status"] == "queued"
    assert counts(api) == (1, 1, 1)
    job = api.session.get(Job, uuid.UUID(body["job"]["id"]))
    assert job.config["lr"] == 0.001  # the model's defaults travel with the job


def test_every_offending_item_is_named_and_nothing_recorded(api):
    response = submit(
        api, {"model": "m", "samples": ["tr-cat-000", "nope-1", "nope-2", "tr-cat-000"], "classes": ["cat", "unicorn"]}
    )
    assert response.status_code == 422
    detail = response.json()["detail"]
    problems = {(i["field"], i.get("value")): i["problem"] for i in detail["items"]}
    assert ("samples", "nope-1") in problems and ("samples", "nope-2") in problems
    assert ("samples", "tr-cat-000") in problems  # listed twice
    assert ("classes", "unicorn") in problems
    assert "nothing was recorded" in detail["message"]
    assert counts(api) == (0, 0, 0)


def test_unknown_model_and_empty_forget_set_are_422(api):
    unknown = submit(api, {"model": "ghost", "samples": ["tr-cat-000"]})
    assert unknown.status_code == 422
    assert unknown.json()["detail"]["items"][0] == {"field": "model", "value": "ghost", "problem": "unknown model"}
    empty = submit(api, {"model": "m"})
    assert empty.status_code == 422
    assert "empty" in empty.json()["detail"]["items"][0]["problem"]
    assert counts(api) == (0, 0, 0)


def test_schema_errors_are_422_with_locations(api):
    cases = [
        {"model": "m", "samples": "tr-cat-000"},
        {"model": "m", "samples": ["tr-cat-000"], "colour": "red"},
        {"model": "m", "samples": ["tr-cat-000"], "mode": "sometimes"},
        {"model": "m", "samples": ["tr-cat-000"], "config": {"lr": -1}},
        {"model": "m", "samples": ["tr-cat-000"], "config": {"batch_size": 7}},
        {"model": "m", "samples": ["\u0000bad"]},
    ]
    for body in cases:
        response = submit(api, body)
        assert response.status_code == 422, body
        assert response.json()["error"] == "ValidationError"
    as_json = {**api.as_(Role.officer), "content-type": "application/json"}
    assert api.client.post("/unlearn-requests", content=b"{not json", headers=as_json).status_code == 422
    assert api.client.post("/unlearn-requests", content=b"{not json", headers=api.as_(Role.officer)).status_code == 415
    assert counts(api) == (0, 0, 0)


def test_idempotent_replay_and_conflict(api):
    body = {"model": "m", "samples": ["tr-cat-001"], "external_id": "dsr-1"}
    first = submit(api, body)
    again = submit(api, body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert submit(api, {**body, "samples": ["tr-cat-002"]}).status_code == 409
    keyed = {"model": "m", "classes": ["dog"]}
    a = submit(api, keyed, **{"Idempotency-Key": "k-1"})
    b = submit(api, keyed, **{"Idempotency-Key": "k-1"})
    assert a.json()["id"] == b.json()["id"] and b.status_code == 200
    assert submit(api, {"model": "m", "classes": ["fox"]}, **{"Idempotency-Key": "k-1"}).status_code == 409
    assert counts(api) == (2, 2, 2)


def test_get_unknown_is_404_and_bad_uuid_is_422(api):
    response = api.client.get(f"/unlearn-requests/{uuid.uuid4()}", headers=api.as_(Role.auditor))
    assert response.status_code == 404 and response.json()["error"] == "NotFound"
    assert api.client.get("/unlearn-requests/not-a-uuid", headers=api.as_(Role.auditor)).status_code == 422


def test_cancel_before_it_runs_and_409_after_it_finished(api):
    created = submit(api, {"model": "m", "samples": ["tr-fox-000"]}).json()
    cancelled = api.client.post(f"/unlearn-requests/{created['id']}/cancel", headers=api.as_(Role.officer))
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["job"]["status"] == "cancelled"
    again = api.client.post(f"/unlearn-requests/{created['id']}/cancel", headers=api.as_(Role.officer))
    assert again.status_code == 409 and again.json()["error"] == "Conflict"

    done = submit(api, {"model": "m", "samples": ["tr-fox-001"]}).json()
    request = api.session.get(UnlearnRequest, uuid.UUID(done["id"]))
    request.status = "completed"
    api.session.commit()
    assert api.client.post(f"/unlearn-requests/{done['id']}/cancel", headers=api.as_(Role.officer)).status_code == 409


def test_pagination_walks_every_request_once_newest_first(api):
    ids = [submit(api, {"model": "m", "samples": [f"tr-cat-00{i}"]}).json()["id"] for i in range(4)]
    ids += [submit(api, {"model": "m", "classes": [c]}).json()["id"] for c in ("dog", "fox")]
    seen, cursor = [], None
    while True:
        params = {"limit": 4, **({"cursor": cursor} if cursor else {})}
        page = api.client.get("/unlearn-requests", params=params, headers=api.as_(Role.auditor)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    bad = api.client.get("/unlearn-requests", params={"cursor": "garbage"}, headers=api.as_(Role.auditor))
    assert bad.status_code == 400
    for limit in (0, -1, 201, "x"):
        assert api.client.get("/unlearn-requests", params={"limit": limit}, headers=api.as_(Role.auditor)).status_code == 422


def test_filters_by_status_model_and_due_date(api):
    soon = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    early = submit(api, {"model": "m", "samples": ["tr-dog-000"], "due_at": soon}).json()
    late = submit(api, {"model": "m", "samples": ["tr-dog-001"]}).json()
    api.client.post(f"/unlearn-requests/{late['id']}/cancel", headers=api.as_(Role.officer))

    def ids(**params):
        page = api.client.get("/unlearn-requests", params=params, headers=api.as_(Role.officer)).json()
        return {item["id"] for item in page["items"]}

    assert ids(status="cancelled") == {late["id"]}
    assert ids(status="queued") == {early["id"]}
    assert ids(due_before=(datetime.now(UTC) + timedelta(days=5)).isoformat()) == {early["id"]}
    assert ids(model="m") == {early["id"], late["id"]}
    assert ids(model="other") == set()
