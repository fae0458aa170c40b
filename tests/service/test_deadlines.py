"""GDPR Art. 12(3) deadlines: due one month after receipt, extended once by up to two months with a
reason (audit log, request view, receipt), overdue and soon-due requests counted in /metrics."""

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from service.audit.receipt import verify_document
from service.audit.signing import load_public_pem
from service.cli.output import details
from service.db.enums import Role
from service.db.models import AuditEvent, UnlearnRequest
from service.domain.deadlines import add_months, urgency
from tests.service.test_metrics import scrape, value
from tests.service.test_receipts import run_coalesced_job


def submit(api, body: dict) -> dict:
    response = api.client.post("/unlearn-requests", json=body, headers=api.as_(Role.officer))
    assert response.status_code == 201, response.text
    return response.json()


def extend(api, request_id: str, role: Role = Role.officer, **body):
    return api.client.post(f"/unlearn-requests/{request_id}/extension", json=body, headers=api.as_(role))


@pytest.mark.parametrize(("start", "months", "expected"), [
    (datetime(2026, 1, 31, 9, 30, tzinfo=UTC), 1, datetime(2026, 2, 28, 9, 30, tzinfo=UTC)),
    (datetime(2028, 1, 31, tzinfo=UTC), 1, datetime(2028, 2, 29, tzinfo=UTC)),  # leap year
    (datetime(2026, 11, 30, tzinfo=UTC), 2, datetime(2027, 1, 30, tzinfo=UTC)),
    (datetime(2026, 12, 15, tzinfo=UTC), 3, datetime(2027, 3, 15, tzinfo=UTC)),
])
def test_a_month_is_a_calendar_month_clamped_to_its_last_day(start, months, expected):
    assert add_months(start, months) == expected


def test_urgency_counts_whole_days_and_flags_soon_and_overdue():
    now = datetime(2026, 5, 1, 12, tzinfo=UTC)
    ok = urgency(due_at=now + timedelta(days=10, hours=1), open_=True, now=now)
    assert (ok.days_left, ok.level) == (10, "ok")
    assert urgency(due_at=now + timedelta(days=6), open_=True, now=now).level == "soon"
    late = urgency(due_at=now - timedelta(hours=3), open_=True, now=now)
    assert (late.days_left, late.level) == (-1, "overdue")
    assert urgency(due_at=now - timedelta(days=3), open_=False, now=now).level == "closed"


def test_an_earlier_due_date_is_kept_and_a_later_one_refused(api):
    early = datetime.now(UTC) + timedelta(days=5)
    assert datetime.fromisoformat(submit(api, {"model": "m", "classes": ["cat"], "due_at": early.isoformat()})["due_at"]) == early
    late = api.client.post("/unlearn-requests", headers=api.as_(Role.officer),
                           json={"model": "m", "classes": ["dog"], "due_at": (datetime.now(UTC) + timedelta(days=40)).isoformat()})
    assert late.status_code == 422
    [item] = late.json()["detail"]["items"]
    assert item["field"] == "due_at" and "Art. 12(3)" in item["problem"] and "/extension" in item["problem"]
    assert api.session.scalar(select(func.count()).select_from(UnlearnRequest)) == 1  # nothing recorded


