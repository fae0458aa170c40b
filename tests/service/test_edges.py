"""Every datetime and path-parameter edge is a JSON 4xx; an unexpected error is a JSON 500 with its request id."""

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from service.api import jobs as jobs_api
from service.db.enums import Role


def submit(api, body, role=Role.officer):
    return api.client.post("/unlearn-requests", json=body, headers=api.as_(role))


def assert_json_error(response, status: int, kind: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"] == kind and body["request_id"] == response.headers["x-request-id"]
    return body


@pytest.mark.parametrize(
    ("due_at", "problem"),
    [
        ("2026-07-01T00:00:00", "must include a timezone"),
        ("2026-07-01", "must include a timezone"),
        ("0001-01-01T00:00:00+01:00", "out of range once converted to UTC"),
        ("9999-12-31T23:59:59-01:00", "out of range once converted to UTC"),
    ],
)
def test_due_at_without_offset_or_out_of_range_is_422(api, due_at, problem):
    body = assert_json_error(submit(api, {"model": "m", "samples": ["tr-cat-000"], "due_at": due_at}), 422, "ValidationError")
    [item] = body["detail"]["items"]
    assert item["loc"] == ["body", "due_at"] and problem in item["msg"]


def test_due_at_lies_after_receipt_and_within_the_legal_month(api):
    now = datetime.now(UTC)
    for due in (now - timedelta(days=1), now + timedelta(days=32), datetime(9999, 12, 31, 23, 59, tzinfo=UTC)):
        body = assert_json_error(submit(api, {"model": "m", "samples": ["tr-cat-000"], "due_at": due.isoformat()}), 422, "Unprocessable")
        assert [i["field"] for i in body["detail"]["items"]] == ["due_at"]
    local = (now + timedelta(days=20)).astimezone(timezone(timedelta(hours=2)))
    created = submit(api, {"model": "m", "samples": ["tr-cat-000"], "due_at": local.isoformat()})
    assert created.status_code == 201, created.text
    stored = datetime.fromisoformat(created.json()["due_at"])
    assert stored == local and stored.utcoffset() == timedelta(0)


def test_due_before_takes_a_date_or_a_time_as_utc(api):
    due = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0) + timedelta(days=10)
    request_id = submit(api, {"model": "m", "samples": ["tr-cat-000"], "due_at": due.isoformat()}).json()["id"]
    auditor = api.as_(Role.auditor)
    cases = {
        due.date().isoformat(): False,  # midnight UTC of the due day: before noon
        (due.date() + timedelta(days=1)).isoformat(): True,
        (due + timedelta(minutes=1)).replace(tzinfo=None).isoformat(): True,  # no offset: UTC
        (due - timedelta(minutes=1)).replace(tzinfo=None).isoformat(): False,
        (due + timedelta(minutes=1)).astimezone(timezone(timedelta(hours=-5))).isoformat(): True,
    }
    for bound, listed in cases.items():
        response = api.client.get("/unlearn-requests", params={"due_before": bound}, headers=auditor)
        assert response.status_code == 200, (bound, response.text)
        assert (request_id in {r["id"] for r in response.json()["items"]}) is listed, bound
    for bound in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2026-13-01", "soon"):
        response = api.client.get("/unlearn-requests", params={"due_before": bound}, headers=auditor)
        assert_json_error(response, 422, "ValidationError")


def _cursor(value) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_forged_cursors_are_400(api):
    rid = str(uuid.uuid4())
    forged = [
        _cursor(["0001-01-01T00:00:00+01:00", rid]),
        _cursor(["9999-12-31T23:59:59-01:00", rid]),
        _cursor(["0001-01-01T00:00:00+00:00", 5]),
        _cursor(["2026-01-01T00:00:00", rid]),
        _cursor(["2026-01-01T00:00:00+00:00", "not-a-uuid"]),
        _cursor([1, 2]),
        _cursor({"a": 1, "b": 2}),
        _cursor([]),
        _cursor([[[[]]]]),
        _cursor(b"\xff\xfe\x00"),
        "!!!",
        "²",
    ]
    for cursor in forged:
        response = api.client.get("/unlearn-requests", params={"cursor": cursor}, headers=api.as_(Role.auditor))
        assert_json_error(response, 400, "BadRequest")
    year_one = _cursor(["0001-01-01T00:00:00+00:00", rid])
    response = api.client.get("/unlearn-requests", params={"cursor": year_one}, headers=api.as_(Role.auditor))
    assert response.status_code == 200 and response.json()["items"] == []  # a real instant before every request


@pytest.mark.parametrize("ref", ["²", "١", "1²", "٣", "𝟏", "99999999999999999999", "-1", "1.0", "+1", "0x1", "1 "])
def test_version_refs_that_are_not_ascii_numbers_are_404(api, ref):
    admin = api.as_(Role.admin)
    assert_json_error(api.client.get(f"/models/m/versions/{ref}/checkpoint", headers=admin), 404, "NotFound")
    assert_json_error(api.client.post(f"/models/m/versions/{ref}/promote", headers=admin), 404, "NotFound")


def test_version_one_and_current_still_resolve(api):
    for ref in ("1", "current"):
        assert api.client.get(f"/models/m/versions/{ref}/checkpoint", headers=api.as_(Role.auditor)).status_code == 200


def test_huge_integers_are_422_not_database_errors(api):
    admin = api.as_(Role.admin)
    for key_id in ("2147483648", "99999999999999999999", "0", "-1", "²"):
        body = assert_json_error(api.client.post(f"/api-keys/{key_id}/revoke", headers=admin), 422, "ValidationError")
        assert body["detail"]["items"][0]["loc"] == ["path", "key_id"]
    for params in ({"after": str(2**70)}, {"limit": str(2**70)}, {"after": "²"}):
        assert_json_error(api.client.get("/audit-events", params=params, headers=admin), 422, "ValidationError")


def test_an_unexpected_error_is_a_json_500_with_the_request_id(api, monkeypatch):
    def broken(*_, **__):
        raise RuntimeError("a bug")

    monkeypatch.setattr(jobs_api, "get_job", broken)
    response = api.client.get(f"/jobs/{uuid.uuid4()}", headers=api.as_(Role.auditor))
    body = assert_json_error(response, 500, "InternalError")
    assert "a bug" not in response.text and "request id" in body["detail"]
    traced = api.client.get(f"/jobs/{uuid.uuid4()}", headers={**api.as_(Role.auditor), "X-Request-ID": "trace-42"})
    assert assert_json_error(traced, 500, "InternalError")["request_id"] == "trace-42"


def test_every_error_carries_the_request_id(api):
    for response in (
        api.client.get("/models/nope", headers=api.as_(Role.auditor)),
        api.client.get("/models"),
        api.client.get("/unlearn-requests", params={"limit": 0}, headers=api.as_(Role.auditor)),
        api.client.get("/no-such-path"),
    ):
        assert response.json()["request_id"] == response.headers["x-request-id"]


def test_an_empty_idempotency_key_is_422_every_time(api):
    for _ in range(2):
        response = api.client.post(
            "/unlearn-requests", json={"model": "m", "samples": ["tr-cat-000"]},
            headers={**api.as_(Role.officer), "Idempotency-Key": ""},
        )  # fmt: skip
        body = assert_json_error(response, 422, "ValidationError")
        assert body["detail"]["items"][0]["loc"] == ["header", "Idempotency-Key"]
