"""Cached teacher targets: same loss as the uncached path on the same draws, keyed to one base version."""

from __future__ import annotations

import pytest
import torch
from tests.unlearn.test_encoder_l2 import RecordingMAE
from tests.unlearn.tiny_models import make_images, make_tiny

from worker.unlearn import EncoderL2Config, checkpoint_to_bytes, run_unlearning
from worker.unlearn.checkpoint import sha256_hex
from worker.unlearn.teacher_cache import (
    BankSpec,
    CachedTargets,
    CacheKey,
    CacheMismatch,
    LiveTargets,
    TeacherBank,
    build_cache,
)

CONFIG = EncoderL2Config(lr=1e-3, batch_size=8, steps=6, seed=3)
PROXY = "proxy-manifest-digest"


def _setup(dtype: str = "float32", n_retain: int = 40):
    base = make_tiny("mae")
    forget, retain = make_images(base, 3, 1), make_images(base, n_retain, 2)
    keys = [f"proxy-{i:03d}" for i in range(n_retain)]
    spec = BankSpec(draws_per_image=3, noise_size=16, seed=5, dtype=dtype)
    key = CacheKey.for_bank(sha256_hex(checkpoint_to_bytes(base)), PROXY, spec)
    return base, forget, retain, keys, spec, key


@pytest.mark.parametrize(("dtype", "rtol"), [("float32", 1e-5), ("float16", 5e-3)])
def test_cached_path_gives_the_uncached_loss_on_the_same_draws(dtype: str, rtol: float) -> None:
    """float16 storage rounds targets (~5e-4 relative): the losses agree to that; weights only in float32
    (Adam normalises each step, so a rounding can flip the sign of a near-zero gradient's step)."""
    base, forget, retain, keys, spec, key = _setup(dtype)
    cache = build_cache(base.clone(), retain, keys, spec, key)
    teacher = base.clone()
    teacher.model.eval().requires_grad_(False)
    live = LiveTargets(teacher, retain, TeacherBank.draw(base, len(retain), spec))
    cached_run = run_unlearning(base, forget, retain, CONFIG, targets=CachedTargets.from_bytes(cache.to_bytes(), key))
    live_run = run_unlearning(base, forget, retain, CONFIG, targets=live)
    for c, u in zip(cached_run.history, live_run.history, strict=True):
        for term in ("loss", "retain", "forget"):
            assert c.losses[term] == pytest.approx(u.losses[term], rel=rtol, abs=1e-7), (c.step, term)
    assert cached_run.history[0].losses["forget"] > 0 and cached_run.history[0].losses["retain"] >= 0
    if dtype == "float32":
        for (name, a), b in zip(cached_run.adapter.state_dict().items(), live_run.adapter.state_dict().values()):
            assert torch.allclose(a, b, rtol=0, atol=1e-6), name


def test_cached_steps_run_only_the_student() -> None:
    base, forget, retain, keys, spec, key = _setup()
    cache = build_cache(base.clone(), retain, keys, spec, key)
    adapter = RecordingMAE(base.config)
    adapter.load_state_dict(base.state_dict())
    RecordingMAE.calls = []
    run_unlearning(adapter, forget, retain, CONFIG, targets=cache)
    assert len(RecordingMAE.calls) == CONFIG.steps  # one encode per step: the student's, with grad
    assert all(c["grad"] and c["training"] for c in RecordingMAE.calls)
    first = RecordingMAE.calls[0]
    half = CONFIG.batch_size // 2
    bank_masks = {tuple(m.tolist()) for m in cache.masks.flatten(0, 1)}
    noise_masks = {tuple(m.tolist()) for m in cache.noise_masks}
    assert all(tuple(m.tolist()) in bank_masks for m in first["mask"][:half])  # retain rows: bank draws
    assert all(tuple(m.tolist()) in noise_masks for m in first["mask"][half:])  # forget rows: noise entries'


def test_cached_targets_are_the_teachers_outputs_on_the_bank() -> None:
    base, _, retain, keys, spec, key = _setup()
    cache = build_cache(base, retain, keys, spec, key)
    bank = TeacherBank.draw(base, len(retain), spec)
    assert torch.equal(cache.masks, bank.masks) and torch.equal(cache.noise_masks, bank.noise_masks)
    with torch.no_grad():
        expected = base.encode(retain[7:8], bank.masks[7, 2][None])  # (1, T, D)
        noise = base.encode(bank.noise[11:12], bank.noise_masks[11][None])
    assert torch.allclose(cache.targets[7, 2], expected[0], atol=1e-6)
    assert torch.allclose(cache.noise_targets[11], noise[0], atol=1e-6)
    assert float(bank.noise.min()) >= 0 and float(bank.noise.max()) <= 1


def test_select_aligns_a_subset_by_sample_key() -> None:
    base, _, retain, keys, spec, key = _setup()
    cache = build_cache(base, retain, keys, spec, key)
    subset = cache.select([keys[9], keys[2]])
    assert len(subset) == 2 and torch.equal(subset.targets[0], cache.targets[9])
    assert torch.equal(subset.masks[1], cache.masks[2])
    with pytest.raises(KeyError, match="not in the teacher cache"):
        cache.select(["unknown"])
    with pytest.raises(ValueError, match="targets cover 2 retain rows"):
        run_unlearning(base, retain[:3], retain[:5], CONFIG, targets=subset)


def test_a_version_change_invalidates_the_cache() -> None:
    base, forget, retain, keys, spec, key = _setup()
    cache_v1 = build_cache(base, retain, keys, spec, key)
    data = cache_v1.to_bytes()
    assert CachedTargets.from_bytes(data, key).key == key  # same version: reused
    v2 = run_unlearning(base, forget, retain, CONFIG, targets=cache_v1).adapter
    key_v2 = CacheKey.for_bank(sha256_hex(checkpoint_to_bytes(v2)), PROXY, spec)
    assert key_v2 != key and key_v2.name != key.name  # the next version looks up another artifact
    with pytest.raises(CacheMismatch, match="teacher cache built for"):
        CachedTargets.from_bytes(data, key_v2)
    cache_v2 = build_cache(v2, retain, keys, spec, key_v2)
    assert not torch.allclose(cache_v2.targets, cache_v1.targets, atol=1e-4)  # v1's targets would be wrong
    for other in (dict(proxy_manifest_digest="other"), dict(seed=6), dict(dtype="float16")):
        with pytest.raises(CacheMismatch):
            CachedTargets.from_bytes(data, CacheKey(**{**key.__dict__, **other}))
