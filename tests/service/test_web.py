"""The dashboard (service/web) in-process: sign-in and its cookie, CSRF on forms, the API's role checks,
deadlines shown and highlighted, filing, review, audit verification, keys, and escaping everywhere."""

import re
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from service.db.enums import Role
from service.db.models import ApiKey, UnlearnRequest
from service.web import pages_admin
from tests.builders import make_key

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def sign_in(api, role: Role | None = None, token: str | None = None, base: str = "") -> str:
    """Sign the test client in (a fresh cookie jar); returns a CSRF token for the next form."""
    api.client.cookies.clear()
    page = api.client.get(f"{base}/ui/sign-in")
    response = api.client.post(f"{base}/ui/sign-in", data={"api_key": token or api.keys[role], "csrf": csrf_of(page.text)},
                               follow_redirects=False)
    assert response.status_code == 303, response.text
    return csrf_of(api.client.get(f"{base}/ui/models").text)


def test_sign_in_exchanges_the_key_for_a_strict_httponly_expiring_cookie(api):
    assert api.client.get("/ui/requests", follow_redirects=False).headers["location"].startswith("/ui/sign-in")
    page = api.client.get("/ui/sign-in")
    assert '<html lang="en">' in page.text and '<label for="api_key">' in page.text
    refused = api.client.post("/ui/sign-in", data={"api_key": api.keys[Role.officer], "csrf": "forged"})
    assert refused.status_code == 403 and "oblivio_session" not in refused.headers.get("set-cookie", "")
    wrong = api.client.post("/ui/sign-in", data={"api_key": "obl_nope", "csrf": csrf_of(page.text)})
    assert wrong.status_code == 401 and "invalid or revoked" in wrong.text
    good = api.client.post("/ui/sign-in", data={"api_key": api.keys[Role.officer], "csrf": csrf_of(page.text),
                                                "next": "//evil.example/x"}, follow_redirects=False)
    assert good.status_code == 303 and good.headers["location"] == "/ui/requests"  # no open redirect
    cookie = good.headers["set-cookie"]
    assert "oblivio_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert "Max-Age=28800" in cookie and "Secure" not in cookie and api.keys[Role.officer] not in cookie
    listed = api.client.get("/ui/requests")
    assert listed.status_code == 200 and "Sign out" in listed.text
    assert "default-src 'none'" in listed.headers["content-security-policy"]
    out = api.client.post("/ui/sign-out", data={"csrf": csrf_of(listed.text)}, follow_redirects=False)
    assert out.status_code == 303
    assert api.client.get("/ui/requests", follow_redirects=False).status_code == 303


def test_over_https_the_cookie_is_secure(api):
    page = api.client.get("https://testserver/ui/sign-in")
    good = api.client.post("https://testserver/ui/sign-in", data={"api_key": api.keys[Role.auditor], "csrf": csrf_of(page.text)},
                           follow_redirects=False)
    assert good.status_code == 303 and "Secure" in good.headers["set-cookie"]


def test_pages_admit_the_roles_their_endpoints_admit(api):
    expected = {
        "/ui/requests": {Role.officer, Role.reviewer, Role.auditor, Role.admin},
        "/ui/review": {Role.reviewer, Role.admin},
        "/ui/models": set(Role),
        "/ui/audit": {Role.auditor, Role.admin},
        "/ui/keys": {Role.admin},
    }
    for role in Role:
        sign_in(api, role)
        for path, allowed in expected.items():
            response = api.client.get(path)
            assert response.status_code == (200 if role in allowed else 403), (role, path)
            if role not in allowed:
                assert "Not allowed" in response.text and f"role &#39;{role.value}&#39; may not do this" in response.text
                assert "text/html" in response.headers["content-type"]


def test_a_revoked_key_ends_its_sessions(api):
    token = make_key(api.session, Role.auditor, "short-lived")
    api.session.commit()
    sign_in(api, token=token)
    assert api.client.get("/ui/audit").status_code == 200
    key_id = api.session.scalar(select(ApiKey.id).where(ApiKey.name == "short-lived"))
    api.client.post(f"/api-keys/{key_id}/revoke", headers=api.as_(Role.admin)).raise_for_status()
    assert api.client.get("/ui/audit", follow_redirects=False).status_code == 303


