"""The evaluation classifier: shapes, safetensors round trip, seeded training, the shipped checkpoint."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from worker.fashion_mnist import CLASS_NAMES
from worker.unlearn.features import FeatureNet, FeatureNetConfig, load_feature_net, read_header, save_feature_net
from worker.unlearn.train_classifier import Recipe, accuracy, fit

SHIPPED = Path(__file__).resolve().parents[2] / "worker" / "assets" / "demo" / "classifier.safetensors"


def make_net(seed: int = 0, **config) -> FeatureNet:
    torch.manual_seed(seed)
    return FeatureNet(FeatureNetConfig(**config)).eval()


def test_feature_and_logit_shapes():
    net = make_net(feature_dim=96)
    x = torch.rand(5, 1, 28, 28)
    feats = net.features(x)
    assert feats.shape == (5, 96) and bool((feats >= 0).all())
    assert net(x).shape == (5, 10)
    with pytest.raises(ValueError, match="expects"):
        net.features(torch.rand(5, 3, 28, 28))


def test_save_load_round_trip_from_path_and_bytes(tmp_path):
    net = make_net(widths=(8, 16), feature_dim=32)
    net.train()(torch.rand(16, 1, 28, 28))  # move the BatchNorm running statistics off their init
    net.eval()
    save_feature_net(tmp_path / "c.safetensors", net, {"class_names": list(CLASS_NAMES), "test_accuracy": 0.5})
    x = torch.rand(4, 1, 28, 28)
    for source in (tmp_path / "c.safetensors", (tmp_path / "c.safetensors").read_bytes()):
        loaded = load_feature_net(source)
        assert loaded.config == net.config and not loaded.training
        assert not any(p.requires_grad for p in loaded.parameters())
        assert loaded.header["class_names"] == list(CLASS_NAMES) and loaded.header["test_accuracy"] == 0.5
        assert torch.equal(loaded.features(x), net.features(x))
        assert read_header(source) == loaded.header


def test_load_refuses_a_file_without_the_oblivio_header(tmp_path):
    save_file({"w": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(ValueError, match="no 'oblivio' header"):
        load_feature_net(tmp_path / "plain.safetensors")


def test_fit_is_seeded_and_reproducible():
    g = np.random.default_rng(0)
    images = g.integers(0, 256, (96, 28, 28), dtype=np.uint8)
    labels = g.integers(0, 10, 96, dtype=np.uint8)
    recipe = Recipe(seed=1, epochs=2, batch_size=32)
    config = FeatureNetConfig(widths=(4, 8), feature_dim=16)
    quiet = lambda *_: None  # noqa: E731
    state = [fit(images, labels, r, config, log=quiet).state_dict()
             for r in (recipe, recipe, dataclasses.replace(recipe, seed=2))]  # fmt: skip
    assert all(torch.equal(state[0][k], state[1][k]) for k in state[0])
    assert not all(torch.equal(state[0][k], state[2][k]) for k in state[0])


def test_fit_restores_the_callers_thread_count():
    images, labels = np.zeros((8, 28, 28), np.uint8), np.arange(8, dtype=np.uint8)
    torch.set_num_threads(2)  # the autouse fixture restores the original count afterwards
    fit(images, labels, Recipe(epochs=1), FeatureNetConfig(widths=(4,), feature_dim=8), log=lambda *_: None)
    assert torch.get_num_threads() == 2


def test_shipped_classifier_is_small_and_accurate(fashion_mnist):
    assert SHIPPED.stat().st_size < 1_000_000
    net = load_feature_net(SHIPPED)
    assert net.header["class_names"] == list(CLASS_NAMES)
    assert net.header["test_accuracy"] >= 0.89
    images, labels = fashion_mnist["test"]
    pixels = (images[:2000, 0] * 255).round().to(torch.uint8).numpy()
    assert accuracy(net, pixels, labels[:2000].numpy()) >= 0.88  # measured 0.91 on the whole split
