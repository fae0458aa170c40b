"""401 without a key, 403 with the wrong role, for every guarded endpoint."""

import uuid

import pytest

from service.db.enums import Role

RID = str(uuid.uuid4())
# (method, path, roles allowed besides admin)
MATRIX = [
    ("POST", "/unlearn-requests", {Role.officer}),
    ("GET", "/unlearn-requests", {Role.officer, Role.auditor, Role.reviewer}),
    ("GET", f"/unlearn-requests/{RID}", {Role.officer, Role.auditor, Role.reviewer}),
    ("POST", f"/unlearn-requests/{RID}/cancel", {Role.officer}),
    ("GET", f"/unlearn-requests/{RID}/report", {Role.auditor}),
    ("GET", f"/unlearn-requests/{RID}/receipt", {Role.officer, Role.auditor, Role.reviewer}),
    ("GET", f"/jobs/{RID}", {Role.officer, Role.auditor, Role.reviewer}),
    ("GET", "/models", set(Role)),
    ("GET", "/models/m/versions", set(Role)),
    ("POST", "/models/m/versions/1/promote", set()),
    ("POST", "/datasets", set()),
    ("POST", "/datasets/train/samples", set()),
    ("POST", "/models", set()),
    ("POST", "/api-keys", set()),
    ("GET", "/api-keys", set()),
]


@pytest.mark.parametrize(("method", "path", "allowed"), MATRIX)
def test_missing_or_bad_key_is_401(api, method, path, allowed):
    for headers in ({}, {"Authorization": "Bearer obl_nope_nope"}, {"X-API-Key": "wrong"}, {"Authorization": "Basic abc"}):
        response = api.client.request(method, path, headers=headers, json={})
        assert response.status_code == 401, (headers, response.text)
        assert response.json()["error"] == "Unauthenticated"


@pytest.mark.parametrize(("method", "path", "allowed"), MATRIX)
def test_wrong_role_is_403_and_right_role_passes_the_guard(api, method, path, allowed):
    for role in Role:
        response = api.client.request(method, path, headers=api.as_(role), json={})
        if role is Role.admin or role in allowed:
            assert response.status_code not in (401, 403), (role, response.text)
        else:
            assert response.status_code == 403, (role, response.text)
            assert response.json()["error"] == "Forbidden"


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
