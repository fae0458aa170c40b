"""Every unlearning method: it trains only what it should, and it moves the forget-set metric it targets.

Runs on the tiny MAE of ``tiny_models`` after a short pre-training on Fashion-MNIST shrunk to
16x16 (an untrained decoder ignores its latents, so nothing downstream of the encoder would move).
Forget set: 8 trousers; retain rows: other classes. Margins sit well inside what was measured
(comments give the numbers).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from tests.unlearn.tiny_models import make_tiny, snapshot

from service.db.enums import Method
from service.schemas.requests import METHOD_PARAMS
from worker.unlearn import EncoderL2Config
from worker.unlearn.losses import noise_images
from worker.unlearn.methods import (
    GradientSurgeryParams,
    get_method,
    list_methods,
    make_params,
    parse_method_config,
    run_method,
)
from worker.unlearn.methods.common import hidden_mse
from worker.unlearn.methods.gradient_surgery import project_conflicting
from worker.unlearn.metrics import evaluate

ENCODER_ONLY = ("encoder_l2", "random_encoder", "gradient_surgery")
WHOLE_GENERATOR = ("max_loss", "noisy_label", "retain_label")
CONFIG = EncoderL2Config(lr=3e-3, batch_size=16, steps=40, seed=0)


@pytest.fixture(scope="module")
def setting(fashion_mnist):
    """(base adapter, forget (8, 1, 16, 16), retain (200, 1, 16, 16)); the base pre-trained for a few epochs."""
    from worker.unlearn.families.mae.train import MAETrainConfig, train_mae

    x, y = fashion_mnist["test"]
    x = F.interpolate(x[:2600], size=16, mode="area")  # (2600, 1, 16, 16)
    y = y[:2600]
    torch.set_num_threads(1)
    base = make_tiny("mae")
    train_mae(base, x[:2048], MAETrainConfig(epochs=6, batch_size=64, lr=3e-3, warmup_epochs=1))
    rest_x, rest_y = x[2048:], y[2048:]
    return base, rest_x[rest_y == 1][:8], rest_x[rest_y != 1][:200]


@pytest.fixture(scope="module")
def runs(setting):
    """{method: UnlearnResult} of every method with its default parameters."""
    base, forget, retain = setting
    return {name: run_method(name, base, forget, retain, CONFIG) for name in list_methods("masked")}


def _changed(before: dict, after: dict) -> set[str]:
    return {k for k in before if not torch.equal(before[k], after[k])}


def test_the_service_offers_exactly_the_registered_methods() -> None:
    assert {m.value for m in Method} == set(list_methods())
    for method in Method:  # the API's parameter schema and the worker's dataclass name the same fields
        worker_fields = set(make_params(method.value).__dataclass_fields__)
        assert set(METHOD_PARAMS[method].model_fields) == worker_fields, method


def test_no_method_modifies_its_input_adapter(setting) -> None:
    base, forget, retain = setting
    before = snapshot(base)
    for name in list_methods("masked"):  # sampler methods: tests/unlearn/test_gan.py
        run_method(name, base, forget, retain, CONFIG.replace(steps=2))
    assert not _changed(before, snapshot(base))


@pytest.mark.parametrize("name", ENCODER_ONLY)
def test_encoder_only_methods_keep_everything_else_bit_identical(setting, runs, name: str) -> None:
    base, _, _ = setting
    assert get_method(name).trains == "encoder"
    changed = _changed(snapshot(base), snapshot(runs[name].adapter))
    assert changed and all(base.is_encoder_key(k) for k in changed), changed
    assert "pos_embed" not in changed  # a constant table
    assert any(k.startswith("blocks.") for k in changed)


@pytest.mark.parametrize("name", WHOLE_GENERATOR)
def test_full_model_baselines_train_the_decoder_too(setting, runs, name: str) -> None:
    base, _, _ = setting
    assert get_method(name).trains == "generator"
    changed = _changed(snapshot(base), snapshot(runs[name].adapter))
    assert any(k.startswith("decoder_blocks.") for k in changed) and "decoder_pred.weight" in changed
    assert any(k.startswith("blocks.") for k in changed)
    assert not {"pos_embed", "decoder_pos_embed"} & changed  # constant sin-cos tables never train


# ---- each method moves the forget-set quantity its forget term targets ------------------------


def _fixed(adapter, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed (n, L) random mask and (n, C, H, W) noise images, independent of any run."""
    cfg = adapter.config
    mask = adapter.random_mask(n, torch.Generator().manual_seed(99))
    noise = noise_images(n, torch.tensor(cfg.pixel_mean), torch.tensor(cfg.pixel_std), adapter.image_shape,
                         torch.Generator().manual_seed(98))  # fmt: skip
    return mask, noise