def test_filing_needs_the_csrf_token_and_the_list_shows_days_left_soonest_first(api):
    csrf = sign_in(api, Role.officer)
    count = lambda: api.session.scalar(select(func.count()).select_from(UnlearnRequest))  # noqa: E731
    forged = api.client.post("/ui/requests", data={"model": "m", "classes": "cat"})
    assert forged.status_code == 403 and count() == 0
    refused = api.client.post("/ui/requests", data={"model": "m", "classes": "unicorn", "csrf": csrf})
    assert refused.status_code == 422 and "unknown class" in refused.text and count() == 0
    form = {"model": "m", "classes": "cat", "samples": "tr-dog-000\ntr-dog-001", "external_id": "dsr-1", "csrf": csrf,
            "idempotency_key": re.search(r'name="idempotency_key" value="(\w+)"', refused.text).group(1)}
    filed = api.client.post("/ui/requests", data=form, follow_redirects=False)
    assert filed.status_code == 303 and count() == 1
    again = api.client.post("/ui/requests", data=form, follow_redirects=False)  # a double click files one request
    assert again.headers["location"] == filed.headers["location"] and count() == 1
    first = filed.headers["location"].rsplit("/", 1)[1]
    second = api.client.post("/unlearn-requests", headers=api.as_(Role.officer),
                             json={"model": "m", "samples": ["tr-fox-000"], "external_id": "dsr-2"}).json()["id"]
    late = api.client.post("/unlearn-requests", headers=api.as_(Role.officer),
                           json={"model": "m", "samples": ["tr-fox-001"], "external_id": "dsr-3",
                                 "due_at": (datetime.now(UTC) + timedelta(days=3, hours=1)).isoformat()}).json()["id"]
    api.session.get(UnlearnRequest, uuid.UUID(second)).due_at = datetime.now(UTC) - timedelta(days=2, hours=1)
    api.session.commit()
    page = api.client.get("/ui/requests").text
    assert re.findall(r">(dsr-\d)</a>", page) == ["dsr-2", "dsr-3", "dsr-1"]
    assert 'class="due overdue"' in page and "overdue by 3 days" in page
    assert re.search(r'class="due soon"[^>]*>3 days left', page)
    assert re.search(r'class="due ok"[^>]*>(29|30|27|28) days left', page)
    only_late = api.client.get("/ui/requests", params={"due_before": (datetime.now(UTC) + timedelta(days=5)).date().isoformat()}).text
    assert re.findall(r">(dsr-\d)</a>", only_late) == ["dsr-2", "dsr-3"]
    assert ">dsr-1<" not in api.client.get("/ui/requests", params={"status": "cancelled"}).text
    assert "&#39;due before&#39; must be a date" in api.client.get("/ui/requests", params={"due_before": "soon"}).text
    bad = api.client.get("/ui/requests/not-an-id")
    assert bad.status_code == 422 and "text/html" in bad.headers["content-type"] and "Not accepted" in bad.text
    assert api.client.get(f"/ui/requests/{uuid.uuid4()}").status_code == 404
    detail = api.client.get(f"/ui/requests/{first}").text
    assert "request.received" in detail and "request.queued" in detail  # status history from the audit log
    assert 'id="progress"' in detail and 'data-live="/ui/requests/' in detail
    assert "Extend the deadline" in detail and late


