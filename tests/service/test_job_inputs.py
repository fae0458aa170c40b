"""What a job is judged on: the never-seen reference mirrors the forget set's classes; family gate defaults."""

import uuid
from collections import Counter

from service.db.enums import Role
from service.domain.jobs import Claim, claim_job, get_job
from worker.gate import DEFAULT_GATE, check_gate, gate_thresholds
from worker.inputs import gather_inputs
from worker.unlearn.families.diffusion import DiffusionAdapter


def inputs_for(api, body: dict, eval_max: int):
    created = api.client.post("/unlearn-requests", json=body, headers=api.as_(Role.officer))
    assert created.status_code == 201, created.text
    job_id = uuid.UUID(created.json()["job"]["id"])
    assert claim_job(api.session, job_id=job_id, owner="test-worker", lease_seconds=60) is Claim.claimed
    return gather_inputs(api.session, job=get_job(api.session, job_id=job_id), retain_max=100, eval_max=eval_max)


def test_the_reference_follows_the_forget_sets_class_mix(api):
    """4 dog images and 1 cat image forgotten, 2 reference images asked for: both proxy dogs (the bulk
    of the request) and one cat (every class keeps one), not two images drawn across both classes."""
    inputs = inputs_for(api, {"model": "m", "classes": ["dog"], "samples": ["tr-cat-000"]}, eval_max=2)
    assert Counter(r.class_label for r in inputs.forget.records) == {"dog": 4, "cat": 1}
    assert Counter(r.class_label for r in inputs.reference.records) == {"dog": 2, "cat": 1}
    assert all(r.sample_key.startswith("px-") for r in inputs.reference.records)  # never-trained images only


def test_family_gate_defaults_sit_between_the_service_defaults_and_the_models_own():
    assert gate_thresholds("mae", None) == {}
    diffusion = gate_thresholds("diffusion", {"forget_min_cosine_drop": None})
    assert diffusion == {"forget_min_psnr_drop": DiffusionAdapter.gate_defaults["forget_min_psnr_drop"],
                         "forget_min_cosine_drop": None}  # the model's own wins, even to disable a check
    assert DiffusionAdapter.gate_defaults["forget_min_psnr_drop"] < DEFAULT_GATE["forget_min_psnr_drop"]
    assert gate_thresholds("no-such-family", {"retain_max_psnr_drop": 0.1}) == {"retain_max_psnr_drop": 0.1}


def test_the_gate_applies_a_family_default():
    """A diffusion-sized forgetting (0.8 dB, 0.025 cosine) fails the service defaults and passes the family's."""
    from worker.evaluation import Judgement

    def metrics(drop_psnr, drop_cos):
        before = {"psnr": 10.0, "ssim": 0.3, "cosine": 0.9, "frechet": 1.0, "n": 8}
        after = {**before, "psnr": 10.0 - drop_psnr, "cosine": 0.9 - drop_cos}
        return {"before": {t: before for t in ("box_25", "box_50", "random")},
                "after": {t: after for t in ("box_25", "box_50", "random")}}

    j = Judgement({"forget": metrics(0.8, 0.025), "retain": metrics(0.0, 0.0), "reference": metrics(0.7, 0.02)},
                  None, None, {"membership": "none in this test", "class_evidence": "none"})
    failed = {c["name"] for c in check_gate(j, {}).checks if c["status"] == "failed"}
    assert failed == {"forget_min_psnr_drop", "forget_min_cosine_drop"}
    passed = check_gate(j, gate_thresholds("diffusion", None))
    assert not [c for c in passed.checks if c["status"] == "failed"], passed.checks
