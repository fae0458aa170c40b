"""Submit over HTTP, a real Celery worker process unlearns, version 2 comes out (Postgres+Redis and embedded)."""

import hashlib
import json
import time

import pytest
import torch

from service.db.enums import Role
from service.audit.signing import load_public_pem, verify_signed
from tests.e2e.stack import launch, write_images
from tests.unlearn.tiny_models import TINY_CONFIGS
from worker.unlearn import checkpoint_from_bytes, checkpoint_to_bytes, create_adapter

pytestmark = pytest.mark.integration
# Enough steps that the test can watch progress; a tiny model makes each step a few milliseconds.
DEFAULTS = {"lr": 1e-3, "alpha": 0.25, "batch_size": 8, "steps": 600, "seed": 0}
# A randomly initialised tiny model has no quality to protect: only the forget-side drop is gated here.
# The measured defaults are checked on the demo model in tests/unlearn; an impossible threshold below.
TINY_GATE = {"retain_max_psnr_drop": None, "retain_max_cosine_drop": None, "forget_min_cosine_drop": None,
             "forget_min_psnr_drop": 0.0, "forget_max_cosine_over_reference": None, "mia_max_auc_above_chance": None,
             "mia_max_auc_below_chance": None, "class_max_recognition_over_reference": None}


@pytest.fixture(params=["postgres", "embedded"])
def stack(request, tmp_path):
    stack = launch(request.param, tmp_path)
    yield stack
    stack.stop()


def register_demo_data(stack, gate: dict | None = None, per_class: int = 12, settle=None) -> bytes:
    """Datasets and the tiny model; ``settle(stack)`` records the checkpoint's verdict where no worker runs."""
    admin = stack.client(Role.admin)
    for name, kind, rows in (
        ("train", "training", write_images(stack.data_root / "train", "tr", per_class, seed=1)),
        ("proxy", "proxy", write_images(stack.data_root / "proxy", "px", 8, seed=2)),
    ):
        admin.post("/datasets", json={"name": name, "kind": kind}).raise_for_status()
        admin.post(f"/datasets/{name}/samples", json={"samples": rows}).raise_for_status()
    config = {**TINY_CONFIGS["mae"], "pixel_mean": [0.4], "pixel_std": [0.4]}
    base = checkpoint_to_bytes(create_adapter("mae", config, seed=0))
    spec = {"name": "tiny", "training_dataset": "train", "proxy_dataset": "proxy", "unlearn_defaults": DEFAULTS,
            "gate_thresholds": gate or TINY_GATE}
    registered = admin.post("/models", data={"spec": json.dumps(spec)}, files={"checkpoint": ("b.safetensors", base)})
    assert registered.status_code in (201, 202), registered.text  # 202: the worker is still starting up
    if settle is not None:
        settle(stack)
    wait_until_ready(admin, "tiny")
    return base


def wait_until_ready(client, model: str, timeout: float = 180) -> None:
    """Until a worker has validated the model's base checkpoint."""
    deadline = time.monotonic() + timeout
    while (status := client.get(f"/models/{model}").json()["status"]) == "validating" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert status == "ready", client.get(f"/models/{model}/versions").json()


def follow(client, request_id: str, timeout: float = 240) -> tuple[dict, list[dict]]:
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/unlearn-requests/{request_id}").json()
        seen.append(body)
        if body["status"] in ("completed", "failed", "cancelled", "rejected"):
            return body, seen
        time.sleep(0.1)
    raise AssertionError(f"request still {seen[-1]['status']} after {timeout}s")


