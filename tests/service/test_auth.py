"""401 without a key, 403 with the wrong role, for every guarded endpoint, before any body is read;
the README and OpenAPI state the same roles as the code."""

import re
import uuid
from pathlib import Path

import pytest

from service.db.enums import Role
from tests.builders import make_key

RID = str(uuid.uuid4())
READERS = {Role.officer, Role.auditor, Role.reviewer}
# (method, path template, roles allowed besides admin): every operation of the API but the public ones
MATRIX = [
    ("POST", "/unlearn-requests", {Role.officer}),
    ("GET", "/unlearn-requests", READERS),
    ("GET", "/unlearn-requests/{request_id}", READERS),
    ("POST", "/unlearn-requests/{request_id}/cancel", {Role.officer}),
    ("POST", "/unlearn-requests/{request_id}/approve", {Role.reviewer}),
    ("POST", "/unlearn-requests/{request_id}/reject", {Role.reviewer}),
    ("POST", "/unlearn-requests/{request_id}/extension", {Role.officer}),
    ("GET", "/unlearn-requests/{request_id}/report", {Role.auditor}),
    ("GET", "/unlearn-requests/{request_id}/receipt", READERS),
    ("GET", "/audit-events", {Role.auditor}),
    ("GET", "/audit-events/verify", {Role.auditor}),
    ("GET", "/audit/checkpoints/latest", set(Role)),
    ("GET", "/audit/checkpoints/{size}", set(Role)),
    ("GET", "/audit/proofs/inclusion", set(Role)),
    ("GET", "/audit/proofs/consistency", set(Role)),
    ("GET", "/audit/export", {Role.auditor}),
    ("GET", "/jobs/{job_id}", READERS),
    ("GET", "/jobs/{job_id}/attestations", READERS),
    ("POST", "/models", set()),
    ("GET", "/models", set(Role)),
    ("GET", "/models/{name}", set(Role)),
    ("GET", "/models/{name}/versions", set(Role)),
    ("GET", "/models/{name}/versions/{ref}/checkpoint", set(Role)),
    ("GET", "/models/{name}/versions/{ref}/signature", set(Role)),
    ("POST", "/models/{name}/versions/{ref}/promote", set()),
    ("POST", "/datasets", set()),
    ("GET", "/datasets/{name}", set()),
    ("POST", "/datasets/{name}/samples", set()),
    ("POST", "/api-keys", set()),
    ("GET", "/api-keys", set()),
    ("POST", "/api-keys/{key_id}/revoke", set()),
    ("POST", "/webhooks", set(Role)),
    ("GET", "/webhooks", set(Role)),
    ("GET", "/webhooks/{webhook_id}", set(Role)),
    ("DELETE", "/webhooks/{webhook_id}", set(Role)),
    ("GET", "/webhooks/{webhook_id}/deliveries", set(Role)),
    ("POST", "/webhooks/{webhook_id}/deliveries/{delivery_id}/replay", set(Role)),
]
PUBLIC = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"), ("GET", "/signing-key"),
          ("GET", "/model-signing-key")}
ANONYMOUS = ({}, {"Authorization": "Bearer obl_nope_nope"}, {"X-API-Key": "wrong"}, {"Authorization": "Basic abc"})


def concrete(path: str) -> str:
    name = "train" if path.startswith("/datasets") else "m"
    for param, value in {"request_id": RID, "job_id": RID, "webhook_id": RID, "delivery_id": RID, "name": name, "ref": "1", "key_id": "999999", "size": "1"}.items():
        path = path.replace("{" + param + "}", value)
    return path


def operations(api) -> dict[tuple[str, str], dict]:
    paths = api.client.get("/openapi.json").json()["paths"]
    return {(method.upper(), path): op for path, ops in paths.items() for method, op in ops.items()}


def test_the_matrix_covers_every_operation_and_openapi_states_its_roles(api):
    ops = operations(api)
    assert set(ops) == {(m, p) for m, p, _ in MATRIX} | PUBLIC
    for method, path, allowed in MATRIX:
        roles = sorted(r.value for r in allowed | {Role.admin})
        assert ops[(method, path)]["x-roles"] == roles, (method, path)
        assert f"Roles: {', '.join(roles)}." in ops[(method, path)]["description"]
    assert all("x-roles" not in ops[op] for op in PUBLIC)


def test_the_readme_role_table_matches_the_code(api):
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    rows = re.findall(r"^\| `(GET|POST|DELETE) (/\S*)` \| ([^|]+?) \|", readme, flags=re.MULTILINE)
    documented = {(m, p): roles for m, p, roles in rows}
    ops = operations(api)
    assert set(documented) == set(ops)
    for op, roles in documented.items():
        expected = {"none": None, "any": sorted(r.value for r in Role)}.get(roles)
        if roles not in ("none", "any"):
            expected = sorted({*roles.split(", "), "admin"})
        assert ops[op].get("x-roles") == expected, (op, roles)


