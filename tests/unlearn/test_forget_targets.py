"""Encoder-L2 forget targets: noise (the paper's), substitute proxy images, and their mixture."""

from __future__ import annotations

import pytest
import torch
from tests.unlearn.test_encoder_l2 import RecordingMAE
from tests.unlearn.tiny_models import make_images, make_tiny, snapshot

from worker.unlearn import EncoderL2Config, run_unlearning
from worker.unlearn.substitutes import nearest_rows
from worker.unlearn.teacher_cache import BankSpec, CachedTargets, CacheKey, LiveTargets, TeacherBank, build_cache

STEPS, BATCH, HALF = 5, 8, 4


def _config(**changes) -> EncoderL2Config:
    return EncoderL2Config(lr=1e-3, batch_size=BATCH, steps=STEPS, seed=1, **{"forget_target": "noise", **changes})


def _data():
    base = make_tiny("mae")
    forget = make_images(base, 3, 1) * 0.5 + 2.0  # values >= 2: recognisable wherever they show up
    proxy = make_images(base, 40, 2)  # in [0, 1]
    return base, forget, proxy


def _recorded(config: EncoderL2Config, *, retain_is_proxy: bool):
    base, forget, proxy = _data()
    adapter = RecordingMAE(base.config)
    adapter.load_state_dict(base.state_dict())
    RecordingMAE.calls = []
    result = run_unlearning(adapter, forget, proxy, config, retain_is_proxy=retain_is_proxy)
    calls = RecordingMAE.calls
    return [calls[3 * s : 3 * s + 3] for s in range(STEPS)], forget, proxy, result


def _row_of(image: torch.Tensor, images: torch.Tensor) -> int | None:
    hits = [i for i in range(len(images)) if torch.equal(images[i], image)]
    return hits[0] if hits else None


def test_nearest_rows_are_the_brute_force_nearest() -> None:
    _, forget, proxy = _data()
    got = nearest_rows(forget, proxy, k=3, chunk=2)  # (3, 3), chunked
    d = ((forget.flatten(1)[:, None] - proxy.flatten(1)[None]) ** 2).sum(-1)  # (3, 40)
    assert torch.equal(got, d.argsort(dim=1)[:, :3])
    assert nearest_rows(forget, proxy[:2], k=5).shape == (3, 2)  # k capped by the pool


def test_substitute_targets_are_nearest_proxy_images_under_the_student_mask() -> None:
    steps, forget, proxy, result = _recorded(_config(forget_target="substitute", substitutes=2), retain_is_proxy=True)
    neighbours = nearest_rows(forget, proxy, 2)
    assert result.config.forget_target == "substitute"
    for t_retain, t_forget, student in steps:
        assert torch.equal(t_forget["mask"], student["mask"][HALF:])  # same draw of T on both inputs
        assert not t_forget["grad"] and not t_forget["training"]
        assert float(t_forget["imgs"].max()) <= 1.0  # never a forget image (those are >= 2)
        for row in range(HALF):
            f = _row_of(student["imgs"][HALF + row], forget)
            s = _row_of(t_forget["imgs"][row], proxy)
            assert f is not None and s is not None  # a forget row's target input is a proxy image
            assert s in neighbours[f].tolist()  # one of its own nearest


def test_substitutes_never_come_from_retained_training_data() -> None:
    """Without ``retain_is_proxy`` (with_retain mode: the retain rows are training images) the run uses
    noise targets and records that in its config."""
    steps, _, retain, result = _recorded(_config(forget_target="substitute"), retain_is_proxy=False)
    assert result.config.forget_target == "noise"
    for _, t_forget, student in steps:
        assert torch.equal(t_forget["mask"], student["mask"][HALF:])
        assert all(_row_of(img, retain) is None for img in t_forget["imgs"])
    noise_run = run_unlearning(*_data(), _config())
    assert all(torch.equal(a, b) for a, b in zip(snapshot(result.adapter).values(), snapshot(noise_run.adapter).values()))


def test_mixture_rows_are_noise_or_substitutes() -> None:
    steps, forget, proxy, _ = _recorded(_config(forget_target="mixture", noise_share=0.5), retain_is_proxy=True)
    kinds = [_row_of(img, proxy) is not None for _, t_forget, _ in steps for img in t_forget["imgs"]]
    assert any(kinds) and not all(kinds)  # 20 rows at share 0.5: both kinds occur
    for _, t_forget, student in steps:
        assert torch.equal(t_forget["mask"], student["mask"][HALF:])
        assert float(t_forget["imgs"].max()) <= 1.0


@pytest.mark.parametrize("target", ["substitute", "mixture"])
def test_cached_substitute_targets_equal_the_uncached_path(target: str) -> None:
    base, forget, proxy = _data()
    spec = BankSpec(draws_per_image=3, noise_size=16, seed=5, dtype="float32")
    key = CacheKey.for_bank("base-digest", "proxy-digest", spec)
    cache = build_cache(base.clone(), proxy, [f"p{i}" for i in range(len(proxy))], spec, key)
    teacher = base.clone()
    teacher.model.eval().requires_grad_(False)
    live = LiveTargets(teacher, proxy, TeacherBank.draw(base, len(proxy), spec))
    config = _config(forget_target=target)
    cached = run_unlearning(base, forget, proxy, config, targets=CachedTargets.from_bytes(cache.to_bytes(), key),
                            retain_is_proxy=True)  # fmt: skip
    uncached = run_unlearning(base, forget, proxy, config, targets=live, retain_is_proxy=True)
    noise = run_unlearning(base, forget, proxy, _config(), targets=cache, retain_is_proxy=True)
    for c, u, n in zip(cached.history, uncached.history, noise.history, strict=True):
        for term in ("loss", "retain", "forget"):
            assert c.losses[term] == pytest.approx(u.losses[term], rel=1e-5, abs=1e-7), (c.step, term)
    assert [h.losses["forget"] for h in cached.history] != [h.losses["forget"] for h in noise.history]
    for (name, a), b in zip(cached.adapter.state_dict().items(), uncached.adapter.state_dict().values()):
        assert torch.allclose(a, b, rtol=0, atol=1e-6), name


@pytest.mark.parametrize("target", ["substitute", "mixture"])
def test_decoder_is_bit_identical_after_a_substitute_run(target: str) -> None:
    base, forget, proxy = _data()
    before = snapshot(base)
    result = run_unlearning(base, forget, proxy, _config(forget_target=target), retain_is_proxy=True)
    after = snapshot(result.adapter)
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed and all(base.is_encoder_key(k) for k in changed)
    assert all(torch.equal(before[k], v) for k, v in snapshot(base).items())  # the base itself untouched


def test_default_is_the_papers_noise_with_the_measured_mixture_on_request() -> None:
    """README, "Quality vs the model retrained": the mixture misses the membership verdict; noise is the default."""
    c = EncoderL2Config()
    assert (c.forget_target, c.noise_share, c.substitutes) == ("noise", 0.25, 4)


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"forget_target": "zeros"}, "forget_target must be one of"), ({"noise_share": 1.5}, "noise_share"),
     ({"substitutes": 0}, "substitutes must be an integer")],
)  # fmt: skip
def test_forget_target_config_is_validated(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EncoderL2Config(**changes)
