"""Dashboard sign-ins and sign-outs are audit events (by key id, never the key) listed and sealed like any
other; refused sign-ins are only counted on /metrics, so guessing keys cannot grow the log."""

import json
from datetime import datetime, timedelta

from sqlalchemy import func, select

from service.audit.sealer import seal_pending
from service.db.base import utcnow
from service.db.enums import Role
from service.db.models import ApiKey, AuditEvent
from tests.builders import make_key
from tests.service.test_metrics import scrape, value
from tests.service.test_web import csrf_of, sign_in

COUNTER = "oblivio_dashboard_sign_ins_total"


def events_after(api, seq: int) -> list[AuditEvent]:
    return list(api.session.scalars(select(AuditEvent).where(AuditEvent.id > seq).order_by(AuditEvent.id)))


def last_seq(api) -> int:
    return api.session.scalar(select(func.max(AuditEvent.id))) or 0


def test_sign_in_and_sign_out_are_audited_by_key_id_and_sealed_like_any_event(api):
    token = make_key(api.session, Role.auditor, "carol")
    api.session.commit()
    key = api.session.scalar(select(ApiKey).where(ApiKey.name == "carol"))
    actor, subject = f"key:{key.id}:carol:auditor", f"api_key:{key.id}"
    start = last_seq(api)

    csrf = sign_in(api, token=token)
    [signed_in] = events_after(api, start)
    assert (signed_in.action, signed_in.actor, signed_in.subject) == ("dashboard.signed_in", actor, subject)
    expires = datetime.fromisoformat(signed_in.data["expires_at"])
    assert abs(expires - (utcnow() + timedelta(hours=8))) < timedelta(minutes=1)
    written = json.dumps([signed_in.actor, signed_in.subject, signed_in.data])
    assert token not in written and token.split("_")[-1] not in written and key.secret_hash not in written

    out = api.client.post("/ui/sign-out", data={"csrf": csrf}, follow_redirects=False)
    assert out.status_code == 303
    [signed_out] = events_after(api, signed_in.id)
    assert (signed_out.action, signed_out.actor, signed_out.subject, signed_out.data) == (
        "dashboard.signed_out", actor, subject, {})

    page = api.client.get("/ui/sign-in")  # no session: signing out again ends nothing and records nothing
    assert api.client.post("/ui/sign-out", data={"csrf": csrf_of(page.text)}, follow_redirects=False).status_code == 303
    assert events_after(api, signed_out.id) == []

    seal_pending(api.session, api.client.app.state.signer)
    api.session.commit()
    listed = api.client.get("/audit-events", params={"subject": subject}, headers=api.as_(Role.auditor)).json()["items"]
    ours = [e for e in listed if e["action"].startswith("dashboard.")]
    assert [(e["action"], e["actor"]) for e in ours] == [("dashboard.signed_in", actor), ("dashboard.signed_out", actor)]
    assert all(e["index"] is not None for e in ours)
    for event in ours:
        proof = api.client.get("/audit/proofs/inclusion", params={"index": event["index"]}, headers=api.as_(Role.officer))
        assert proof.status_code == 200 and proof.json()["index"] == event["index"]

    sign_in(api, Role.auditor)
    shown = api.client.get("/ui/audit", params={"subject": subject}).text
    assert "dashboard.signed_in" in shown and "dashboard.signed_out" in shown and actor in shown


def test_a_refused_sign_in_is_counted_not_audited(api):
    revoked = make_key(api.session, Role.officer, "gone")
    api.session.commit()
    key_id = api.session.scalar(select(ApiKey.id).where(ApiKey.name == "gone"))
    api.client.post(f"/api-keys/{key_id}/revoke", headers=api.as_(Role.admin)).raise_for_status()
    before, start = scrape(api), last_seq(api)

    csrf = csrf_of(api.client.get("/ui/sign-in").text)
    for attempt in ("obl_nope_guess1", "obl_nope_guess2", "obl_nope_guess3", "", revoked):
        refused = api.client.post("/ui/sign-in", data={"api_key": attempt, "csrf": csrf}, follow_redirects=False)
        assert refused.status_code == 401 and "oblivio_session" not in refused.headers.get("set-cookie", "")
    assert events_after(api, start) == []
    after = scrape(api)
    assert value(after, COUNTER, outcome="refused") == value(before, COUNTER, outcome="refused") + 5
    assert value(after, COUNTER, outcome="signed_in") == value(before, COUNTER, outcome="signed_in")

    sign_in(api, Role.officer)
    assert [e.action for e in events_after(api, start)] == ["dashboard.signed_in"]
    assert value(scrape(api), COUNTER, outcome="signed_in") == value(before, COUNTER, outcome="signed_in") + 1
