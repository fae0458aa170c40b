"""The diffusion family end to end: a diffusers ``save_pretrained`` UNet registers through ``POST /models``
(a real worker loads it strictly and runs it), then a request through HTTP publishes version 2 with a
signed report whose membership section is the family's denoising-loss attack."""

import json

import pytest
import torch
from safetensors.torch import load_file

from service.audit.signing import load_public_pem, verify_signed
from service.db.enums import Role
from tests.e2e.stack import launch, write_images
from tests.e2e.test_end_to_end import TINY_GATE, follow, wait_until_ready
from worker.unlearn import checkpoint_from_bytes
from worker.unlearn.families.diffusion import DiffusionAdapter, checkpoint_from_pretrained
from worker.unlearn.families.diffusion.unet import build_unet

pytestmark = pytest.mark.integration
DEFAULTS = {"lr": 1e-3, "alpha": 0.25, "batch_size": 8, "steps": 20, "seed": 0}
# A randomly initialised UNet has no quality to protect nor forget: every check is reported, none gates.
GATE = dict.fromkeys(TINY_GATE)


def pretrained_folder(path):
    """A tiny Palette-style UNet written by diffusers' own ``save_pretrained``."""
    unet_config = {k: v for k, v in DiffusionAdapter.test_config()["unet"].items()}
    unet = build_unet({**unet_config, "sample_size": 16, "in_channels": 3, "out_channels": 1}, seed=3)
    unet.save_pretrained(path)
    return path


def test_a_diffusers_unet_registers_and_a_request_publishes_a_version_with_a_report(tmp_path):
    folder = pretrained_folder(tmp_path / "unet")
    assert {p.name for p in folder.iterdir()} >= {"config.json", "diffusion_pytorch_model.safetensors"}
    base = checkpoint_from_pretrained(folder, pixel_mean=[0.4], pixel_std=[0.4], num_train_timesteps=100,
                                      sample_steps=2, mia_timesteps=[10, 50])
    (tmp_path / "stack").mkdir()
    stack = launch("postgres", tmp_path / "stack", extra_env={"OBLIVIO_REGISTER_WAIT_SECONDS": "150"})
    try:
        admin, officer, auditor = (stack.client(r) for r in (Role.admin, Role.officer, Role.auditor))
        for name, kind, rows in (("train", "training", write_images(stack.data_root / "train", "tr", 6, seed=1)),
                                 ("proxy", "proxy", write_images(stack.data_root / "proxy", "px", 6, seed=2))):
            admin.post("/datasets", json={"name": name, "kind": kind}).raise_for_status()
            admin.post(f"/datasets/{name}/samples", json={"samples": rows}).raise_for_status()
        spec = {"name": "palette", "training_dataset": "train", "proxy_dataset": "proxy",
                "unlearn_defaults": DEFAULTS, "gate_thresholds": GATE}
        registered = admin.post("/models", data={"spec": json.dumps(spec)},
                                files={"checkpoint": ("unet.safetensors", base)}, timeout=180)
        assert registered.status_code in (201, 202), registered.text + stack.log_tail()
        assert registered.json()["family"] == "diffusion"
        wait_until_ready(admin, "palette")

        # The registered file holds the diffusers weights under diffusers' names, loadable strictly.
        loaded, header = checkpoint_from_bytes(admin.get("/models/palette/versions/current/checkpoint").content)
        original = load_file(str(folder / "diffusion_pytorch_model.safetensors"))
        assert header["family"] == "diffusion" and set(loaded.state_dict()) == set(original)
        assert all(torch.equal(loaded.state_dict()[k], v) for k, v in original.items())

        created = officer.post("/unlearn-requests", json={"model": "palette", "classes": ["circle"]})
        assert created.status_code == 201, created.text
        final, _ = follow(auditor, created.json()["id"], timeout=600)
        assert final["status"] == "completed", (final, stack.log_tail())
        assert final["result_version"] == 2
        new, new_header = checkpoint_from_bytes(auditor.get("/models/palette/versions/current/checkpoint").content)
        old_sd, new_sd = loaded.state_dict(), new.state_dict()
        assert all(torch.equal(old_sd[k], new_sd[k]) for k in old_sd if not loaded.is_encoder_key(k))  # up path kept
        assert any(not torch.equal(old_sd[k], new_sd[k]) for k in old_sd if loaded.is_encoder_key(k))
        assert new_header["request_ids"] == [final["id"]]

        document = auditor.get(f"/unlearn-requests/{final['id']}/report").json()
        assert document["body"]["outcome"] == "published" and document["body"]["job"]["family"] == "diffusion"
        assert document["body"]["gate"]["verdict"] == "not_evaluated"
        assert {"forget", "retain"} <= set(document["body"]["metrics"])
        mia = document["body"]["verification"]["membership"]
        assert {"raw", "calibrated_difference", "calibrated_ratio"} <= set(mia) and 0 <= mia["raw"]["after"]["auc"] <= 1
        assert verify_signed(document, load_public_pem(auditor.get("/signing-key").text)) == (True, "signature valid")
    finally:
        stack.stop()