@torch.no_grad()
def _latent_distance_to_noise(adapter, teacher, forget) -> float:
    mask, noise = _fixed(teacher, len(forget))
    return float(F.mse_loss(adapter.encode(forget, mask), teacher.encode(noise, mask)))


@torch.no_grad()
def _latent_distance_to_own(adapter, teacher, forget) -> float:
    mask, _ = _fixed(teacher, len(forget))
    return float(F.mse_loss(adapter.encode(forget, mask), teacher.encode(forget, mask)))


@torch.no_grad()
def _forget_psnr(adapter, forget) -> float:
    return evaluate(adapter, forget, None, seed=7, tasks=("random",))["random"]["psnr"]


@torch.no_grad()
def _distance_to_teacher_retain_outputs(adapter, teacher, forget, retain) -> float:
    mask, _ = _fixed(teacher, len(forget))
    target = teacher.reconstruct(retain[: len(forget)], mask)  # (N, C, H, W)
    return float(hidden_mse(adapter.reconstruct(forget, mask), target, teacher.hidden_pixels(mask)))


def test_encoder_l2_pulls_forget_latents_to_noise_latents(setting, runs) -> None:
    base, forget, _ = setting
    before, after = (_latent_distance_to_noise(a, base, forget) for a in (base, runs["encoder_l2"].adapter))
    assert after < 0.75 * before, (before, after)  # measured 0.89 -> 0.48


def test_gradient_surgery_pulls_forget_latents_to_noise_latents(setting, runs) -> None:
    base, forget, _ = setting
    before, after = (_latent_distance_to_noise(a, base, forget) for a in (base, runs["gradient_surgery"].adapter))
    assert after < 0.75 * before, (before, after)  # measured 0.89 -> 0.53
    steps = runs["gradient_surgery"].history
    assert all(0 <= s.losses["conflict"] <= 1 and -1 <= s.losses["grad_cosine"] <= 1 for s in steps)
    assert sum(s.losses["conflict"] for s in steps) >= 5  # the projection was exercised (33 of 40 steps)


def test_gradient_surgery_with_gradient_ascent_lowers_forget_psnr(setting) -> None:
    base, forget, retain = setting
    params = GradientSurgeryParams(forget_objective="max_loss")
    result = run_method("gradient_surgery", base, forget, retain, CONFIG, params=params)
    assert _forget_psnr(result.adapter, forget) < _forget_psnr(base, forget) - 0.5  # measured 14.2 -> 13.0 dB


def test_random_encoder_pulls_forget_latents_to_the_teacher_latent_mean(setting, runs) -> None:
    """Its targets are fresh Gaussian draws each step, so in expectation it pulls toward their mean."""
    base, forget, retain = setting
    mask, _ = _fixed(base, len(forget))
    with torch.no_grad():
        centre = float(base.encode(retain[:64], base.random_mask(64, torch.Generator().manual_seed(5))).mean())

    @torch.no_grad()
    def spread(adapter, x) -> float:
        z = adapter.encode(x, mask)  # (N, L_vis + 1, D)
        return float(F.mse_loss(z, torch.full_like(z, centre)))

    adapter = runs["random_encoder"].adapter
    before, after = spread(base, forget), spread(adapter, forget)
    assert after < 0.85 * before, (before, after)  # measured 1.04 -> 0.76
    assert _latent_distance_to_own(base, base, forget) == 0.0
    assert _latent_distance_to_own(adapter, base, forget) > _latent_distance_to_own(adapter, base, retain[:8])


@pytest.mark.parametrize("name", ["max_loss", "noisy_label"])
def test_output_space_baselines_lower_forget_psnr(setting, runs, name: str) -> None:
    base, forget, _ = setting
    before, after = _forget_psnr(base, forget), _forget_psnr(runs[name].adapter, forget)
    assert after < before - 0.5, (before, after)  # measured 14.2 -> 9.7 dB (max_loss), 12.9 dB (noisy_label)


