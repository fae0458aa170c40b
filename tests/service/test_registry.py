"""Datasets, bulk samples, model registration, versions, download and promotion."""

import hashlib
import json
import struct

import pytest
from sqlalchemy import func, select

from service.db.enums import Role
from service.db.models import AuditEvent, Model, OutboxMessage
from tests.builders import oblivio_metadata, safetensors_file, tiny_checkpoint, validate_model

FOUR_FLOATS = struct.pack("<4f", 1, 2, 3, 4)


def _with_header(header: str, data: bytes) -> bytes:
    return struct.pack("<Q", len(header)) + header.encode() + data


GOOD = {"a": ("F32", [4], FOUR_FLOATS), "b": ("F32", [2, 2], FOUR_FLOATS)}
BROKEN = {
    "header only": (safetensors_file({}, oblivio_metadata()), "holds no tensors"),
    "truncated": (tiny_checkpoint()[:-5], "truncated"),
    "offsets past the end": (
        safetensors_file(GOOD, oblivio_metadata(), offsets={"b": [16, 48]}), "past the end of the data"),
    "overlapping offsets": (
        safetensors_file(GOOD, oblivio_metadata(), offsets={"b": [8, 24]}) + b"\0" * 8, "overlap"),
    "a gap between tensors": (
        safetensors_file({"a": GOOD["a"], "b": ("F32", [2], FOUR_FLOATS[:8])}, oblivio_metadata(), offsets={"b": [24, 32]})
        + b"\0" * 8, "unused"),
    "bytes after the last tensor": (tiny_checkpoint() + b"junk", "longer than its tensors"),
    "shape not matching its bytes": (
        safetensors_file({"a": ("F32", [3, 3], FOUR_FLOATS)}, oblivio_metadata()), "needs 36 bytes"),
    "negative shape": (safetensors_file({"a": ("F32", [-4], FOUR_FLOATS)}, oblivio_metadata()), "non-negative"),
    "unknown dtype": (safetensors_file({"a": ("F31", [4], FOUR_FLOATS)}, oblivio_metadata()), "unknown dtype"),
    "an empty tensor name": (safetensors_file({"": ("F32", [4], FOUR_FLOATS)}, oblivio_metadata()), "empty name"),
    "a tensor name twice": (_with_header(
        '{"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}, '
        '"a": {"dtype": "F32", "shape": [4], "data_offsets": [16, 32]}}', FOUR_FLOATS * 2), "duplicate keys ['a']"),
    "unknown family": (tiny_checkpoint(family="nope"), "unknown model family 'nope'"),
    "empty config": (tiny_checkpoint(config={}), "'config' must be a non-empty JSON object"),
    "no Oblivio header": (safetensors_file(GOOD), "without an Oblivio header"),
    "another format": (safetensors_file(GOOD, {"oblivio": json.dumps({"family": "mae", "config": {"a": 1}})}),
                       "'format' is None"),
    "pickle": (b"\x80\x04\x95" + b"\x00" * 64, "pickle"),
    "zip (torch.save)": (b"PK\x03\x04" + b"\x00" * 64, "pickle/zip"),
    "empty file": (b"", "too short"),
}


def test_bulk_samples_refuse_everything_on_any_problem(api, tmp_path):
    admin = api.as_(Role.admin)
    assert api.client.post("/datasets", json={"name": "extra", "kind": "training"}, headers=admin).status_code == 201
    assert api.client.post("/datasets", json={"name": "extra", "kind": "training"}, headers=admin).status_code == 409
    (api.data_root / "a.png").write_bytes(b"a")
    good = {"sample_key": "a", "class_label": "c", "uri": str(api.data_root / "a.png"), "sha256": "0" * 64}
    outside = {**good, "sample_key": "b", "uri": "/etc/passwd"}
    response = api.client.post("/datasets/extra/samples", json={"samples": [good, outside, good]}, headers=admin)
    assert response.status_code == 422
    problems = {(i["sample_key"], i["problem"]) for i in response.json()["detail"]["items"]}
    assert ("b", "outside the data roots or a symbolic link") in problems
    assert ("a", "duplicate sample_key in this batch") in problems
    assert api.client.get("/datasets/extra", headers=admin).json()["sample_count"] == 0
    ok = api.client.post("/datasets/extra/samples", json={"samples": [good]}, headers=admin).json()
    assert (ok["added"], ok["sample_count"]) == (1, 1)
    replay = api.client.post("/datasets/extra/samples", json={"samples": [good]}, headers=admin).json()
    assert (replay["added"], replay["unchanged"]) == (0, 1)
    changed = api.client.post("/datasets/extra/samples", json={"samples": [{**good, "class_label": "d"}]}, headers=admin)
    assert changed.status_code == 422


