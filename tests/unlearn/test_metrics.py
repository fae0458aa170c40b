"""Region metrics, feature metrics and the fixed-mask evaluation, with a fake adapter."""

from __future__ import annotations

import math

import pytest
import torch

from worker.unlearn.metrics import (
    PSNR_CAP_DB,
    evaluate,
    feature_cosine,
    frechet_distance,
    psnr_in_region,
    ssim_in_region,
)


class FakeAdapter:
    """16x16 grey images, 2x2 patches (L = 64 tokens). ``fill``: "identity" | "mean" | "noise"."""

    patch, grid = 2, 8

    def __init__(self, fill: str = "identity") -> None:
        self.fill = fill
        self.generated_rows = 0

    def box_mask(self, n: int, side_frac: float) -> torch.Tensor:
        lo, hi = (16 - side_frac * 16) / 2, (16 + side_frac * 16) / 2
        start = torch.arange(self.grid) * self.patch
        rows = (start < hi) & (start + self.patch > lo)  # (g,)
        return (rows[:, None] & rows[None, :]).reshape(1, -1).expand(n, -1)  # (N, L)

    def random_mask(self, n: int, generator: torch.Generator) -> torch.Tensor:
        rank = torch.rand(n, 64, generator=generator).argsort(1).argsort(1)  # (N, L)
        return rank >= 16  # 75 % hidden

    def hidden_pixels(self, mask: torch.Tensor) -> torch.Tensor:
        grid = mask.reshape(-1, 1, self.grid, self.grid)
        return grid.repeat_interleave(self.patch, 2).repeat_interleave(self.patch, 3)  # (N, 1, H, W)

    def generate(self, imgs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        self.generated_rows += len(imgs)
        if self.fill == "identity":
            fill = imgs
        elif self.fill == "mean":
            fill = imgs.mean(dim=(1, 2, 3), keepdim=True).expand_as(imgs)
        else:
            fill = torch.rand(imgs.shape, generator=torch.Generator().manual_seed(len(imgs)))
        return torch.where(self.hidden_pixels(mask), fill, imgs)


def smooth_images(n: int, seed: int = 0, size: int = 16) -> torch.Tensor:
    coarse = torch.rand(n, 1, size // 4, size // 4, generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear")  # (N, 1, H, W)


def random_features(x: torch.Tensor) -> torch.Tensor:
    """A fixed random ReLU projection (N, C*H*W) -> (N, 12): a stand-in feature space."""
    w = torch.randn(x[0].numel(), 12, generator=torch.Generator().manual_seed(7))
    return torch.relu(x.flatten(1) @ w)


def centre_region(n: int, size: int = 16) -> torch.Tensor:
    region = torch.zeros(n, 1, size, size, dtype=torch.bool)
    region[..., 4:12, 4:12] = True
    return region


def test_identical_images_score_perfectly():
    x, region = smooth_images(5), centre_region(5)
    assert torch.equal(psnr_in_region(x, x, region), torch.full((5,), PSNR_CAP_DB))
    assert torch.allclose(ssim_in_region(x, x, region), torch.ones(5))
    f = random_features(x)
    assert torch.allclose(feature_cosine(f, f), torch.ones(5))
    assert frechet_distance(f, f) == pytest.approx(0.0, abs=1e-6)


def test_psnr_counts_only_the_region():
    ref, region = smooth_images(2), centre_region(2)
    out = torch.where(region, ref + 0.1, torch.rand_like(ref))  # error 0.1 inside, anything outside
    assert torch.allclose(psnr_in_region(out, ref, region), torch.full((2,), 20.0), atol=1e-4)


def test_more_noise_scores_lower():
    ref, region = smooth_images(4), centre_region(4)
    g = torch.Generator().manual_seed(1)
    noise = torch.randn(ref.shape, generator=g)
    mild, strong = (ref + 0.05 * noise).clamp(0, 1), (ref + 0.3 * noise).clamp(0, 1)
    for metric in (psnr_in_region, ssim_in_region):
        assert bool((metric(strong, ref, region) < metric(mild, ref, region)).all())
        assert bool((metric(mild, ref, region) < metric(ref, ref, region)).all())
    f = random_features(ref)
    assert float(feature_cosine(random_features(strong), f).mean()) < 0.999
    assert frechet_distance(random_features(strong), f) > frechet_distance(random_features(mild), f)


def test_ssim_is_bounded_and_handles_rgb():
    ref = smooth_images(6).reshape(2, 3, 16, 16)
    out = torch.rand(ref.shape, generator=torch.Generator().manual_seed(3))
    scores = ssim_in_region(out, ref, centre_region(2))
    assert scores.shape == (2,) and bool((scores <= 1).all()) and bool((scores > -1).all())
    assert bool((scores < 0.5).all())


def test_empty_region_row_is_an_error():
    x, region = smooth_images(2), centre_region(2)
    region[1] = False
    with pytest.raises(ValueError, match="at least one pixel"):
        psnr_in_region(x, x, region)


def test_frechet_distance_closed_form():
    a = torch.randn(500, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    # b = 2a: mu_b = 2 mu_a, S_b = 4 S_a, so d² = |mu_a|² + tr(S_a) + 4 tr(S_a) - 2 * 2 tr(S_a).
    expected = float(a.mean(0).square().sum() + torch.cov(a.T).trace())
    assert frechet_distance(a, 2 * a) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(a, a + 3.0) == pytest.approx(6 * 9.0, rel=1e-9)  # pure mean shift
    assert frechet_distance(a, 2 * a) == pytest.approx(frechet_distance(2 * a, a), rel=1e-9)


def test_frechet_distance_small_n_is_finite_and_non_negative():
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(5, 128, generator=g), torch.rand(5, 128, generator=g)  # N << F: singular S
    d = frechet_distance(a, b)
    assert math.isfinite(d) and d > 0
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance(a[:1], b)


def test_evaluate_identity_generator_is_perfect():
    result = evaluate(FakeAdapter("identity"), smooth_images(20), random_features, batch_size=7)
    assert set(result) == {"box_25", "box_50", "random"}
    for scores in result.values():
        assert scores["psnr"] == PSNR_CAP_DB and scores["n"] == 20
        assert scores["ssim"] == pytest.approx(1.0) and scores["cosine"] == pytest.approx(1.0)
        assert scores["frechet"] == pytest.approx(0.0, abs=1e-6)


def test_evaluate_worse_generator_scores_lower_and_bigger_boxes_are_harder():
    images = smooth_images(32)
    mean, noise = (evaluate(FakeAdapter(fill), images, random_features) for fill in ("mean", "noise"))
    for task in ("box_25", "box_50", "random"):
        assert mean[task]["psnr"] < PSNR_CAP_DB and mean[task]["cosine"] < 1.0
        assert noise[task]["psnr"] < mean[task]["psnr"]
        assert noise[task]["frechet"] > 0.0
    assert mean["box_50"]["cosine"] < mean["box_25"]["cosine"]


def test_evaluate_is_deterministic_and_independent_of_batch_size():
    images = smooth_images(30)
    first = evaluate(FakeAdapter("mean"), images, random_features, seed=3, batch_size=256)
    again = evaluate(FakeAdapter("mean"), images, random_features, seed=3, batch_size=8)
    for task in first:
        assert first[task] == pytest.approx(again[task], rel=1e-6)
    other = evaluate(FakeAdapter("mean"), images, random_features, seed=4, tasks=["random"])
    assert other["random"]["psnr"] != first["random"]["psnr"]  # a different seed, different masks


def test_evaluate_selected_tasks_only_and_unknown_task():
    adapter = FakeAdapter("mean")
    result = evaluate(adapter, smooth_images(10), random_features, tasks=["box_50"], batch_size=4)
    assert list(result) == ["box_50"] and adapter.generated_rows == 10
    with pytest.raises(ValueError, match="unknown task 'border'"):
        evaluate(adapter, smooth_images(4), random_features, tasks=["border"])


def test_evaluate_uses_a_feature_net_features_not_its_logits():
    class Net(torch.nn.Module):
        def features(self, x):
            return random_features(x)

        def forward(self, x):
            raise AssertionError("evaluate must use .features")

    result = evaluate(FakeAdapter("identity"), smooth_images(4), Net(), tasks=["box_25"])
    assert result["box_25"]["cosine"] == pytest.approx(1.0)


def test_evaluate_without_features_or_with_one_image():
    no_features = evaluate(FakeAdapter("mean"), smooth_images(3), None, tasks=["box_50"])["box_50"]
    assert no_features["cosine"] is None and no_features["frechet"] is None
    assert no_features["psnr"] < PSNR_CAP_DB and no_features["n"] == 3
    single = evaluate(FakeAdapter("mean"), smooth_images(1), random_features, tasks=["random"])["random"]
    assert single["frechet"] is None and single["cosine"] < 1.0 and single["n"] == 1
