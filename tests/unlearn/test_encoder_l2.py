"""Encoder-L2 as ALGORITHM.md §2 states it: loss terms, noise, masks, sampling, config."""

from __future__ import annotations

import pytest
import torch
from tests.unlearn.tiny_models import make_images, make_tiny

from worker.unlearn import EncoderL2Config, MAEAdapter, run_unlearning
from worker.unlearn.config import recommended_config, upgrade_legacy
from worker.unlearn.loop import cycled_indices
from worker.unlearn.losses import encoder_l2, noise_images


class RecordingMAE(MAEAdapter):
    """Records every encode call (images, mask, grad mode, train mode) in a class-level list."""

    calls: list[dict] = []

    def encode(self, imgs, mask):
        RecordingMAE.calls.append(
            dict(imgs=imgs.clone(), mask=mask.clone(), grad=torch.is_grad_enabled(), training=self.model.training,
                 model=id(self.model))
        )  # fmt: skip
        return super().encode(imgs, mask)


def recorded_run(config: EncoderL2Config) -> tuple[list[dict], torch.Tensor, torch.Tensor, MAEAdapter]:
    base = make_tiny("mae")
    adapter = RecordingMAE(base.config)
    adapter.load_state_dict(base.state_dict())
    forget, retain = make_images(adapter, 3, 1) + 2.0, make_images(adapter, 40, 2)  # forget rows: values >= 2
    RecordingMAE.calls = []
    run_unlearning(adapter, forget, retain, config)
    return RecordingMAE.calls, forget, retain, adapter


def test_loss_terms_are_mse_and_alpha_weighs_the_forget_term() -> None:
    a, b = torch.zeros(2, 3, 4), torch.ones(2, 3, 4) * 2
    c, d = torch.zeros(2, 3, 4), torch.ones(2, 3, 4)
    terms = encoder_l2(a, b, c, d, alpha=0.25)
    assert terms["retain"].item() == 4.0 and terms["forget"].item() == 1.0
    assert terms["loss"].item() == 4.0 + 0.25 * 1.0


def test_noise_uses_the_fixed_model_statistics_and_is_clipped() -> None:
    g = torch.Generator().manual_seed(0)
    mean, std = torch.tensor([0.2, 0.7]), torch.tensor([0.1, 0.5])
    n = noise_images(2000, mean, std, (2, 4, 4), g)  # (N, 2, 4, 4)
    assert n.shape == (2000, 2, 4, 4) and float(n.min()) >= 0 and float(n.max()) <= 1
    assert abs(n[:, 0].mean().item() - 0.2) < 0.01 and abs(n[:, 0].std().item() - 0.1) < 0.01
    assert float(n[:, 1].max()) == 1.0 and float(n[:, 1].min()) == 0.0  # wide channel hits both clips


@pytest.mark.parametrize(("n_forget", "n_retain"), [(3, 5), (2, 40), (40, 2)])
def test_a_run_takes_the_configured_steps_whatever_the_set_sizes(n_forget: int, n_retain: int) -> None:
    base = make_tiny("mae")
    config = EncoderL2Config(lr=1e-3, batch_size=8, steps=9)  # 9 steps of 4 + 4 rows: more than one pass of either set
    seen = []
    result = run_unlearning(base, make_images(base, n_forget, 1), make_images(base, n_retain, 2), config, seen.append)
    assert result.steps == len(result.history) == 9
    assert [(i.step, i.total) for i in seen] == [(s, 9) for s in range(1, 10)]


def test_forget_rows_are_oversampled_evenly() -> None:
    ids = cycled_indices(10, 95, torch.Generator().manual_seed(0))
    counts = torch.bincount(ids, minlength=10)
    assert ids.shape == (95,) and int(counts.min()) >= 9 and int(counts.max()) <= 10
    assert torch.equal(torch.sort(ids[:10]).values, torch.arange(10))  # each pass is a permutation


def test_teacher_targets_use_the_student_masks_and_only_what_the_loss_needs() -> None:
    calls, forget, retain, base = recorded_run(EncoderL2Config(lr=1e-3, batch_size=8, steps=4))
    half = 4
    assert len(calls) == 3 * 4  # per step: teacher on retain rows, teacher on noise, student on all rows
    for step in range(4):
        t_retain, t_noise, student = calls[3 * step : 3 * step + 3]
        assert not t_retain["grad"] and not t_noise["grad"] and not t_retain["training"]
        assert student["grad"] and student["training"] and student["model"] != t_retain["model"]
        assert torch.equal(t_retain["mask"], student["mask"][:half])
        assert torch.equal(t_noise["mask"], student["mask"][half:])  # the forget rows' masks
        assert torch.equal(t_retain["imgs"], student["imgs"][:half])
        assert float(student["imgs"][half:].min()) >= 2.0  # second half: forget rows
        assert float(t_noise["imgs"].min()) >= 0 and float(t_noise["imgs"].max()) <= 1  # noise, not forget
        assert not torch.equal(student["mask"][0], student["mask"][1])  # one draw per row