def test_model_registration_lists_dataset_and_checkpoint_problems_together(api):
    admin = api.as_(Role.admin)
    response = api.client.post(
        "/models",
        headers=admin,
        data={"spec": '{"name": "p", "training_dataset": "nope", "proxy_dataset": "train"}'},
        files={"checkpoint": ("p.pt", BROKEN["pickle"][0])},
    )
    assert response.status_code == 422
    fields = {i["field"]: i["problem"] for i in response.json()["detail"]["items"]}
    assert "refused" in fields["checkpoint"]
    assert "not found" in fields["training_dataset"]
    assert "training set" in fields["proxy_dataset"]
    bad_spec = api.client.post("/models", headers=admin, data={"spec": "{"}, files={"checkpoint": ("x", b"")})
    assert bad_spec.status_code == 422


@pytest.mark.parametrize("kind", BROKEN)
def test_a_broken_checkpoint_is_refused_and_nothing_is_recorded(api, kind):
    data, problem = BROKEN[kind]
    counts = _recorded(api)
    response = api.client.post("/models", headers=api.as_(Role.admin), data={"spec": SPEC},
                               files={"checkpoint": ("b.safetensors", data)})
    assert response.status_code == 422, response.text
    problems = [i["problem"] for i in response.json()["detail"]["items"] if i["field"] == "checkpoint"]
    assert any(problem in p for p in problems), problems
    assert _recorded(api) == counts
    assert not api.client.app.state.store.exists(hashlib.sha256(data).hexdigest())


def test_a_broken_feature_network_is_refused(api):
    response = api.client.post("/models", headers=api.as_(Role.admin), data={"spec": SPEC},
                               files={"checkpoint": ("b", tiny_checkpoint()), "features": ("f", BROKEN["truncated"][0])})
    assert response.status_code == 422
    assert [i["field"] for i in response.json()["detail"]["items"]] == ["features"]


def test_thousands_of_broken_tensors_are_told_in_a_short_list(api):
    tensors = {f"t{i}": ("F32", [9], FOUR_FLOATS) for i in range(5000)}
    response = api.client.post("/models", headers=api.as_(Role.admin), data={"spec": SPEC},
                               files={"checkpoint": ("b", safetensors_file(tensors, oblivio_metadata()))})
    assert response.status_code == 422
    problems = [i["problem"] for i in response.json()["detail"]["items"]]
    assert len(problems) == 21 and problems[-1] == "… and 4980 more problems"


