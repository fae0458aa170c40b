"""Bad input gets the right 4xx with a clear message, and nothing is recorded."""

import hashlib
import json

from sqlalchemy import func, select

from service.db.enums import Role
from service.db.models import AuditEvent, Job, Sample, UnlearnRequest


def post(api, payload: bytes | dict, **headers):
    content = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return api.client.post(
        "/unlearn-requests",
        content=content,
        headers={"content-type": "application/json", **api.as_(Role.officer), **headers},
    )


def nothing_recorded(api) -> bool:
    return all(api.session.scalar(select(func.count()).select_from(t)) == 0 for t in (UnlearnRequest, Job)) and not (
        api.session.scalar(select(func.count()).where(AuditEvent.action.like("request.%")))
    )


def test_malformed_and_mistyped_bodies(api):
    cases = {
        b"": 422,
        b"{": 422,
        b"[]": 422,
        b'"text"': 422,
        b'{"model": 5, "samples": ["tr-cat-000"]}': 422,
        b'{"model": "m", "samples": [1, 2]}': 422,
        b'{"model": "m", "samples": ["tr-cat-000"], "extra": true}': 422,
        b'{"model": "m", "samples": ["tr-cat-000"], "due_at": "yesterday"}': 422,
        b'{"model": "m", "samples": ["tr-cat-000"], "config": {"lr": "fast"}}': 422,
        b'{"model": "m", "samples": ["tr-cat-000"], "config": {"momentum": 0.9}}': 422,
        b'{"model": "m", "samples": ["tr-cat-000"], "config": {"forget_target": "zeros"}}': 422,
        b'{"model": "m", "samples": ["tr-cat-000"], "config": {"noise_share": 1.5}}': 422,
        b'\xff\xfe{"model": "m"}': 422,
    }
    for body, status in cases.items():
        response = post(api, body)
        assert response.status_code == status, (body, response.text)
        assert response.json()["error"] == "ValidationError" and response.json()["detail"]
    assert nothing_recorded(api)


def test_oversized_body_is_413_and_long_lists_are_422(api):
    settings = api.client.app.state.settings
    huge = b'{"model": "m", "samples": [' + b",".join([b'"k"'] * (settings.max_body_bytes // 3)) + b"]}"
    response = post(api, huge)
    assert response.status_code == 413 and response.json()["error"] == "PayloadTooLarge"
    too_many = post(api, {"model": "m", "samples": [f"k{i}" for i in range(10_001)]})
    assert too_many.status_code == 422
    assert "10000" in json.dumps(too_many.json()["detail"])
    assert nothing_recorded(api)


def test_unicode_oddities_are_named_not_crashed_on(api):
    odd = ["\u202etr-cat-000", "tr-cat-000\u200b", "🦊", "ｔｒ-cat-000", "tr-cat-000 "]
    response = post(api, {"model": "m", "samples": odd[:4]})
    assert response.status_code == 422
    named = {item["value"] for item in response.json()["detail"]["items"]}
    assert named == set(odd[:4])
    assert post(api, {"model": "m", "samples": ["a\u0000b"]}).status_code == 422
    assert post(api, {"model": "m\u0000", "samples": ["x"]}).status_code == 422
    assert nothing_recorded(api)


def test_bad_ids_and_page_sizes(api):
    auditor = api.as_(Role.auditor)
    for path in ("/unlearn-requests/123", "/unlearn-requests/%00", "/jobs/zzz", "/unlearn-requests/" + "f" * 400):
        assert api.client.get(path, headers=auditor).status_code in (404, 422), path
    for limit in ("-5", "0", "1000000000000000000000", "1e3"):
        response = api.client.get("/unlearn-requests", params={"limit": limit}, headers=auditor)
        assert response.status_code == 422, limit
    assert api.client.get("/audit-events", params={"after": -1}, headers=auditor).status_code == 422
    assert api.client.post("/api-keys/99999999999999999999/revoke", headers=api.as_(Role.admin)).status_code == 422


def test_sample_uris_leaving_the_data_roots_are_refused_naming_only_the_sample(api, tmp_path):
    admin = api.as_(Role.admin)
    assert api.client.post("/datasets", json={"name": "extra", "kind": "training"}, headers=admin).status_code == 201
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"not a sample")
    root = api.data_root
    (root / "sub").mkdir()
    (root / "sub" / "link.png").symlink_to(secret)
    climb = "/".join(["%2e%2e"] * len(root.parts))  # past the filesystem root, back down to the secret
    uris = {
        "encoded-dots": f"file://{root}/sub/{climb}{secret}",
        "encoded-slashes": f"file://{root}/sub/..%2f..%2f{secret.name}",
        "double-encoded": f"file://{root}/sub/%252e%252e/%252e%252e/{secret.name}",
        "dots": f"{root}/sub/../../{secret.name}",
        "remote-host": f"file://somehost{root}/tr-cat-000.bin",
        "missing": str(root / "nope.png"),
        "directory": str(root / "sub"),
        "link-out": str(root / "sub" / "link.png"),
    }
    rows = [{"sample_key": k, "class_label": "c", "uri": u, "sha256": "0" * 64} for k, u in uris.items()]
    response = api.client.post("/datasets/extra/samples", json={"samples": rows}, headers=admin)
    assert response.status_code == 422
    problems = {i["sample_key"]: i["problem"] for i in response.json()["detail"]["items"]}
    assert problems == {
        "encoded-dots": "the path has '.' or '..' segments, encoded separators or control characters",
        "encoded-slashes": "the path has '.' or '..' segments, encoded separators or control characters",
        "double-encoded": "file missing",
        "dots": "the path has '.' or '..' segments, encoded separators or control characters",
        "remote-host": "not an absolute path or a file:// URI without a host",
        "missing": "file missing",
        "directory": "not a regular file",
        "link-out": "outside the data roots or a symbolic link",
    }
    assert str(secret) not in response.text and hashlib.sha256(b"not a sample").hexdigest() not in response.text
    extra = api.client.get("/datasets/extra", headers=admin).json()
    assert extra["sample_count"] == 0
    assert api.session.scalar(select(func.count()).where(Sample.sample_key.in_(list(uris)))) == 0
    assert not api.session.scalar(select(func.count()).where(AuditEvent.action == "samples.registered",
                                                             AuditEvent.subject == "dataset:extra"))