def test_one_extension_by_up_to_two_months_with_its_reason_in_view_and_audit_log(api):
    filed = submit(api, {"model": "m", "samples": ["tr-cat-000"]})
    due = datetime.fromisoformat(filed["due_at"])
    assert filed["extension"] is None
    for body in ({"months": 3, "reason": "x"}, {"months": 0, "reason": "x"}, {"months": 1}, {"months": 1, "reason": "  "}):
        assert extend(api, filed["id"], **body).status_code == 422, body
    assert extend(api, filed["id"], Role.reviewer, months=1, reason="x").status_code == 403

    response = extend(api, filed["id"], months=2, reason="4,000 samples <b>across</b> three models")
    assert response.status_code == 200, response.text
    view = response.json()
    assert datetime.fromisoformat(view["due_at"]) == add_months(due, 2)
    assert datetime.fromisoformat(view["extension"]["original_due_at"]) == due
    assert view["extension"]["reason"] == "4,000 samples <b>across</b> three models"
    assert view["extension"]["extended_by"].endswith(":officer")
    shown = api.client.get(f"/unlearn-requests/{filed['id']}", headers=api.as_(Role.auditor)).json()
    assert shown["due_at"] == view["due_at"] and shown["extension"] == view["extension"]
    assert re.search(r"^extended\s+from .*: 4,000 samples <b>across</b> three models$", details(shown), re.MULTILINE)

    again = extend(api, filed["id"], Role.admin, months=1, reason="more")
    assert again.status_code == 409 and "one extension" in again.json()["detail"]
    [event] = api.session.scalars(select(AuditEvent).where(AuditEvent.action == "request.extended",
                                                           AuditEvent.subject == f"request:{filed['id']}"))
    assert event.data["months"] == 2 and event.data["reason"].startswith("4,000 samples")
    assert datetime.fromisoformat(event.data["to"]) == add_months(due, 2)


def test_no_extension_once_finished_or_past_due(api):
    cancelled = submit(api, {"model": "m", "samples": ["tr-cat-001"]})
    api.client.post(f"/unlearn-requests/{cancelled['id']}/cancel", headers=api.as_(Role.officer)).raise_for_status()
    refused = extend(api, cancelled["id"], months=1, reason="late")
    assert refused.status_code == 409 and "only an open request" in refused.json()["detail"]
    overdue = submit(api, {"model": "m", "samples": ["tr-cat-002"]})
    row = api.session.get(UnlearnRequest, uuid.UUID(overdue["id"]))
    row.due_at = datetime.now(UTC) - timedelta(minutes=1)
    api.session.commit()
    refused = extend(api, overdue["id"], months=1, reason="late")
    assert refused.status_code == 409 and "before the deadline passes" in refused.json()["detail"]
    assert api.client.get(f"/unlearn-requests/{overdue['id']}", headers=api.as_(Role.officer)).json()["extension"] is None
    assert extend(api, str(uuid.uuid4()), months=1, reason="x").status_code == 404


def test_the_receipt_carries_the_extension_and_still_verifies(api):
    first, _ = run_coalesced_job(api)
    assert extend(api, first["id"], months=1, reason="complex request").status_code == 200
    receipt = api.client.get(f"/unlearn-requests/{first['id']}/receipt", headers=api.as_(Role.officer)).json()
    extension = receipt["body"]["request"]["deadline_extension"]
    assert extension["reason"] == "complex request"
    assert datetime.fromisoformat(extension["original_due_at"]) == datetime.fromisoformat(first["due_at"])
    report = api.client.get(f"/unlearn-requests/{first['id']}/report", headers=api.as_(Role.auditor)).json()
    public_key = load_public_pem(api.client.get("/signing-key").text)
    assert verify_document(receipt, public_key, report=report)[0] is True


def test_metrics_count_overdue_and_soon_due_open_requests(api):
    submit(api, {"model": "m", "samples": ["tr-dog-000"], "due_at": (datetime.now(UTC) + timedelta(days=3)).isoformat()})
    submit(api, {"model": "m", "samples": ["tr-dog-001"]})  # a month ahead: neither
    late = submit(api, {"model": "m", "samples": ["tr-dog-002"]})
    done = submit(api, {"model": "m", "samples": ["tr-dog-003"], "due_at": (datetime.now(UTC) + timedelta(days=2)).isoformat()})
    api.session.get(UnlearnRequest, uuid.UUID(late["id"])).due_at = datetime.now(UTC) - timedelta(days=1)
    api.session.commit()
    api.client.post(f"/unlearn-requests/{done['id']}/cancel", headers=api.as_(Role.officer)).raise_for_status()
    samples = scrape(api)
    assert value(samples, "oblivio_unlearn_requests_due_soon", model="m") == 1
    assert value(samples, "oblivio_unlearn_requests_overdue", model="m") == 1
