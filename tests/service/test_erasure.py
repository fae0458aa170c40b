"""Erasure belongs to a model's lineage: a sample forgotten by one model can still be asked of another."""

import json
import uuid

from sqlalchemy import create_engine, select, text

from service.config import Settings
from service.db.enums import Mode, Role
from service.db.models import Erasure, Job, Sample
from service.db.migrate import upgrade
from service.domain.hygiene import delete_forget_files
from service.domain.jobs import Claim, claim_job, get_job
from tests.builders import publish_job, tiny_checkpoint, validate_model
from tests.conftest import fresh_database
from worker.inputs import gather_inputs


def register(api, name: str, checkpoint: bytes | None = None) -> None:
    spec = {"name": name, "training_dataset": "train", "proxy_dataset": "proxy"}
    response = api.client.post("/models", headers=api.as_(Role.admin), data={"spec": json.dumps(spec)},
                               files={"checkpoint": ("c.safetensors", checkpoint or tiny_checkpoint(name=name))})
    assert response.status_code == 202, response.text  # no worker here: settle its verdict as a worker would
    validate_model(api.session, name)
    api.session.commit()


def submit(api, body):
    return api.client.post("/unlearn-requests", json=body, headers=api.as_(Role.officer))


def forget(api, body) -> dict:
    created = submit(api, body)
    assert created.status_code == 201, created.text
    publish_job(api.session, api.client.app.state.store, created.json()["job"]["id"], f"after {body}".encode())
    return created.json()


def inputs_of(api, request: dict):
    job_id = uuid.UUID(request["job"]["id"])
    assert claim_job(api.session, job_id=job_id, owner="test-worker", lease_seconds=60) is Claim.claimed
    return gather_inputs(api.session, job=get_job(api.session, job_id=job_id), retain_max=100, eval_max=0)


def problems(response) -> dict:
    assert response.status_code == 422, response.text
    return {(i["field"], i.get("value")): i["problem"] for i in response.json()["detail"]["items"]}


def test_a_sample_forgotten_by_one_model_can_be_asked_of_another(api):
    register(api, "m2")
    first = forget(api, {"model": "m", "samples": ["tr-cat-000"]})
    assert problems(submit(api, {"model": "m", "samples": ["tr-cat-000", "tr-cat-001"]})) == {
        ("samples", "tr-cat-000"): "already erased from this model"
    }
    second = forget(api, {"model": "m2", "samples": ["tr-cat-000"]})
    rows = api.session.execute(select(Erasure.model_id, Erasure.request_id, Erasure.version_id)
                               .join(Sample, Sample.id == Erasure.sample_id).where(Sample.sample_key == "tr-cat-000")).all()
    assert sorted((str(r), v) for _, r, v in rows) == sorted(
        (req["id"], v) for req, v in ((first, _version_id(api, "m", 2)), (second, _version_id(api, "m2", 2)))
    )
    assert problems(submit(api, {"model": "m2", "samples": ["tr-cat-000"]})) == {
        ("samples", "tr-cat-000"): "already erased from this model"
    }


def test_a_class_erased_from_one_model_stays_open_for_another(api):
    register(api, "m2")
    forget(api, {"model": "m", "classes": ["dog"]})
    assert problems(submit(api, {"model": "m", "classes": ["dog"]})) == {
        ("classes", "dog"): "every sample of this class is already erased"
    }
    again = submit(api, {"model": "m2", "classes": ["dog"]})
    assert again.status_code == 201, again.text
    inputs = inputs_of(api, again.json())
    assert sorted(r.sample_key for r in inputs.forget.records) == [f"tr-dog-{i:03d}" for i in range(4)]


def test_with_retain_reads_what_other_models_forgot_but_never_its_own_erasures(api):
    register(api, "m2")
    forget(api, {"model": "m", "samples": ["tr-cat-000", "tr-cat-001"]})
    forget(api, {"model": "m2", "samples": ["tr-fox-000"]})

    def retained(model: str) -> set[str]:
        created = submit(api, {"model": model, "samples": ["tr-dog-000"], "mode": Mode.with_retain.value})
        assert created.status_code == 201, created.text
        return {r.sample_key for r in inputs_of(api, created.json()).retain.records}

    on_m, on_m2 = retained("m"), retained("m2")
    assert not {"tr-cat-000", "tr-cat-001"} & on_m and "tr-fox-000" in on_m
    assert {"tr-cat-000", "tr-cat-001"} <= on_m2 and "tr-fox-000" not in on_m2


def test_a_sample_named_by_two_queued_requests_is_marked_once_by_the_first(api):
    api.client.app.state.settings.batch_window_seconds = 60
    first = submit(api, {"model": "m", "samples": ["tr-fox-001"]}).json()
    second = submit(api, {"model": "m", "samples": ["tr-fox-001"], "classes": ["fox"]}).json()
    assert first["job"]["id"] == second["job"]["id"]
    job = api.session.get(Job, uuid.UUID(first["job"]["id"]))
    job.not_before = job.created_at
    api.session.commit()
    publish_job(api.session, api.client.app.state.store, job.id, b"v2")
    marks = dict(api.session.execute(select(Sample.sample_key, Erasure.request_id).join(Erasure)).all())
    assert {k: str(v) for k, v in marks.items()} == {
        "tr-fox-000": second["id"], "tr-fox-001": first["id"], "tr-fox-002": second["id"], "tr-fox-003": second["id"]
    }


