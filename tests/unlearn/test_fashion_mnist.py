"""Fashion-MNIST export from the Debian package: PNGs + manifests, idempotent."""

from __future__ import annotations

import numpy as np
import pytest

import worker.fashion_mnist as fm
from worker.unlearn.data import load_images, read_manifest



@pytest.fixture(autouse=True)
def _needs_package():
    if not (fm.DEFAULT_SOURCE / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.fail("Debian package dataset-fashion-mnist is not installed: run scripts/ensure-dataset.sh")


def test_read_idx_split_shapes_and_labels():
    images, labels = fm.read_idx_split(fm.DEFAULT_SOURCE, "test")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and set(np.unique(labels)) == set(range(10))
    assert np.bincount(labels).tolist() == [1000] * 10


def test_class_names_are_the_ten_fashion_mnist_classes():
    assert fm.CLASS_NAMES == (
        "t_shirt_top", "trouser", "pullover", "dress", "coat",
        "sandal", "shirt", "sneaker", "bag", "ankle_boot",
    )  # fmt: skip


def test_export_writes_pngs_and_manifests(tmp_path):
    manifests = fm.export(tmp_path, limit_per_class=3)
    assert manifests == {"train": tmp_path / "train.jsonl", "test": tmp_path / "test.jsonl"}
    assert '"uri":"test/' in (tmp_path / "test.jsonl").read_text()  # relative uris on disk
    images, labels = fm.read_idx_split(fm.DEFAULT_SOURCE, "test")
    records = read_manifest(tmp_path / "test.jsonl")
    assert len(records) == 30
    assert sorted(r.class_label for r in records) == sorted(fm.CLASS_NAMES * 3)
    first = records[0]
    assert first.sample_key == "fmnist-test-00000" and first.class_label == fm.CLASS_NAMES[labels[0]]
    assert first.uri == str(tmp_path.resolve() / "test" / "00000.png")
    index = [int(r.sample_key.rsplit("-", 1)[1]) for r in records]
    loaded = load_images(records, image_shape=(1, 28, 28))  # verifies every sha256
    assert np.array_equal((loaded[:, 0].numpy() * 255).round().astype(np.uint8), images[index])
    assert len(read_manifest(tmp_path / "train.jsonl")) == 30


def test_second_export_does_nothing(tmp_path, monkeypatch):
    fm.export(tmp_path, limit_per_class=1)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}

    def fail(*args):
        raise AssertionError("a complete export must not be written again")

    monkeypatch.setattr(fm, "_write_pngs", fail)
    fm.export(tmp_path, limit_per_class=1, workers=1)
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before


def test_incomplete_export_is_redone(tmp_path):
    fm.export(tmp_path, limit_per_class=1)
    lines = (tmp_path / "test.jsonl").read_text().splitlines()
    (tmp_path / "test.jsonl").write_text("\n".join(lines[:-1]) + "\n")  # a manifest cut short
    (tmp_path / "test" / "00000.png").unlink()
    fm.export(tmp_path, limit_per_class=1)
    assert len(load_images(read_manifest(tmp_path / "test.jsonl"))) == 10


def test_missing_package_says_how_to_install(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        fm.read_idx_split(tmp_path, "train")
    assert fm.main(["export", "--out", str(tmp_path / "out"), "--source", str(tmp_path)]) == 2
    assert "apt-get install dataset-fashion-mnist" in capsys.readouterr().err


def test_command_line_export(tmp_path, capsys):
    assert fm.main(["export", "--out", str(tmp_path), "--limit-per-class", "2"]) == 0
    assert len(read_manifest(tmp_path / "train.jsonl")) == 20
    assert "train.jsonl" in capsys.readouterr().out
