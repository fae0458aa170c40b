"""Unlearning settings and gate thresholds: one strict schema at POST /models and POST /unlearn-requests,
defaults derived from the model, the effective configuration and step count shown, the loss history kept."""

import json

import pytest
from sqlalchemy import func, select

from service.db.enums import JobPhase, Role
from service.db.models import Model
from service.domain.jobs import Claim, claim_job, get_job, heartbeat
from service.schemas.unlearn import GATE_CHECKS
from tests.builders import tiny_checkpoint, validate_model
from tests.service.test_requests import counts, submit

SAMPLE = '"model": "m", "samples": ["tr-cat-000"]'
# (raw JSON of the request's config, a fragment the 422 must carry): item 8 of issue 11 and its kin
BAD_CONFIGS = [
    ('{"lr": -5}', "greater than 0"),
    ('{"lr": 0}', "greater than 0"),
    ('{"rm_rf": true}', "unknown key(s) ['rm_rf']"),
    ('{"lr": true}', "valid number"),
    ('{"lr": "0.001"}', "valid number"),
    ('{"max_steps": "5"}', "max_steps: renamed 'steps'"),
    ('{"epochs": 3}', "epochs: removed"),
    ('{"steps": "5"}', "valid integer"),
    ('{"steps": 5.5}', "valid integer"),
    ('{"steps": true}', "valid integer"),
    ('{"steps": 0}', "greater than or equal to 1"),
    ('{"steps": 10000001}', "less than or equal to 10000"),
    ('{"grad_clip": 1e999}', "finite number"),
    ('{"grad_clip": 0}', "greater than 0"),
    ('{"alpha": NaN}', "finite number"),
    ('{"alpha": Infinity}', "finite number"),
    ('{"weight_decay": -0.1}', "greater than or equal to 0"),
    ('{"batch_size": 7}', "multiple of 2"),
    ('{"batch_size": 64.0}', "valid integer"),
    ('{"seed": -1}', "greater than or equal to 0"),
    ('{"optimizer": "sgd"}', "'adam' or 'adamw'"),
    ('{"lr": null}', "valid number"),
    ('{"params": null}', "valid dictionary"),
    ('[1, 2]', "valid dictionary"),
]


def post_raw(api, body: str, role=Role.officer):
    headers = {**api.as_(role), "Content-Type": "application/json"}
    return api.client.post("/unlearn-requests", content=body.encode(), headers=headers)


@pytest.mark.parametrize(("config", "fragment"), BAD_CONFIGS)
def test_a_bad_request_config_is_422_naming_the_problem_and_nothing_is_recorded(api, config, fragment):
    response = post_raw(api, f'{{{SAMPLE}, "config": {config}}}')
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "ValidationError"
    assert any(fragment in item["msg"] and item["loc"][:2] == ["body", "config"] for item in response.json()["detail"]["items"]), (
        response.json())
    assert counts(api) == (0, 0, 0)


def test_unknown_keys_are_named_with_the_known_ones_and_counted_past_twenty(api):
    response = post_raw(api, f'{{{SAMPLE}, "config": {json.dumps({f"k{i}": 1 for i in range(500)})}}}')
    assert response.status_code == 422
    [item] = response.json()["detail"]["items"]
    assert item["type"] == "unknown_keys" and "and 480 more" in item["msg"] and "'k19'" in item["msg"]
    assert "'k20'" not in item["msg"] and "known keys: ['lr', 'alpha', 'steps', 'batch_size'" in item["msg"]
    assert len(response.content) < 2000


def register(api, name: str, spec: dict | str | None = None, **header) -> object:
    body = spec if isinstance(spec, str) else json.dumps({"name": name, "training_dataset": "train",
                                                          "proxy_dataset": "proxy", **(spec or {})})
    checkpoint = tiny_checkpoint(**header)
    response = api.client.post("/models", headers=api.as_(Role.admin), data={"spec": body},
                               files={"checkpoint": ("c.safetensors", checkpoint)})
    if response.status_code == 202:  # no worker here: settle its verdict as a worker would
        validate_model(api.session, name)
        api.session.commit()
    return response


