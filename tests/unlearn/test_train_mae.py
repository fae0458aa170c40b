"""MAE pre-training (the demo model's recipe, on a tiny model): seeded, reproducible, learns."""

from __future__ import annotations

import torch

from tests.unlearn.tiny_models import make_images, make_tiny, snapshot
from worker.unlearn.families.mae.train import MAETrainConfig, train_mae

RECIPE = MAETrainConfig(epochs=3, batch_size=32, lr=2e-3, warmup_epochs=1.0, seed=0)


def trained(seed: int = 0) -> tuple[dict[str, torch.Tensor], list[float]]:
    adapter = make_tiny("mae")
    images = make_images(adapter, 256, seed=7)
    result = train_mae(adapter, images, MAETrainConfig(**{**RECIPE.to_dict(), "seed": seed}))
    assert result.steps == 3 * (256 // 32)
    return snapshot(adapter), result.losses


def test_same_seed_same_weights_and_the_loss_falls() -> None:
    one, losses = trained()
    two, _ = trained()
    other, _ = trained(seed=1)
    assert all(torch.equal(one[k], two[k]) for k in one)
    assert any(not torch.equal(one[k], other[k]) for k in one)
    assert losses[-1] < 0.8 * losses[0]


def test_uint8_images_are_scaled_like_floats() -> None:
    adapter_a, adapter_b = make_tiny("mae"), make_tiny("mae")
    images = (make_images(adapter_a, 64, seed=3) * 255).round()
    recipe = MAETrainConfig(epochs=1, batch_size=32, seed=0)
    train_mae(adapter_a, images.to(torch.uint8), recipe)
    train_mae(adapter_b, images / 255.0, recipe)
    a, b = snapshot(adapter_a), snapshot(adapter_b)
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