def test_config_defaults_are_the_settings_measured_on_the_demo_model() -> None:
    c = EncoderL2Config()
    assert (c.lr, c.alpha, c.steps, c.batch_size, c.optimizer, c.weight_decay, c.grad_clip, c.seed) == (
        1e-3, 0.25, 600, 64, "adam", 0.0, None, 0)
    assert EncoderL2Config.from_dict(c.to_dict()) == c


def test_recommended_lr_scales_as_one_over_the_mae_width_within_the_measured_range() -> None:
    assert recommended_config("mae", {"embed_dim": 96}) == EncoderL2Config()  # the demo model's width
    assert recommended_config("mae", {"embed_dim": 32}).lr == 1e-3  # never above the measured lr
    assert recommended_config("mae", {"embed_dim": 192}).lr == 5e-4
    assert recommended_config("mae", {"embed_dim": 768}).lr == 1.3e-4  # ViT-B
    assert recommended_config("mae", {"embed_dim": 100_000}).lr == 1e-5  # floor: the paper's ViT-L lr
    other = recommended_config("mae", {"embed_dim": 768})
    assert other.replace(lr=1e-3) == EncoderL2Config()  # only the lr depends on the model
    assert recommended_config("mae", {}) == recommended_config("vqgan", {"embed_dim": 768}) == EncoderL2Config()
    assert recommended_config("mae", {"embed_dim": True}) == EncoderL2Config()


def test_older_headers_are_read_with_max_steps_as_the_step_count() -> None:
    demo_header = {"lr": 1e-3, "alpha": 0.25, "epochs": 3, "batch_size": 64, "optimizer": "adam",
                   "weight_decay": 0.0, "grad_clip": None, "seed": 0, "max_steps": 600}  # fmt: skip
    assert EncoderL2Config.from_header(demo_header) == EncoderL2Config(lr=1e-3, steps=600)
    assert EncoderL2Config.from_header({"epochs": 3, "max_steps": None}) == EncoderL2Config()
    assert upgrade_legacy({"max_steps": 5, "steps": 7}) == {"steps": 7}
    base = EncoderL2Config(lr=2e-4)
    assert EncoderL2Config.from_header({"alpha": 0.5}, base) == base.replace(alpha=0.5)
    with pytest.raises(ValueError, match="unknown EncoderL2Config keys"):
        EncoderL2Config.from_header({"momentum": 0.9})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"lr": 0}, "lr must be a positive"),
        ({"lr": float("nan")}, "lr must be a positive"),
        ({"alpha": -1}, "alpha must be a positive"),
        ({"steps": 0}, "steps must be an integer >= 1"),
        ({"steps": 5.0}, "steps must be an integer"),
        ({"steps": "5"}, "steps must be an integer"),
        ({"steps": True}, "steps must be an integer"),
        ({"lr": True}, "lr must be a positive finite number"),
        ({"lr": "0.001"}, "lr must be a positive finite number"),
        ({"alpha": float("inf")}, "alpha must be a positive finite number"),
        ({"grad_clip": float("inf")}, "grad_clip"),
        ({"grad_clip": True}, "grad_clip"),
        ({"weight_decay": False}, "weight_decay"),
        ({"batch_size": True}, "batch_size must be an even integer"),
        ({"seed": 1.0}, "seed"),
        ({"batch_size": 1}, "batch_size must be an even integer >= 2"),
        ({"batch_size": 7}, "batch_size must be an even integer"),
        ({"optimizer": "sgd"}, "optimizer must be one of"),
        ({"weight_decay": -0.1}, "weight_decay"),
        ({"grad_clip": 0}, "grad_clip"),
        ({"seed": -1}, "seed"),
    ],
)
def test_config_validation_names_the_problem(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EncoderL2Config(**changes)


def test_config_from_dict_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match=r"unknown EncoderL2Config keys \['learning_rate'\]"):
        EncoderL2Config.from_dict({"learning_rate": 1e-3})
    with pytest.raises(Exception):
        EncoderL2Config().lr = 1.0  # frozen


def test_adamw_weight_decay_and_grad_clip_run() -> None:
    base = make_tiny("mae")
    config = EncoderL2Config(lr=1e-3, batch_size=8, steps=3, optimizer="adamw", weight_decay=0.05, grad_clip=1.0)
    result = run_unlearning(base, make_images(base, 2, 1), make_images(base, 10, 2), config)
    # not declared proxy rows: the default mixture runs (and is recorded) as noise targets
    assert result.steps == 3 and result.config == config.replace(forget_target="noise") and result.seconds > 0