def test_source_files_stay_while_another_model_has_not_forgotten_them(api):
    register(api, "m2")
    forget(api, {"model": "m", "samples": ["tr-cat-002"]})
    sample_id = api.session.scalar(select(Sample.id).where(Sample.sample_key == "tr-cat-002"))
    roots = api.client.app.state.settings.data_roots
    assert delete_forget_files(api.session, sample_ids=[sample_id], roots=roots, actor="test", job_id="j1") == 0
    assert (api.data_root / "tr-cat-002.bin").is_file()
    forget(api, {"model": "m2", "samples": ["tr-cat-002"]})
    assert delete_forget_files(api.session, sample_ids=[sample_id], roots=roots, actor="test", job_id="j2") == 1
    assert not (api.data_root / "tr-cat-002.bin").exists()


def test_migration_moves_sample_marks_to_the_model_that_erased_them(tmp_path):
    url = fresh_database("oblivio_erasure_migration")
    settings = Settings(database_url=url, home=tmp_path)
    upgrade(settings, "0003")
    engine = create_engine(url)
    with engine.begin() as conn:
        for sql in LEGACY_ROWS:
            conn.execute(text(sql))
    upgrade(settings)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT model_id, sample_id, request_id::text, version_id FROM erasures ORDER BY sample_id"))
        assert [tuple(r) for r in rows] == [(1, 1, REQ_NAMED, 2), (1, 2, REQ_CLASS, 2)]
        columns = {r[0] for r in conn.execute(text("SELECT column_name FROM information_schema.columns WHERE table_name='samples'"))}
        assert not {"erased_at", "erased_by_version_id"} & columns
    engine.dispose()


def _version_id(api, model: str, version: int) -> int:
    from service.db.models import Model, ModelVersion

    return api.session.scalar(select(ModelVersion.id).join(Model).where(Model.name == model, ModelVersion.version == version))


JOB = "11111111-1111-4111-8111-111111111111"
REQ_NAMED, REQ_CLASS = "22222222-2222-4222-8222-222222222222", "33333333-3333-4333-8333-333333333333"
_NOW = "'2026-01-01T00:00:00+00:00'"
LEGACY_ROWS = [
    "INSERT INTO datasets (id, name, description, kind, created_at) VALUES (1, 'train', '', 'training', now())",
    "INSERT INTO api_keys (id, name, role, prefix, secret_hash, created_at) VALUES (1, 'o', 'officer', 'p', 'h', now())",
    "INSERT INTO models (id, name, family, adapter_config, training_dataset_id, unlearn_defaults, gate_thresholds, "
    "current_version, created_at) VALUES (1, 'm', 'mae', '{}', 1, '{}', '{}', 2, now())",
    f"INSERT INTO jobs (id, model_id, status, mode, method, config, progress_step, progress_total, losses, loss_history, "
    f"attempts, created_at) VALUES ('{JOB}', 1, 'succeeded', 'retain_free', 'encoder_l2', '{{}}', 0, 0, '{{}}', '[]', 1, now())",
    "INSERT INTO model_versions (id, model_id, version, checkpoint_digest, size_bytes, absorbed_request_ids, metrics, "
    "status, created_at) VALUES (1, 1, 1, 'a', 1, '[]', '{}', 'superseded', now())",
    f"INSERT INTO model_versions (id, model_id, version, parent_version, checkpoint_digest, size_bytes, created_by_job_id, "
    f"absorbed_request_ids, metrics, status, created_at) VALUES (2, 1, 2, 1, 'b', 1, '{JOB}', '[]', '{{}}', 'published', now())",
    *[f"INSERT INTO unlearn_requests (id, api_key_id, body_digest, model_id, mode, method, classes, config, status, "
      f"job_id, received_at, due_at, updated_at) VALUES ('{rid}', 1, 'd', 1, 'retain_free', 'encoder_l2', '{classes}', "
      f"'{{}}', 'completed', '{JOB}', {at}, now(), now())"
      for rid, classes, at in ((REQ_NAMED, "[]", _NOW), (REQ_CLASS, '["dog"]', "now()"))],
    f"INSERT INTO samples (id, dataset_id, sample_key, class_label, uri, sha256, erased_at, erased_by_version_id) VALUES "
    f"(1, 1, 'cat-0', 'cat', 'u', 's', now(), 2), (2, 1, 'dog-0', 'dog', 'u', 's', now(), 2), (3, 1, 'dog-1', 'dog', 'u', 's', NULL, NULL)",
    f"INSERT INTO request_samples (request_id, position, sample_id) VALUES ('{REQ_NAMED}', 0, 1)",
]