def test_until_a_worker_validates_it_a_model_is_not_usable(api):
    admin, officer = api.as_(Role.admin), api.as_(Role.officer)
    response = api.client.post("/models", headers=admin, data={"spec": SPEC}, files={"checkpoint": ("b", tiny_checkpoint())})
    assert response.status_code == 202  # no worker here and a wait of 0 s
    assert (response.json()["status"], response.json()["current_version"]) == ("validating", None)
    task = api.session.scalar(select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(1))
    assert task.task_name == "oblivio.validate_version"
    [version] = api.client.get("/models/fresh/versions", headers=admin).json()
    assert (version["status"], version["is_current"]) == ("validating", False)
    download = api.client.get("/models/fresh/versions/1/checkpoint", headers=admin)
    assert download.status_code == 409 and "validated" in download.json()["detail"]
    assert api.client.get("/models/fresh/versions/current/checkpoint", headers=admin).status_code == 404
    refused = api.client.post("/unlearn-requests", headers=officer, json={"model": "fresh", "samples": ["tr-cat-000"]})
    assert refused.status_code == 409 and "no validated version" in refused.json()["detail"]
    assert api.client.post("/models/fresh/versions/1/promote", headers=admin).status_code == 409
    assert api.client.post("/models", headers=admin, data={"spec": SPEC},
                           files={"checkpoint": ("b", tiny_checkpoint())}).status_code == 409

    validate_model(api.session, "fresh")
    api.session.commit()
    assert api.client.get("/models/fresh", headers=admin).json()["status"] == "ready"
    assert api.client.get("/models/fresh/versions/current/checkpoint", headers=admin).content == tiny_checkpoint()
    filed = api.client.post("/unlearn-requests", headers=officer, json={"model": "fresh", "samples": ["tr-cat-000"]})
    assert filed.status_code == 201


def test_a_rejected_model_is_not_downloadable_and_its_name_can_be_registered_again(api):
    admin = api.as_(Role.admin)
    api.client.post("/models", headers=admin, data={"spec": SPEC}, files={"checkpoint": ("b", tiny_checkpoint())})
    validate_model(api.session, "fresh", problems=["1 missing tensor names for family 'mae': ['pos_embed']"])
    api.session.commit()
    assert api.client.get("/models/fresh", headers=admin).json()["status"] == "rejected"
    [version] = api.client.get("/models/fresh/versions", headers=admin).json()
    assert version["status"] == "rejected" and "pos_embed" in version["problems"][0]
    gone = api.client.get("/models/fresh/versions/1/checkpoint", headers=admin)
    assert gone.status_code == 410 and "pos_embed" in gone.json()["detail"]
    events = [e.action for e in api.session.scalars(select(AuditEvent).where(AuditEvent.subject == "model:fresh"))]
    assert events == ["model.registered", "version.rejected"]

    other = tiny_checkpoint(config={"image_size": 32})
    again = api.client.post("/models", headers=admin, data={"spec": SPEC}, files={"checkpoint": ("b", other)})
    assert again.status_code == 202, again.text
    assert not api.client.app.state.store.exists(hashlib.sha256(tiny_checkpoint()).hexdigest())
    [version] = api.client.get("/models/fresh/versions", headers=admin).json()
    assert version["status"] == "validating" and version["checkpoint_digest"] == hashlib.sha256(other).hexdigest()


SPEC = '{"name": "fresh", "training_dataset": "train", "proxy_dataset": "proxy"}'


def _recorded(api) -> tuple[int, int, int]:
    count = lambda table: api.session.scalar(select(func.count()).select_from(table))  # noqa: E731
    return count(Model), count(OutboxMessage), count(AuditEvent)


def test_version_one_downloads_with_its_digest(api):
    reader = api.as_(Role.auditor)
    versions = api.client.get("/models/m/versions", headers=reader).json()
    assert [(v["version"], v["is_current"], v["status"], v["problems"]) for v in versions] == [(1, True, "published", [])]
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
    assert ready.json()["checks"] == {"database": True, "broker": True, "schema": True}


def test_families_installed_as_plugins_may_be_registered(api, monkeypatch):
    from importlib.metadata import EntryPoint

    from service.domain import families

    plugin = EntryPoint(name="my-unet", value="plugin.adapters:MyUNet", group=families.ENTRY_POINT_GROUP)
    monkeypatch.setattr(families, "entry_points", lambda group: [plugin] if group == families.ENTRY_POINT_GROUP else [])
    assert {"mae", "diffusion", "gan"} <= families.BUILTIN_FAMILIES
    assert families.known_families() == families.BUILTIN_FAMILIES | {"my-unet"}
    response = api.client.post("/models", headers=api.as_(Role.admin), data={"spec": SPEC},
                               files={"checkpoint": ("b", tiny_checkpoint(family="my-unet"))})
    assert response.status_code == 202 and response.json()["family"] == "my-unet"