def model_count(api) -> int:
    return api.session.scalar(select(func.count()).select_from(Model))


@pytest.mark.parametrize(("fragment", "message"), [
    ('"unlearn_defaults": {"lr": -5}', "greater than 0"),
    ('"unlearn_defaults": {"rm_rf": true}', "unknown key(s) ['rm_rf']"),
    ('"unlearn_defaults": {"lr": true}', "valid number"),
    ('"unlearn_defaults": {"max_steps": "5"}', "unknown key(s) ['max_steps']"),
    ('"unlearn_defaults": {"grad_clip": 1e999}', "finite number"),
    ('"unlearn_defaults": {"params": {}}', "unknown key(s) ['params']"),
    ('"gate_thresholds": {"forget_min_psnr_dorp": 1.0}', "unknown key(s) ['forget_min_psnr_dorp']; known keys: ["),
    ('"gate_thresholds": {"forget_min_psnr_drop": NaN}', "finite number"),
    ('"gate_thresholds": {"forget_min_psnr_drop": -Infinity}', "finite number"),
    ('"gate_thresholds": {"forget_min_psnr_drop": 1e999}', "finite number"),
    ('"gate_thresholds": {"forget_min_psnr_drop": "2"}', "valid number"),
    ('"gate_thresholds": {"forget_min_psnr_drop": false}', "valid number"),
])  # fmt: skip
def test_a_bad_model_spec_is_422_naming_the_problem_and_nothing_is_recorded(api, fragment, message):
    before = model_count(api)
    response = register(api, "bad", '{"name": "bad", "training_dataset": "train", ' + fragment + "}")
    assert response.status_code == 422, response.text
    items = response.json()["detail"]["items"]
    assert any(message in item["msg"] for item in items), items
    assert all("input" not in item for item in items)  # the spec is not echoed back
    assert model_count(api) == before
    assert api.client.get("/models/bad", headers=api.as_(Role.admin)).status_code == 404


def test_a_misspelt_gate_key_lists_every_known_check(api):
    response = register(api, "bad", {"gate_thresholds": {"retain_max_psnr": 1.0}})
    [item] = response.json()["detail"]["items"]
    assert item["loc"] == ["gate_thresholds"] and all(name in item["msg"] for name in GATE_CHECKS)


def test_null_disables_a_gate_check_and_only_given_checks_are_stored(api):
    response = register(api, "gated", {"gate_thresholds": {"forget_min_psnr_drop": None, "retain_max_psnr_drop": 0.5}})
    assert response.status_code == 202, response.text
    assert response.json()["gate_thresholds"] == {"forget_min_psnr_drop": None, "retain_max_psnr_drop": 0.5}


def test_a_checkpoint_header_with_bad_defaults_is_refused(api):
    response = register(api, "hdr", unlearn_defaults={"lr": "fast", "momentum": 0.9})
    assert response.status_code == 422
    [item] = response.json()["detail"]["items"]
    assert item["field"] == "checkpoint" and item["problem"].startswith("header unlearn_defaults: ")
    assert "momentum" in item["problem"]
    assert model_count(api) == 1


def test_a_model_without_defaults_gets_its_familys_recommendation_scaled_to_its_width(api):
    response = register(api, "wide", config={"image_size": 16, "embed_dim": 192})
    assert response.status_code == 202, response.text
    recommended = {"lr": 5e-4, "alpha": 0.25, "steps": 600, "batch_size": 64, "optimizer": "adam",
                   "weight_decay": 0.0, "grad_clip": None, "seed": 0, "forget_target": "noise", "noise_share": 0.25,
                   "substitutes": 4}  # fmt: skip
    assert response.json()["unlearn_defaults"] == recommended
    assert api.session.scalar(select(Model.unlearn_defaults).where(Model.name == "wide")) == recommended
    demo = register(api, "narrow", config={"image_size": 16, "embed_dim": 96}).json()
    assert demo["unlearn_defaults"]["lr"] == 1e-3