def test_reviewer_approves_and_rejects_but_never_its_own_filing(api):
    api.client.app.state.settings.require_approval = True
    ids = [api.client.post("/unlearn-requests", headers=api.as_(Role.admin),
                           json={"model": "m", "samples": [s]}).json()["id"] for s in ("tr-cat-000", "tr-cat-001")]
    csrf = sign_in(api, Role.admin)
    assert "another reviewer decides" in api.client.get("/ui/review").text
    own = api.client.post(f"/ui/requests/{ids[0]}/approve", data={"csrf": csrf})
    assert own.status_code == 403 and "four eyes" in own.text
    csrf = sign_in(api, Role.reviewer)
    queue = api.client.get("/ui/review").text
    assert all(i[:8] in queue for i in ids)
    page = api.client.get(f"/ui/requests/{ids[0]}").text
    assert 'id="approve"' in page
    assert api.client.post(f"/ui/requests/{ids[0]}/approve", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    assert api.client.post(f"/ui/requests/{ids[1]}/reject", data={"csrf": csrf, "reason": ""}).status_code == 422
    rejected = api.client.post(f"/ui/requests/{ids[1]}/reject", data={"csrf": csrf, "reason": HOSTILE})
    assert rejected.status_code == 200
    states = {i: api.client.get(f"/unlearn-requests/{i}", headers=api.as_(Role.auditor)).json()["status"] for i in ids}
    assert states == {ids[0]: "queued", ids[1]: "rejected"}
    assert "Nothing waits for review" in api.client.get("/ui/review").text
    assert api.client.post(f"/ui/requests/{ids[0]}/approve", data={"csrf": csrf}).status_code == 409


def test_audit_verification_models_and_keys(api, monkeypatch):
    csrf = sign_in(api, Role.admin)
    verified = api.client.post("/ui/audit/verify", data={"csrf": csrf})
    assert verified.status_code == 200 and "Verified: the log is intact." in verified.text
    assert api.client.post("/ui/audit/verify", data={"csrf": "x"}).status_code == 403
    assert "api_key.created" in api.client.get("/ui/audit", params={"action": "api_key.created"}).text
    monkeypatch.setattr(pages_admin, "EVENT_LIMIT", 3)
    first = api.client.get("/ui/audit").text
    seqs = [int(n) for n in re.findall(r'<tr><td class="num">(\d+)</td>', first)]
    older = re.search(r'href="(/ui/audit\?[^"]+)">Older events', first).group(1).replace("&amp;", "&")
    more = [int(n) for n in re.findall(r'<tr><td class="num">(\d+)</td>', api.client.get(older).text)]
    assert len(seqs) == 3 and seqs == sorted(seqs, reverse=True) and more and max(more) < min(seqs)
    model = api.client.get("/ui/models/m").text
    digest = api.client.get("/models/m/versions", headers=api.as_(Role.admin)).json()[0]["checkpoint_digest"]
    assert digest in model and "current" in model
    created = api.client.post("/ui/keys", data={"csrf": csrf, "name": "bob", "role": "reviewer"})
    token = re.search(r'id="new-token" type="text" readonly value="([^"]+)"', created.text).group(1)
    assert api.client.get("/unlearn-requests", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    key_id = api.session.scalar(select(ApiKey.id).where(ApiKey.name == "bob"))
    assert api.client.post(f"/ui/keys/{key_id}/revoke", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    assert api.client.get("/unlearn-requests", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_stored_markup_is_shown_escaped(api):
    officer = api.as_(Role.officer)
    rid = api.client.post("/unlearn-requests", headers=officer,
                          json={"model": "m", "samples": ["tr-dog-000"], "external_id": HOSTILE}).json()["id"]
    api.client.post(f"/unlearn-requests/{rid}/extension", headers=officer, json={"months": 1, "reason": HOSTILE}).raise_for_status()
    api.client.post("/api-keys", headers=api.as_(Role.admin), json={"name": HOSTILE, "role": "auditor"}).raise_for_status()
    sign_in(api, Role.admin)
    pages = [api.client.get(p).text for p in ("/ui/requests", f"/ui/requests/{rid}", "/ui/keys", "/ui/audit")]
    pages.append(api.client.get("/ui/sign-in", params={"next": f'/ui/"><script>{HOSTILE}'}).text)
    for html in pages:
        assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in pages[1] and "&lt;img src=x onerror=alert(1)&gt;" in pages[2]


def test_an_expired_or_forged_session_cookie_signs_nobody_in(api):
    sign_in(api, Role.auditor)
    assert api.client.get("/ui/audit").status_code == 200
    settings = api.client.app.state.settings
    settings.web_session_seconds, kept = -1, settings.web_session_seconds  # every cookie is now past its lifetime
    try:
        assert api.client.get("/ui/audit", follow_redirects=False).status_code == 303
    finally:
        settings.web_session_seconds = kept
    token = api.client.cookies.get("oblivio_session")
    for value, status in ((token[:-2] + ("AA" if not token.endswith("AA") else "BB"), 303), (token, 200)):
        api.client.cookies.clear()
        api.client.cookies.set("oblivio_session", value, path="/ui")
        assert api.client.get("/ui/audit", follow_redirects=False).status_code == status


def test_an_officer_extends_the_deadline_once_and_cancels_from_the_request_page(api):
    rid = api.client.post("/unlearn-requests", headers=api.as_(Role.officer),
                          json={"model": "m", "samples": ["tr-cat-003"]}).json()["id"]
    csrf = sign_in(api, Role.reviewer)
    page = api.client.get(f"/ui/requests/{rid}").text
    assert "Extend the deadline" not in page and "Cancel this request" not in page  # not a reviewer's to do
    assert api.client.post(f"/ui/requests/{rid}/extension", data={"csrf": csrf, "months": "1", "reason": "x"}).status_code == 403
    csrf = sign_in(api, Role.officer)
    assert api.client.post(f"/ui/requests/{rid}/extension", data={"csrf": csrf, "months": "3", "reason": "x"}).status_code == 422
    extended = api.client.post(f"/ui/requests/{rid}/extension", data={"csrf": csrf, "months": "2", "reason": "many models"})
    assert extended.status_code == 200 and "Deadline extended" in extended.text and "many models" in extended.text
    assert "Extend the deadline" not in extended.text
    again = api.client.post(f"/ui/requests/{rid}/extension", data={"csrf": csrf, "months": "1", "reason": "more"})
    assert again.status_code == 409 and "one extension" in again.text
    assert ">extended<" in api.client.get("/ui/requests").text
    cancelled = api.client.post(f"/ui/requests/{rid}/cancel", data={"csrf": csrf})
    assert cancelled.status_code == 200 and 'class="status cancelled"' in cancelled.text
