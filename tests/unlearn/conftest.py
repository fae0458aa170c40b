"""Fashion-MNIST for the unlearning tests, read straight from the Debian idx files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(scope="session")
def fashion_mnist() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{"train" | "test": (images (N, 1, 28, 28) float in [0, 1], labels (N,) int64)}."""
    from worker.fashion_mnist import read_idx_split

    if not (FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file():
        pytest.fail("Debian package dataset-fashion-mnist is not installed: run scripts/ensure-dataset.sh")
    splits = {}
    for split in ("train", "test"):
        images, labels = read_idx_split(FASHION_MNIST, split)
        x = torch.from_numpy(images.copy()).unsqueeze(1).float() / 255.0
        splits[split] = (x, torch.from_numpy(labels.astype("int64")))
    return splits


@pytest.fixture(autouse=True)
def _single_thread():
    """Tiny models run fastest on one thread, and a shared CPU makes extra threads spin-wait."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
