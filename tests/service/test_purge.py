"""A purged version is gone whatever the store holds; superseded checkpoints are for admins, and every download is logged."""

import json

from sqlalchemy import select

from service.db.enums import Role
from service.db.models import AuditEvent
from service.domain.hygiene import purge_superseded
from tests.builders import publish_job, tiny_checkpoint, validate_model

BASE = tiny_checkpoint(unlearn_defaults={"lr": 0.001})  # the fixture's model m registered these bytes


def register(api, name: str) -> dict:
    spec = {"name": name, "training_dataset": "train", "proxy_dataset": "proxy"}
    response = api.client.post("/models", headers=api.as_(Role.admin), data={"spec": json.dumps(spec)},
                               files={"checkpoint": ("c.safetensors", BASE)})
    assert response.status_code == 202, response.text  # no worker here: settle its verdict as a worker would
    validate_model(api.session, name)
    api.session.commit()
    return api.client.get(f"/models/{name}/versions", headers=api.as_(Role.admin)).json()[0]


def erase_once(api, model: str) -> None:
    created = api.client.post("/unlearn-requests", json={"model": model, "samples": ["tr-cat-000"]}, headers=api.as_(Role.officer))
    assert created.status_code == 201, created.text
    publish_job(api.session, api.client.app.state.store, created.json()["job"]["id"], f"{model} v2".encode())


def download(api, model: str, version: int, role: Role):
    return api.client.get(f"/models/{model}/versions/{version}/checkpoint", headers=api.as_(role))


def purge(api) -> list:
    purged = purge_superseded(api.session, store=api.client.app.state.store, grace_seconds=0, actor="test")
    api.session.commit()
    return [(v.model_id, v.version) for v in purged]


def test_a_purged_version_is_gone_even_while_another_model_shares_its_blob(api):
    store = api.client.app.state.store
    shared = register(api, "twin")["checkpoint_digest"]
    store.put_derived(shared, "teacher-cache", b"targets")
    erase_once(api, "m")
    assert len(purge(api)) == 1
    gone = download(api, "m", 1, Role.admin)
    assert gone.status_code == 410 and gone.json()["error"] == "Gone" and "purged" in gone.json()["detail"]
    assert store.exists(shared) and store.get_derived(shared, "teacher-cache") == b"targets"  # twin v1 is live
    twin = download(api, "twin", 1, Role.officer)
    assert twin.status_code == 200 and twin.content == BASE

    erase_once(api, "twin")
    assert len(purge(api)) == 1
    assert not store.exists(shared) and store.get_derived(shared, "teacher-cache") is None  # nothing live uses it
    assert download(api, "twin", 1, Role.admin).status_code == 410

    assert register(api, "again")["checkpoint_digest"] == shared  # a re-upload brings the bytes back...
    assert download(api, "again", 1, Role.officer).status_code == 200
    for model in ("m", "twin"):  # ...but never the purged versions
        assert download(api, model, 1, Role.admin).status_code == 410


def test_superseded_checkpoints_are_for_admins_and_every_download_is_logged(api):
    erase_once(api, "m")
    for role in (Role.officer, Role.auditor, Role.reviewer):
        refused = download(api, "m", 1, role)
        assert refused.status_code == 403, role
        assert "predates an erasure" in refused.json()["detail"] and "only an admin" in refused.json()["detail"]
    allowed = download(api, "m", 1, Role.admin)
    assert allowed.status_code == 200 and allowed.content == BASE
    assert download(api, "m", "current", Role.officer).status_code == 200
    events = api.session.scalars(select(AuditEvent).where(AuditEvent.action == "checkpoint.downloaded")).all()
    assert [(e.actor.split(":")[-1], e.data["version"], e.data["status"]) for e in events] == [
        ("admin", 1, "superseded"), ("officer", 2, "published")
    ]
    assert events[0].data["checkpoint_digest"] == allowed.headers["x-checkpoint-sha256"]