def test_an_older_header_is_read_with_max_steps_as_steps_and_the_spec_overrides_it(api):
    legacy = {"lr": 2e-3, "alpha": 0.25, "epochs": 3, "batch_size": 64, "optimizer": "adam", "weight_decay": 0.0,
              "grad_clip": None, "seed": 0, "max_steps": 450}  # fmt: skip
    response = register(api, "old", {"unlearn_defaults": {"alpha": 0.5}}, unlearn_defaults=legacy)
    assert response.status_code == 202, response.text
    defaults = response.json()["unlearn_defaults"]
    assert (defaults["steps"], defaults["lr"], defaults["alpha"]) == (450, 2e-3, 0.5)
    assert "epochs" not in defaults and "max_steps" not in defaults


def test_the_effective_config_and_step_count_are_shown_at_submission_and_after(api):
    assert register(api, "wide", config={"image_size": 16, "embed_dim": 768}).status_code == 202
    body = {"model": "wide", "samples": ["tr-cat-000"], "method": "max_loss",
            "config": {"steps": 80, "grad_clip": 1.0}}  # fmt: skip
    created = submit(api, body)
    assert created.status_code == 201, created.text
    expected = {"lr": 1.3e-4, "alpha": 0.25, "steps": 80, "batch_size": 64, "optimizer": "adam",
                "weight_decay": 0.0, "grad_clip": 1.0, "seed": 0, "forget_target": "noise", "noise_share": 0.25,
                "substitutes": 4, "params": {"forget_bound": None}}  # fmt: skip
    view = created.json()
    assert view["config"] == {"steps": 80, "grad_clip": 1.0}  # what the officer asked for
    assert view["effective_config"] == expected and view["planned_steps"] == 80
    assert view["job"]["planned_steps"] == 80
    again = api.client.get(f"/unlearn-requests/{view['id']}", headers=api.as_(Role.auditor)).json()
    assert again["effective_config"] == expected and again["planned_steps"] == 80
    job = api.client.get(f"/jobs/{view['job']['id']}", headers=api.as_(Role.auditor)).json()
    assert job["config"] == expected and job["planned_steps"] == 80


def test_a_request_awaiting_approval_shows_what_it_will_run(api):
    api.client.app.state.settings.require_approval = True
    created = submit(api, {"model": "m", "samples": ["tr-cat-000"], "config": {"alpha": 0.5}})
    assert created.status_code == 201 and created.json()["status"] == "pending_approval"
    assert created.json()["job"] is None
    assert created.json()["effective_config"]["lr"] == 0.001  # the model's header default
    assert created.json()["effective_config"]["alpha"] == 0.5 and created.json()["planned_steps"] == 600


def test_null_grad_clip_overrides_a_model_default_clip(api):
    assert register(api, "clipped", {"unlearn_defaults": {"grad_clip": 2.0}}).status_code == 202
    created = submit(api, {"model": "clipped", "samples": ["tr-cat-000"], "config": {"grad_clip": None}})
    assert created.status_code == 201, created.text
    assert created.json()["effective_config"]["grad_clip"] is None


@pytest.mark.parametrize(("total", "every"), [(57, 9), (600, 7), (1000, 1)])
def test_the_job_keeps_up_to_200_evenly_spaced_loss_entries_and_the_last(api, total, every):
    job_id = submit(api, {"model": "m", "samples": ["tr-cat-000"]}).json()["job"]["id"]
    assert claim_job(api.session, job_id=job_id, owner="w", lease_seconds=60) is Claim.claimed
    pending = []
    for step in range(1, total + 1):
        pending.append({"step": step, "loss": 1.0 / step})
        if step % every == 0 or step == total:
            assert heartbeat(api.session, job_id=job_id, owner="w", lease_seconds=60, phase=JobPhase.unlearning,
                             step=step, total=total, rate=None,
                             losses={"loss": 1.0 / step}, history=pending)
            pending = []
    steps = [h["step"] for h in get_job(api.session, job_id=job_id).loss_history]
    stride = -(-total // 200)
    assert steps == sorted({*range(stride, total + 1, stride), total}) and len(steps) <= 201
    assert len(steps) == min(total, 200) + (total % stride != 0)
