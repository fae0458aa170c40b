"""Manifests and image loading: parsing errors name the line, integrity errors name the sample."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from worker.unlearn.data import (
    ManifestError,
    SampleIntegrityError,
    SampleLoadError,
    SampleRecord,
    load_images,
    load_uri,
    read_manifest,
    sha256_file,
    write_manifest,
)


def make_png(path: Path, pixels: np.ndarray) -> SampleRecord:
    """Write ``pixels`` (H, W) or (H, W, 3) uint8 as a PNG; return its record (absolute uri)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return SampleRecord(path.stem, "cls", str(path), sha256_file(path))


def grey(seed: int, shape=(8, 6)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def line(**overrides) -> str:
    obj = {"sample_key": "a", "class_label": "bag", "uri": "a.png", "sha256": "0" * 64, **overrides}
    return json.dumps({k: v for k, v in obj.items() if v is not None})


def test_manifest_round_trip_resolves_relative_uris(tmp_path):
    records = [SampleRecord("k0", "bag", "img/0.png", "a" * 64), SampleRecord("k1", "coat", "/abs/1.png", "b" * 64)]
    write_manifest(tmp_path / "m.jsonl", records)
    back = read_manifest(tmp_path / "m.jsonl")
    assert [r.sample_key for r in back] == ["k0", "k1"]
    assert back[0].uri == str(tmp_path.resolve() / "img" / "0.png")
    assert back[1].uri == "/abs/1.png"
    assert back[1] == records[1]


@pytest.mark.parametrize(
    "bad, problem",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        (line(sha256=None), "missing fields ['sha256']"),
        (line(extra="x"), "unexpected fields ['extra']"),
        (line(class_label=3), "'class_label' must be a non-empty string"),
        (line(sample_key=""), "'sample_key' must be a non-empty string"),
        (line(sha256="ABC"), "64 lowercase hex"),
    ],
)
def test_bad_manifest_line_names_line_and_problem(tmp_path, bad, problem):
    path = tmp_path / "m.jsonl"
    path.write_text(line(sample_key="ok") + "\n\n" + bad + "\n")
    with pytest.raises(ManifestError) as err:
        read_manifest(path)
    assert "line 3" in str(err.value) and problem in str(err.value)


def test_duplicate_sample_key_is_an_error(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text(line(sample_key="x") + "\n" + line(sample_key="y") + "\n" + line(sample_key="x") + "\n")
    with pytest.raises(ManifestError, match=r"line 3: duplicate sample_key 'x' \(first on line 1\)"):
        read_manifest(path)


def test_load_images_grey_png_values_and_shape(tmp_path):
    pixels = [grey(0), grey(1)]
    records = [make_png(tmp_path / f"{i}.png", p) for i, p in enumerate(pixels)]
    batch = load_images(records)
    assert batch.shape == (2, 1, 8, 6) and str(batch.dtype) == "torch.float32"
    assert np.array_equal((batch[:, 0].numpy() * 255).round().astype(np.uint8), np.stack(pixels))


def test_load_images_rgb_and_jpeg(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (8, 6, 3), dtype=np.uint8)
    png = make_png(tmp_path / "c.png", rgb)
    jpg_path = tmp_path / "g.jpg"
    Image.fromarray(grey(2)).save(jpg_path, quality=95)
    jpg = SampleRecord("g", "cls", str(jpg_path), sha256_file(jpg_path))
    batch = load_images([png, jpg], image_shape=(3, 8, 6))  # the grey JPEG is converted to RGB
    assert batch.shape == (2, 3, 8, 6)
    assert np.array_equal((batch[0].numpy() * 255).round().astype(np.uint8), rgb.transpose(2, 0, 1))
    assert 0.0 <= float(batch.min()) and float(batch.max()) <= 1.0


def test_sha256_mismatch_names_the_sample_never_the_digest_read(tmp_path):
    record = make_png(tmp_path / "a.png", grey(0))
    make_png(tmp_path / "a.png", grey(1))  # the file changes after the manifest was written
    actual = hashlib.sha256((tmp_path / "a.png").read_bytes()).hexdigest()
    with pytest.raises(SampleIntegrityError) as err:
        load_images([record])
    assert isinstance(err.value, SampleLoadError) and err.value.sample_key == "a"
    assert str(err.value) == "sample 'a': content does not match its registered sha256"
    err.value.dataset = "train"  # what the worker adds before the text becomes a job's reason_detail
    assert str(err.value) == "sample 'a' of dataset 'train': content does not match its registered sha256"
    assert actual not in str(err.value) and str(tmp_path) not in str(err.value)
    assert load_images([record], verify=False).shape == (1, 1, 8, 6)


def test_missing_file_names_the_sample_not_the_path(tmp_path):
    record = SampleRecord("gone-1", "bag", str(tmp_path / "nope.png"), "0" * 64)
    with pytest.raises(SampleLoadError) as err:
        load_images([record])
    assert str(err.value) == "sample 'gone-1': file missing"


def test_shape_mismatch_is_an_error_not_a_resize(tmp_path):
    records = [make_png(tmp_path / "a.png", grey(0)), make_png(tmp_path / "b.png", grey(1, (6, 8)))]
    with pytest.raises(SampleLoadError, match=r"sample 'b': image shape \(1, 6, 8\) != expected \(1, 8, 6\)"):
        load_images(records)
    with pytest.raises(SampleLoadError, match="sample 'a'"):
        load_images(records[:1], image_shape=(1, 28, 28))


@pytest.mark.parametrize("content", [b"hello", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40], ids=["text", "truncated-png"])
def test_not_an_image_is_a_clear_error_without_object_reprs(tmp_path, content):
    path = tmp_path / "x.png"
    path.write_bytes(content)
    record = SampleRecord("x", "cls", str(path), sha256_file(path))
    with pytest.raises(SampleLoadError) as err:
        load_images([record])
    assert str(err.value) == "sample 'x': not a readable PNG or JPEG image"  # Pillow's text holds <_io.BytesIO …>


def test_a_custom_reader_supplies_the_bytes(tmp_path):
    record = make_png(tmp_path / "a.png", grey(0))
    data = (tmp_path / "a.png").read_bytes()
    (tmp_path / "a.png").unlink()
    assert load_images([record], read=lambda r: data).shape == (1, 1, 8, 6)


def test_load_uri_plain_path_and_file_uri(tmp_path):
    path = tmp_path / "with space.bin"
    path.write_bytes(b"\x00\x01")
    assert load_uri(str(path)) == b"\x00\x01"
    assert load_uri(path.as_uri()) == b"\x00\x01"  # file:///.../with%20space.bin
    with pytest.raises(ValueError, match="unsupported URI scheme"):
        load_uri("s3://bucket/key.png")


def test_sha256_file(tmp_path):
    (tmp_path / "f").write_bytes(b"abc")
    assert sha256_file(tmp_path / "f") == hashlib.sha256(b"abc").hexdigest()
