"""Checkpoints: safetensors + JSON header round trips; pickle and foreign files are refused."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
from safetensors.torch import save as st_save
from tests.unlearn.tiny_models import make_tiny, snapshot

from worker.unlearn import (
    CheckpointError,
    checkpoint_from_bytes,
    checkpoint_to_bytes,
    load_checkpoint,
    read_header,
    save_checkpoint,
)

EXTRA = {"parent_digest": "ab" * 32, "request_ids": ["r1", "r2"], "metrics": {"forget": {"psnr": 12.5}}}


def test_bytes_round_trip_keeps_tensors_config_and_header() -> None:
    adapter = make_tiny("mae", seed=5)
    data = checkpoint_to_bytes(adapter, EXTRA)
    loaded, header = checkpoint_from_bytes(data)
    assert type(loaded) is type(adapter) and loaded.config == adapter.config
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in snapshot(adapter).items())
    assert header == {**EXTRA, "format": "oblivio-checkpoint/1", "family": "mae", "config": adapter.config.to_dict()}
    assert checkpoint_to_bytes(loaded, header) == data  # deterministic bytes


def test_header_cannot_lie_about_family_or_config() -> None:
    adapter = make_tiny("mae")
    header = read_header(checkpoint_to_bytes(adapter, {"family": "other", "config": {}, "format": "x"}))
    assert header["family"] == "mae" and header["config"] == adapter.config.to_dict()
    assert header["format"] == "oblivio-checkpoint/1"


def test_file_digest_is_the_sha256_of_the_file(tmp_path) -> None:
    adapter = make_tiny("mae")
    path = tmp_path / "sub" / "model.safetensors"
    digest = save_checkpoint(adapter, path, EXTRA)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    loaded, header = load_checkpoint(path)
    assert header["request_ids"] == ["r1", "r2"]
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in adapter.state_dict().items())
    assert [p.name for p in path.parent.iterdir()] == ["model.safetensors"]  # no temp file left


def test_pickle_checkpoint_is_refused(tmp_path) -> None:
    path = tmp_path / "model.pth"
    torch.save(make_tiny("mae").state_dict(), path)
    with pytest.raises(CheckpointError, match="pickle checkpoints"):
        load_checkpoint(path)
    path.write_bytes(b"\x80\x04\x95" + b"\x00" * 64)  # a bare pickle stream
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(path)


def test_foreign_or_broken_files_are_refused() -> None:
    plain = st_save({"w": torch.zeros(2)})  # safetensors without our header
    with pytest.raises(CheckpointError, match="'oblivio' header"):
        checkpoint_from_bytes(plain)
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        checkpoint_from_bytes(b"\xff" * 32)
    wrong_format = st_save({"w": torch.zeros(2)}, metadata={"oblivio": json.dumps({"format": "v0"})})
    with pytest.raises(CheckpointError, match="unsupported checkpoint format 'v0'"):
        checkpoint_from_bytes(wrong_format)


def test_tensors_not_matching_the_header_config_are_refused() -> None:
    adapter = make_tiny("mae")
    data = checkpoint_to_bytes(adapter)
    header = read_header(data)
    tensors = {k: v for k, v in adapter.state_dict().items() if k != "decoder_pred.bias"}
    forged = st_save(tensors, metadata={"oblivio": json.dumps(header)})
    with pytest.raises(ValueError, match=r"missing keys \['decoder_pred.bias'\]"):
        checkpoint_from_bytes(forged)


def test_a_header_length_that_looks_like_a_pickle_opcode_still_loads() -> None:
    adapter = make_tiny("mae")
    data = b""
    for pad in range(400):  # find a header whose length's low byte is 0x80, the pickle PROTO opcode
        data = checkpoint_to_bytes(adapter, {"note": "x" * pad})
        if data[:1] == b"\x80":
            break
    assert data[:1] == b"\x80"
    assert checkpoint_from_bytes(data)[1]["note"].startswith("x")


def test_read_header_and_load_checkpoint_take_bytes_or_a_path(tmp_path) -> None:
    adapter = make_tiny("mae", seed=2)
    path = tmp_path / "model.safetensors"
    save_checkpoint(adapter, path, EXTRA)
    data = path.read_bytes()
    assert read_header(path) == read_header(str(path)) == read_header(data) == read_header(bytearray(data))
    assert read_header(path)["request_ids"] == ["r1", "r2"]
    for source in (path, str(path), data):
        loaded, header = load_checkpoint(source)
        assert header == read_header(data)
        assert all(torch.equal(loaded.state_dict()[k], v) for k, v in adapter.state_dict().items())
    torch.save(adapter.state_dict(), tmp_path / "model.pth")
    with pytest.raises(CheckpointError, match="pickle checkpoints"):
        read_header(tmp_path / "model.pth")
