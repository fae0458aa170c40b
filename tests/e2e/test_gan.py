"""A GAN model over HTTP: a real worker validates its checkpoint (the sampler forward pass), runs gan_cascade for
a class request and an item request, judges them on fixed latent codes and publishes versions with reports."""

import json

import pytest

from service.db.enums import Role
from tests.e2e.stack import launch, write_images
from tests.e2e.test_end_to_end import follow, wait_until_ready
from worker.unlearn import checkpoint_from_bytes, checkpoint_to_bytes, create_adapter

pytestmark = pytest.mark.integration
TINY_GAN = {"image_size": 16, "in_chans": 1, "latent_dim": 8, "g_width": 8, "d_width": 8}
SAMPLER_CHECKS = {"sampler_class_max_share_ratio", "sampler_mia_max_auc_above_chance",
                  "sampler_mia_max_auc_below_chance", "sampler_retain_max_frechet_increase"}  # fmt: skip


@pytest.fixture
def stack(tmp_path):
    stack = launch("postgres", tmp_path)
    yield stack
    stack.stop()


def test_class_and_item_requests_against_a_gan_publish_versions_with_reports(stack):
    admin, officer, auditor = stack.client(Role.admin), stack.client(Role.officer), stack.client(Role.auditor)
    for name, kind, rows in (
        ("train", "training", write_images(stack.data_root / "train", "tr", 12, seed=1)),
        ("proxy", "proxy", write_images(stack.data_root / "proxy", "px", 8, seed=2)),
    ):
        admin.post("/datasets", json={"name": name, "kind": kind}).raise_for_status()
        admin.post(f"/datasets/{name}/samples", json={"samples": rows}).raise_for_status()
    base = checkpoint_to_bytes(create_adapter("gan", TINY_GAN, seed=0))
    spec = {"name": "gan", "training_dataset": "train", "proxy_dataset": "proxy",
            "unlearn_defaults": {"steps": 30, "batch_size": 8}}  # fmt: skip
    registered = admin.post("/models", data={"spec": json.dumps(spec)}, files={"checkpoint": ("g.safetensors", base)})
    assert registered.status_code in (201, 202), registered.text
    wait_until_ready(admin, "gan")  # the worker ran the sampler's forward pass

    wrong = officer.post("/unlearn-requests", json={"model": "gan", "classes": ["circle"]})  # default: encoder_l2
    assert wrong.status_code == 422 and "sampler" in wrong.text
    bad = officer.post("/unlearn-requests", json={"model": "gan", "classes": ["circle"], "method": "gan_cascade",
                                                  "config": {"params": {"rounds": 0}}})  # fmt: skip
    assert bad.status_code == 422 and "rounds" in bad.text

    requests = [{"classes": ["circle"]}, {"samples": ["tr-square-000", "tr-stripe-001"]}]
    for version, body in enumerate(requests, start=2):
        created = officer.post("/unlearn-requests", json={"model": "gan", "method": "gan_cascade",
                                                          "config": {"params": {"pool": 128}}, **body})  # fmt: skip
        assert created.status_code == 201, created.text
        assert created.json()["effective_config"]["lr"] == 2e-3  # the family's recommendation
        final, _ = follow(auditor, created.json()["id"])
        assert final["status"] == "completed", (final, stack.log_tail())
        assert final["result_version"] == version

        document = auditor.get(f"/unlearn-requests/{final['id']}/report").json()
        body_ = document["body"]
        assert body_["outcome"] == "published" and body_["checkpoints"]["new"]["version"] == version
        assert body_["data_read"]["retained_training_samples_read"] == 0  # retain-free
        checks = {c["name"]: c for c in body_["gate"]["checks"]}
        assert set(checks) == SAMPLER_CHECKS
        assert checks["sampler_mia_max_auc_above_chance"]["status"] == "passed"  # NN membership was computed
        # no feature network on this model: the class share and the Fréchet distance cannot be computed
        assert checks["sampler_retain_max_frechet_increase"]["status"] == "not_evaluated"
        expected = "not_evaluated" if "classes" in body else "not_applicable"
        assert checks["sampler_class_max_share_ratio"]["status"] == expected
        generated = body_["metrics"]["samples"]["after"]["generated"]
        assert generated["n_samples"] == 2048 and 0 <= generated["nn_membership_auc"] <= 1
        assert body_["verification"]["membership"]["attack"] == "nearest_neighbour"
        assert body_["job"]["config"]["params"]["pool"] == 128 and body_["figures"] == []
        html = auditor.get(f"/unlearn-requests/{final['id']}/report", params={"format": "html"})
        assert html.status_code == 200 and "nn_membership_auc" in html.text

    download = auditor.get("/models/gan/versions/current/checkpoint")
    new, header = checkpoint_from_bytes(download.content)
    old, _ = checkpoint_from_bytes(base)
    assert header["method"] == "gan_cascade" and header["family"] == "gan"
    changed = {k.split(".")[0] for k, v in old.state_dict().items() if not (v == new.state_dict()[k]).all()}
    assert changed == {"generator", "discriminator"}