def test_request_to_new_version(stack):
    base = register_demo_data(stack)
    officer, auditor = stack.client(Role.officer), stack.client(Role.auditor)
    created = officer.post("/unlearn-requests", json={"model": "tiny", "classes": ["circle"], "samples": ["tr-square-000"]})
    assert created.status_code == 201, created.text
    final, seen = follow(auditor, created.json()["id"])
    assert final["status"] == "completed", (final, stack.log_tail())
    assert final["result_version"] == 2

    running = [b for b in seen if b["status"] == "running" and b["job"]["progress"]["step"] > 0]
    assert running, "progress was never visible while running"
    assert running[0]["job"]["progress"]["total"] == 600
    assert running[0]["job"]["progress"]["phase"] == "unlearning"  # steps count unlearning only
    assert running[0]["job"]["progress"]["steps_per_second"] > 0  # the worker's own rate, from its unlearning steps
    assert set(running[0]["job"]["progress"]["losses"]) >= {"loss", "retain", "forget"}
    assert created.json()["planned_steps"] == final["planned_steps"] == final["job"]["planned_steps"] == 600
    job = auditor.get(f"/jobs/{final['job']['id']}").json()
    assert job["config"] == final["effective_config"] and job["config"]["steps"] == 600
    ran = job["progress"]["step"]  # the probe may stop the run before its 600-step budget
    assert 0 < ran <= 600
    # at most 200 evenly spaced entries over the budget (every 3rd step), the budget's last included
    assert [h["step"] for h in job["loss_history"]] == [s for s in range(1, ran + 1) if s % 3 == 0 or s == 600]
    assert set(job["loss_history"][0]) >= {"step", "loss", "retain", "forget"}

    versions = auditor.get("/models/tiny/versions").json()
    assert [(v["version"], v["parent_version"], v["status"], v["is_current"]) for v in versions] == [
        (1, None, "superseded", False),
        (2, 1, "published", True),
    ]
    assert versions[1]["absorbed_request_ids"] == [final["id"]]
    assert auditor.get("/models/tiny").json()["current_version"] == 2

    download = auditor.get("/models/tiny/versions/current/checkpoint")
    digest = hashlib.sha256(download.content).hexdigest()
    assert digest == versions[1]["checkpoint_digest"] == download.headers["x-checkpoint-sha256"]
    new, header = checkpoint_from_bytes(download.content)
    old, _ = checkpoint_from_bytes(base)
    assert header["parent_digest"] == versions[0]["checkpoint_digest"]
    assert header["request_ids"] == [final["id"]]
    old_sd, new_sd = old.state_dict(), new.state_dict()
    decoder = [k for k in old_sd if not old.is_encoder_key(k)]
    encoder = [k for k in old_sd if old.is_encoder_key(k)]
    assert decoder and all(torch.equal(old_sd[k], new_sd[k]) for k in decoder)
    assert any(not torch.equal(old_sd[k], new_sd[k]) for k in encoder)

    again = officer.post("/unlearn-requests", json={"model": "tiny", "samples": ["tr-circle-003", "tr-square-000"]})
    assert again.status_code == 422
    assert {i["problem"] for i in again.json()["detail"]["items"]} == {"already erased from this model"}

    report = auditor.get(f"/unlearn-requests/{final['id']}/report")
    assert report.status_code == 200
    document = report.json()
    assert document["body"]["outcome"] == "published"
    assert document["body"]["checkpoints"]["new"] == {"version": 2, "digest": digest}
    assert document["body"]["data_read"]["retained_training_samples_read"] == 0
    gate, verification = document["body"]["gate"], document["body"]["verification"]
    assert gate["verdict"] == "passed_with_unevaluated_checks" and "mia_max_auc_above_chance" in gate["unevaluated_checks"]
    mia = verification["membership"]  # computed and reported even where the gate does not use it
    assert {"raw", "calibrated_difference", "calibrated_ratio"} <= set(mia) and 0 <= mia["raw"]["after"]["auc"] <= 1
    assert set(mia["verdict"]) >= {"forgotten", "not_over_forgotten"}
    attempt = verification["attempts"][0]  # the forget-side check holds at the first probe: the run stops there
    assert attempt["budget"] == 600 and attempt["steps"] == attempt["steps_to_verdict"] < 600
    assert {s["sample_key"] for r in document["body"]["requests"] for s in r["samples"]} >= {"tr-square-000"}
    public_key = load_public_pem(auditor.get("/signing-key").text)
    assert verify_signed(document, public_key) == (True, "signature valid")
    html = auditor.get(f"/unlearn-requests/{final['id']}/report", params={"format": "html"})
    assert html.status_code == 200 and "PASSED" in html.text
    assert_no_forget_images(html.text, document["body"], stack.data_root)
    assert auditor.get("/audit-events/verify").json()["ok"] is True
    assert_receipt_events_sealed_and_proved(auditor, final["id"], public_key)