@pytest.mark.parametrize(("method", "path", "allowed"), MATRIX)
def test_missing_or_bad_key_is_401(api, method, path, allowed):
    for headers in ANONYMOUS:
        response = api.client.request(method, concrete(path), headers=headers, json={})
        assert response.status_code == 401, (headers, response.text)
        assert response.json()["error"] == "Unauthenticated"


@pytest.mark.parametrize(("method", "path", "allowed"), MATRIX)
def test_wrong_role_is_403_and_right_role_passes_the_guard(api, method, path, allowed):
    for role in Role:
        response = api.client.request(method, concrete(path), headers=api.as_(role), json={})
        if role is Role.admin or role in allowed:
            assert response.status_code not in (401, 403), (role, response.text)
        else:
            assert response.status_code == 403, (role, response.text)
            assert response.json()["error"] == "Forbidden"


def test_keys_and_roles_are_checked_before_any_body_is_parsed(api):
    with_body = [(m, p, allowed) for m, p, allowed in MATRIX if "requestBody" in operations(api)[(m, p)]]
    assert len(with_body) == 8
    bodies = [
        (b"{", "application/json"),
        (b"\xff\xfe not json", "application/json"),
        (b"--x\r\ngarbage", "multipart/form-data; boundary=x"),
        (b"a=1", "application/x-www-form-urlencoded"),
    ]
    for method, path, allowed in with_body:
        for content, content_type in bodies:
            typed = {"content-type": content_type}
            for headers in ANONYMOUS:
                response = api.client.request(method, concrete(path), content=content, headers={**headers, **typed})
                assert response.status_code == 401, (path, headers, content, response.text)
            for role in set(Role) - allowed - {Role.admin}:
                response = api.client.request(method, concrete(path), content=content, headers={**api.as_(role), **typed})
                assert response.status_code == 403, (path, role, content, response.text)


def test_revoked_key_is_refused(api):
    created = api.client.post("/api-keys", headers=api.as_(Role.admin), json={"name": "tmp", "role": "auditor"}).json()
    token = created["key"]
    assert api.client.get("/models", headers={"X-API-Key": token}).status_code == 200
    api.client.post(f"/api-keys/{created['id']}/revoke", headers=api.as_(Role.admin)).raise_for_status()
    assert api.client.get("/models", headers={"X-API-Key": token}).status_code == 401


def test_keys_are_stored_hashed(api):
    from sqlalchemy import select

    from service.db.models import ApiKey

    stored = set(api.session.scalars(select(ApiKey.secret_hash)))
    assert not set(api.keys.values()) & stored
    assert all(len(h) == 64 for h in stored)


def file_request(api, headers: dict[str, str], sample: str) -> str:
    response = api.client.post("/unlearn-requests", json={"model": "m", "samples": [sample]}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_four_eyes_the_filing_key_never_approves_its_own_request(api):
    api.client.app.state.settings.require_approval = True
    own = file_request(api, api.as_(Role.admin), "tr-cat-000")
    refused = api.client.post(f"/unlearn-requests/{own}/approve", headers=api.as_(Role.admin))
    assert refused.status_code == 403 and "four eyes" in refused.json()["detail"]
    assert api.client.get(f"/unlearn-requests/{own}", headers=api.as_(Role.auditor)).json()["status"] == "pending_approval"
    approved = api.client.post(f"/unlearn-requests/{own}/approve", headers=api.as_(Role.reviewer))
    assert approved.status_code == 200 and approved.json()["status"] == "queued"
    filed = file_request(api, api.as_(Role.officer), "tr-cat-001")
    assert api.client.post(f"/unlearn-requests/{filed}/approve", headers=api.as_(Role.admin)).status_code == 200


def test_an_officer_cancels_only_its_own_requests_and_an_admin_any(api):
    other = {"Authorization": f"Bearer {make_key(api.session, Role.officer, 'officer-2')}"}
    api.session.commit()
    mine, theirs = file_request(api, api.as_(Role.officer), "tr-cat-000"), file_request(api, other, "tr-cat-001")
    refused = api.client.post(f"/unlearn-requests/{theirs}/cancel", headers=api.as_(Role.officer))
    assert refused.status_code == 403 and refused.json()["error"] == "Forbidden"
    assert api.client.get(f"/unlearn-requests/{theirs}", headers=api.as_(Role.auditor)).json()["status"] == "queued"
    assert api.client.post(f"/unlearn-requests/{mine}/cancel", headers=api.as_(Role.officer)).json()["status"] == "cancelled"
    assert api.client.post(f"/unlearn-requests/{theirs}/cancel", headers=api.as_(Role.admin)).json()["status"] == "cancelled"