def test_retain_label_pulls_forget_outputs_to_the_teachers_retain_outputs(setting, runs) -> None:
    base, forget, retain = setting
    before = _distance_to_teacher_retain_outputs(base, base, forget, retain)
    after = _distance_to_teacher_retain_outputs(runs["retain_label"].adapter, base, forget, retain)
    assert after < 0.75 * before, (before, after)  # measured 0.034 -> 0.019


def test_the_forget_weight_matters(setting) -> None:
    """The forget term acts on forget rows (the reference code's retain-mask bug would make alpha inert)."""
    base, forget, retain = setting
    for name in ("retain_label", "random_encoder"):
        a = run_method(name, base, forget, retain, CONFIG.replace(steps=5, alpha=1e-6)).adapter
        b = run_method(name, base, forget, retain, CONFIG.replace(steps=5, alpha=1.0)).adapter
        mask, _ = _fixed(base, len(forget))
        with torch.no_grad():
            gap = float((a.encode(forget, mask) - b.encode(forget, mask)).abs().max())
        assert gap > 1e-3, name


def test_runs_are_reproducible(setting) -> None:
    base, forget, retain = setting
    for name in ("max_loss", "gradient_surgery"):
        a = run_method(name, base, forget, retain, CONFIG.replace(steps=3))
        b = run_method(name, base, forget, retain, CONFIG.replace(steps=3))
        assert not _changed(snapshot(a.adapter), snapshot(b.adapter))
        assert [h.losses for h in a.history] == [h.losses for h in b.history]


# ---- gradient surgery's projection ------------------------------------------------------------


def test_projection_removes_the_conflicting_component_only() -> None:
    g_r = torch.tensor([1.0, 0.0, 0.0])
    projected, conflict = project_conflicting(torch.tensor([-2.0, 3.0, 1.0]), g_r)
    assert conflict and torch.equal(projected, torch.tensor([0.0, 3.0, 1.0]))
    assert float(projected.dot(g_r)) == 0.0
    agreeing = torch.tensor([2.0, -1.0, 0.5])
    kept, conflict = project_conflicting(agreeing, g_r)
    assert not conflict and torch.equal(kept, agreeing)


# ---- validation -------------------------------------------------------------------------------


def test_unknown_method_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown unlearning method 'forget_harder'.*encoder_l2.*gradient_surgery"):
        parse_method_config("forget_harder", {})
    with pytest.raises(ValueError, match="unknown unlearning method"):
        run_method("nope", make_tiny("mae"), torch.zeros(1, 1, 16, 16), torch.zeros(1, 1, 16, 16), CONFIG)


@pytest.mark.parametrize(
    ("method", "params", "message"),
    [
        ("encoder_l2", {"alpha2": 1}, r"unknown parameter\(s\) \['alpha2'\] for method 'encoder_l2'; it takes no parameters"),
        ("max_loss", {"bound": 1}, r"\['bound'\] for method 'max_loss'; its parameters are \['forget_bound'\]"),
        ("max_loss", {"forget_bound": -0.1}, r"method 'max_loss': forget_bound must be None or a positive"),
        ("max_loss", {"forget_bound": float("nan")}, r"forget_bound must be None or a positive finite"),
        ("gradient_surgery", {"forget_objective": "ascend"}, r"forget_objective must be one of \['encoder_l2', 'max_loss'\]"),
    ],
)  # fmt: skip
def test_bad_method_parameters_are_refused(method: str, params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_method_config(method, {"lr": 1e-3, "params": params})


def test_job_config_splits_into_shared_config_and_method_params() -> None:
    config, params = parse_method_config("gradient_surgery", {"lr": 0.01, "params": {"forget_objective": "max_loss"}})
    assert config == EncoderL2Config(lr=0.01) and params == GradientSurgeryParams(forget_objective="max_loss")
    config, params = parse_method_config("max_loss", {"alpha": 0.5})
    assert config.alpha == 0.5 and params.forget_bound is None
    with pytest.raises(ValueError, match="unknown EncoderL2Config keys"):
        parse_method_config("max_loss", {"momentum": 0.9})