def assert_receipt_events_sealed_and_proved(client, request_id: str, public_key) -> None:
    """The API's own sealer (Postgres leader or the embedded loop) seals the request's events within seconds,
    and the receipt's inclusion proofs verify offline as `oblivio verify` checks them."""
    from service.audit.offline import verify_document

    deadline = time.monotonic() + 15
    while True:
        receipt = client.get(f"/unlearn-requests/{request_id}/receipt").json()
        events = receipt["transparency_log"]["events"]
        if all(e["index"] is not None for e in events) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    ok, reason = verify_document(receipt, public_key)
    assert ok and f"{len(events)} events included in checkpoint size" in reason, reason


def assert_no_forget_images(html: str, body: dict, data_root) -> None:
    """Every embedded image is a listed retain-side figure; none holds or is a forget-set image."""
    import base64
    import re

    embedded = [base64.b64decode(b) for b in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html)]
    assert embedded, "the report shows retain-side figures"
    figures = body["figures"]
    assert {hashlib.sha256(e).hexdigest() for e in embedded} == {f["png_digest"] for f in figures}
    forget_keys = {s["sample_key"] for r in body["requests"] for s in r["samples"]}
    forget_hashes = {s["sha256"] for r in body["requests"] for s in r["samples"]}
    assert all(f["set"] == "retain" and not set(f["sample_keys"]) & forget_keys for f in figures)
    assert not {hashlib.sha256(e).hexdigest() for e in embedded} & forget_hashes


def test_a_chosen_method_runs_and_is_recorded(tmp_path):
    """A non-default method (a full-model baseline with a parameter) goes through the same pipeline."""
    stack = launch("embedded", tmp_path)
    try:
        base = register_demo_data(stack, gate={k: None for k in TINY_GATE})
        officer, auditor = stack.client(Role.officer), stack.client(Role.auditor)
        body = {"model": "tiny", "samples": ["tr-square-000"], "method": "max_loss",
                "config": {"steps": 20, "params": {"forget_bound": 0.5}}}  # fmt: skip
        created = officer.post("/unlearn-requests", json=body)
        assert created.status_code == 201, created.text
        final, _ = follow(auditor, created.json()["id"])
        assert final["status"] == "completed", (final, stack.log_tail())
        assert final["method"] == "max_loss"
        new, header = checkpoint_from_bytes(auditor.get("/models/tiny/versions/current/checkpoint").content)
        assert header["method"] == "max_loss" and header["unlearn_config"]["params"] == {"forget_bound": 0.5}
        assert header["unlearn_config"]["steps"] == 20
        old, _ = checkpoint_from_bytes(base)
        old_sd, new_sd = old.state_dict(), new.state_dict()
        assert not torch.equal(old_sd["decoder_pred.weight"], new_sd["decoder_pred.weight"])  # whole generator
        body = auditor.get(f"/unlearn-requests/{final['id']}/report").json()["body"]
        assert body["job"]["method"] == "max_loss" and body["job"]["config"]["params"] == {"forget_bound": 0.5}
        assert body["gate"]["verdict"] == "not_evaluated"  # every threshold null: published, but never "passed"
        assert {c["status"] for c in body["gate"]["checks"]} <= {"disabled", "not_applicable"}
    finally:
        stack.stop()
