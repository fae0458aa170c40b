"""The diffusion family's own guarantees (the Adapter contract is tests/unlearn/test_adapters_contract.py)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file
from tests.unlearn.tiny_models import make_images, make_tiny

from worker.unlearn import checkpoint_from_bytes, create_adapter
from worker.unlearn.checkpoint import checkpoint_problems
from worker.unlearn.families.diffusion import DiffusionAdapter, checkpoint_from_pretrained
from worker.unlearn.families.diffusion.adapter import ENCODER_SALT
from worker.unlearn.families.diffusion.unet import build_unet
from worker.unlearn.mia import masked_pass


def _folder(tmp_path, **overrides):
    unet = build_unet({**DiffusionAdapter.test_config()["unet"], "sample_size": 16, "in_channels": 3,
                       "out_channels": 1, **overrides}, seed=1)
    unet.save_pretrained(tmp_path)
    return tmp_path


def test_a_save_pretrained_folder_loads_strictly_with_its_config(tmp_path):
    folder = _folder(tmp_path / "ok")
    data = checkpoint_from_pretrained(folder, num_train_timesteps=100, sample_steps=2, mia_timesteps=[10])
    assert checkpoint_problems(data) == []  # the worker's validation of POST /models
    adapter, header = checkpoint_from_bytes(data)
    weights = load_file(str(folder / "diffusion_pytorch_model.safetensors"))
    assert header["family"] == "diffusion" and set(adapter.state_dict()) == set(weights)
    assert all(torch.equal(adapter.state_dict()[k], v) for k, v in weights.items())
    saved = json.loads((folder / "config.json").read_text())
    assert list(adapter.model.config.block_out_channels) == saved["block_out_channels"]


def test_a_folder_missing_a_tensor_or_not_an_inpainter_is_refused(tmp_path):
    folder = _folder(tmp_path / "broken")
    weights = load_file(str(folder / "diffusion_pytorch_model.safetensors"))
    del weights["conv_out.bias"]
    save_file(weights, str(folder / "diffusion_pytorch_model.safetensors"))
    with pytest.raises(ValueError, match=r"missing keys \['conv_out.bias'\]"):
        checkpoint_from_pretrained(folder)
    with pytest.raises(ValueError, match="not a Palette-style inpainter"):
        checkpoint_from_pretrained(_folder(tmp_path / "plain", in_channels=1))


def test_the_encoder_is_the_down_path_and_middle_with_every_skip_connection():
    adapter = make_tiny("diffusion")
    unet = adapter.model
    seen = {}

    def keep(name, pick=lambda o: o):
        def hook(module, inputs, output):
            seen[name] = pick(output)  # returns None: the output is left as it is

        return hook

    unet.conv_in.register_forward_hook(keep("conv_in"))
    unet.mid_block.register_forward_hook(keep("mid"))
    for n, block in enumerate(unet.down_blocks):
        block.register_forward_hook(keep(f"down{n}", lambda o: o[1]))
    imgs, mask = make_images(adapter, 2, seed=0), adapter.random_mask(2, torch.Generator().manual_seed(0))
    latent = adapter.encode(imgs, mask)
    maps = [seen["conv_in"], *(s for n in range(len(unet.down_blocks)) for s in seen[f"down{n}"]), seen["mid"]]
    assert latent.shape == (2, sum(m[0].numel() for m in maps))
    k, total, start = len(maps), sum(m[0].numel() for m in maps), 0
    for m in maps:  # each map, scaled so the latent's MSE is the mean of the per-map MSEs
        size = m[0].numel()
        assert torch.allclose(latent[:, start : start + size], m.reshape(2, -1) * (total / (k * size)) ** 0.5)
        start += size
    # Only encoder tensors shape the latent: a change to the up path leaves it bit-identical.
    with torch.no_grad():
        unet.up_blocks[0].resnets[0].conv1.weight.add_(1.0)
    assert torch.equal(latent, adapter.encode(imgs, mask))
    assert {k.split(".")[0] for k in adapter.state_dict() if not adapter.is_encoder_key(k)} == {
        "up_blocks", "conv_norm_out", "conv_out"}


def test_the_draws_of_t_follow_the_mask_row_and_reach_student_and_teacher_alike():
    adapter = make_tiny("diffusion")
    masks = adapter.random_mask(6, torch.Generator().manual_seed(2))
    t, noise = adapter.row_draws(masks, ENCODER_SALT, (1, 100))
    t2, noise2 = adapter.row_draws(masks[[3, 1]], ENCODER_SALT, (1, 100))
    assert torch.equal(t[[3, 1]], t2) and torch.equal(noise[[3, 1]], noise2)  # per row, whatever the batch
    assert len(set(t.tolist())) > 1 and not torch.equal(noise[0], noise[1])  # distinct masks, distinct draws
    student = adapter.clone()
    imgs = make_images(adapter, 6, seed=3)
    assert torch.equal(student.encode(imgs, masks), adapter.encode(imgs, masks))


def test_generate_is_seeded_ddim_with_a_configurable_number_of_steps():
    adapter = make_tiny("diffusion")
    imgs, mask = make_images(adapter, 3, seed=1), adapter.box_mask(3, 0.5)
    two, again, five = adapter.generate(imgs, mask, steps=2), adapter.generate(imgs, mask, steps=2), adapter.generate(
        imgs, mask, steps=5)
    assert torch.equal(two, again) and not torch.equal(two, five)
    other_seed = create_adapter("diffusion", {**DiffusionAdapter.test_config(), "sample_seed": 7})
    other_seed.load_state_dict(adapter.state_dict())
    assert not torch.equal(other_seed.generate(imgs, mask, steps=2), two)


def test_membership_scores_are_the_denoising_loss_at_fixed_timesteps_and_noise():
    adapter = make_tiny("diffusion")
    imgs = make_images(adapter, 4, seed=5)
    passed = masked_pass(adapter, imgs, seed=0)  # the attack's fixed masks, no classifier
    again = masked_pass(adapter.clone(), imgs, seed=0)
    assert passed.errors.shape == (4, 6) and torch.equal(passed.errors, again.errors)
    # The score is the noise-prediction error, not the generated pixels' error: a model that denoises
    # perfectly scores 0 whatever it generates.
    class Perfect(DiffusionAdapter):
        def predict_noise(self, x0, hidden, y_t, t):
            a = self._alphas[t].view(-1, 1, 1, 1)
            return (y_t - a.sqrt() * x0) / (1 - a).sqrt()

    perfect = Perfect(adapter.config)
    mask = adapter.box_mask(4, 0.5)
    assert float(perfect.membership_error(imgs, mask).max()) < 1e-8
    assert float(adapter.membership_error(imgs, mask).min()) > 1e-3
