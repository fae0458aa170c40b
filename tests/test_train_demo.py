"""worker/train_demo.py: a run writes the header the committed demo checkpoints carry.

The trainers run for one or two steps on a small synthetic Fashion-MNIST split; what they write
must have the committed headers' keys and the same fixed values (name, dataset, architecture,
encoder-L2 defaults), so re-running ``python -m worker.train_demo`` reproduces those headers.
"""

from __future__ import annotations

import gzip
import platform
from pathlib import Path

import numpy as np
import pytest
import torch

from worker.train_demo import (
    DEMO_DIFFUSION_UNLEARN,
    DEMO_UNLEARN,
    train_demo_diffusion,
    train_demo_gan,
    train_demo_mae,
)
from worker.unlearn import EncoderL2Config, read_header
from worker.unlearn.families.diffusion import DiffusionTrainConfig
from worker.unlearn.families.gan import GANTrainConfig
from worker.unlearn.families.mae.train import MAETrainConfig

DEMO = Path("worker/assets/demo")
RUNS = {  # family: (trainer, a recipe of one or two steps)
    "mae": (train_demo_mae, MAETrainConfig(epochs=1, batch_size=64)),
    "diffusion": (train_demo_diffusion, DiffusionTrainConfig(steps=2, batch_size=32, warmup_steps=1)),
    "gan": (train_demo_gan, GANTrainConfig(steps=2, batch_size=64)),
}
ENVIRONMENT = ("threads", "torch", "machine")


def write_train_split(folder: Path, n: int = 64) -> Path:
    """A Fashion-MNIST-format training split (gzipped IDX) of ``n`` random 28x28 images."""
    pixels = np.random.default_rng(0).integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = np.arange(n, dtype=np.uint8) % 10
    for name, magic, array in (("images-idx3", 0x803, pixels), ("labels-idx1", 0x801, labels)):
        head = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
        (folder / f"train-{name}-ubyte.gz").write_bytes(gzip.compress(head + array.tobytes()))
    return folder


@pytest.mark.parametrize("family", list(RUNS))
def test_a_run_writes_the_committed_header(family: str, tmp_path: Path) -> None:
    trainer, recipe = RUNS[family]
    lines: list[str] = []
    path = trainer(tmp_path, 0, write_train_split(tmp_path), log=lines.append, recipe=recipe)
    assert path == tmp_path / f"{family}.safetensors" and path.is_file()
    assert f"wrote {path} ({path.stat().st_size} bytes, sha256 " in lines[-1]
    written, committed = read_header(path), read_header(DEMO / f"{family}.safetensors")

    assert written.keys() == committed.keys()
    for key in ("name", "dataset", "family", "format"):
        assert written[key] == committed[key]
    stats = ("pixel_mean", "pixel_std")  # measured on the (here synthetic) images
    assert {k: v for k, v in written["config"].items() if k not in stats} == {
        k: v for k, v in committed["config"].items() if k not in stats
    }
    training = written["training"]
    assert training.keys() == committed["training"].keys()
    assert {k: training[k] for k in recipe.to_dict()} == {**recipe.to_dict(), "seed": 0}
    assert [training[k] for k in ENVIRONMENT] == [torch.get_num_threads(), torch.__version__, platform.machine()]


def test_unlearn_defaults_are_the_measured_settings() -> None:
    """The demo MAE's header predates the explicit step count (``epochs``/``max_steps``; see
    worker/unlearn/config.py LEGACY_RENAMED): read as the service reads it, it is DEMO_UNLEARN."""
    mae = read_header(DEMO / "mae.safetensors")["unlearn_defaults"]
    assert EncoderL2Config.from_header(mae) == DEMO_UNLEARN
    assert read_header(DEMO / "diffusion.safetensors")["unlearn_defaults"] == DEMO_DIFFUSION_UNLEARN.to_dict()
    assert "unlearn_defaults" not in read_header(DEMO / "gan.safetensors")
