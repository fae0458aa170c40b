"""Encoder-L2 as ALGORITHM.md §2 states it: loss terms, noise, masks, sampling, config."""

from __future__ import annotations

import math

import pytest
import torch
from tests.unlearn.tiny_models import make_images, make_tiny

from worker.unlearn import EncoderL2Config, MAEAdapter, run_unlearning
from worker.unlearn.loop import cycled_indices, plan_steps
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


def test_steps_cover_the_larger_set_each_epoch() -> None:
    config = EncoderL2Config(batch_size=64, epochs=3)
    assert plan_steps(6000, 9000, config) == 3 * math.ceil(9000 / 32)
    assert plan_steps(10, 9000, config) == plan_steps(6000, 9000, config)
    assert plan_steps(10, 9000, config.replace(max_steps=100)) == 100


def test_forget_rows_are_oversampled_evenly() -> None:
    ids = cycled_indices(10, 95, torch.Generator().manual_seed(0))
    counts = torch.bincount(ids, minlength=10)
    assert ids.shape == (95,) and int(counts.min()) >= 9 and int(counts.max()) <= 10
    assert torch.equal(torch.sort(ids[:10]).values, torch.arange(10))  # each pass is a permutation


def test_teacher_targets_use_the_student_masks_and_only_what_the_loss_needs() -> None:
    calls, forget, retain, base = recorded_run(EncoderL2Config(lr=1e-3, batch_size=8, max_steps=4))
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


def test_config_defaults_are_the_papers() -> None:
    c = EncoderL2Config()
    assert (c.lr, c.alpha, c.epochs, c.optimizer, c.weight_decay, c.grad_clip) == (1e-5, 0.25, 3, "adam", 0.0, None)
    assert EncoderL2Config.from_dict(c.to_dict()) == c


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"lr": 0}, "lr must be a positive"),
        ({"lr": float("nan")}, "lr must be a positive"),
        ({"alpha": -1}, "alpha must be a positive"),
        ({"epochs": 0}, "epochs must be an integer >= 1"),
        ({"batch_size": 1}, "batch_size must be an even integer >= 2"),
        ({"batch_size": 7}, "batch_size must be an even integer"),
        ({"optimizer": "sgd"}, "optimizer must be one of"),
        ({"weight_decay": -0.1}, "weight_decay"),
        ({"grad_clip": 0}, "grad_clip"),
        ({"seed": -1}, "seed"),
        ({"max_steps": 0}, "max_steps"),
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
    config = EncoderL2Config(lr=1e-3, batch_size=8, max_steps=3, optimizer="adamw", weight_decay=0.05, grad_clip=1.0)
    result = run_unlearning(base, make_images(base, 2, 1), make_images(base, 10, 2), config)
    # not declared proxy rows: the default mixture runs (and is recorded) as noise targets
    assert result.steps == 3 and result.config == config.replace(forget_target="noise") and result.seconds > 0
