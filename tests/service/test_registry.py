"""Datasets, bulk samples, model registration, versions, download and promotion."""

import hashlib

from service.db.enums import Role
from tests.builders import tiny_checkpoint


def test_bulk_samples_refuse_everything_on_any_problem(api, tmp_path):
    admin = api.as_(Role.admin)
    assert api.client.post("/datasets", json={"name": "extra", "kind": "training"}, headers=admin).status_code == 201
    assert api.client.post("/datasets", json={"name": "extra", "kind": "training"}, headers=admin).status_code == 409
    good = {"sample_key": "a", "class_label": "c", "uri": str(api.data_root / "a.png"), "sha256": "0" * 64}
    outside = {**good, "sample_key": "b", "uri": "/etc/passwd"}
    response = api.client.post("/datasets/extra/samples", json={"samples": [good, outside, good]}, headers=admin)
    assert response.status_code == 422
    problems = {(i["sample_key"], i["problem"]) for i in response.json()["detail"]["items"]}
    assert ("b", "URI is outside the allowed data roots") in problems
    assert ("a", "duplicate sample_key in this batch") in problems
    assert api.client.get("/datasets/extra", headers=admin).json()["sample_count"] == 0
    ok = api.client.post("/datasets/extra/samples", json={"samples": [good]}, headers=admin).json()
    assert (ok["added"], ok["sample_count"]) == (1, 1)
    replay = api.client.post("/datasets/extra/samples", json={"samples": [good]}, headers=admin).json()
    assert (replay["added"], replay["unchanged"]) == (0, 1)
    changed = api.client.post("/datasets/extra/samples", json={"samples": [{**good, "class_label": "d"}]}, headers=admin)
    assert changed.status_code == 422


def test_model_registration_refuses_pickles_and_unknown_datasets(api):
    admin = api.as_(Role.admin)
    pickle_bytes = b"\x80\x04\x95" + b"\x00" * 64
    response = api.client.post(
        "/models",
        headers=admin,
        data={"spec": '{"name": "p", "training_dataset": "nope", "proxy_dataset": "train"}'},
        files={"checkpoint": ("p.pt", pickle_bytes)},
    )
    assert response.status_code == 422
    fields = {i["field"]: i["problem"] for i in response.json()["detail"]["items"]}
    assert "refused" in fields["checkpoint"]
    assert "not found" in fields["training_dataset"]
    assert "training set" in fields["proxy_dataset"]
    bad_spec = api.client.post("/models", headers=admin, data={"spec": "{"}, files={"checkpoint": ("x", b"")})
    assert bad_spec.status_code == 422


def test_version_one_downloads_with_its_digest(api):
    reader = api.as_(Role.auditor)
    versions = api.client.get("/models/m/versions", headers=reader).json()
    assert [(v["version"], v["is_current"], v["status"]) for v in versions] == [(1, True, "published")]
    download = api.client.get("/models/m/versions/current/checkpoint", headers=reader)
    assert download.status_code == 200
    digest = hashlib.sha256(download.content).hexdigest()
    assert digest == versions[0]["checkpoint_digest"] == download.headers["x-checkpoint-sha256"]
    assert download.content == tiny_checkpoint(unlearn_defaults={"lr": 0.001})
    assert api.client.get("/models/m/versions/7/checkpoint", headers=reader).status_code == 404
    assert api.client.get("/models/m/versions/latest/checkpoint", headers=reader).status_code == 404
    assert api.client.get("/models/ghost", headers=reader).status_code == 404


def test_promote_refuses_a_superseded_version(api):
    from sqlalchemy import select

    from service.db.enums import VersionStatus
    from service.db.models import ModelVersion

    admin = api.as_(Role.admin)
    assert api.client.post("/models/m/versions/1/promote", headers=admin).status_code == 200
    v1 = api.session.scalar(select(ModelVersion).where(ModelVersion.version == 1))
    v1.status = VersionStatus.superseded
    api.session.commit()
    refused = api.client.post("/models/m/versions/1/promote", headers=admin)
    assert refused.status_code == 409
    assert "superseded" in refused.json()["detail"]


def test_health_and_readiness(api):
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": True, "broker": True}
