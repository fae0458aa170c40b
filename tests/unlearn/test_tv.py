"""torchvision's pure-Python parts import on a CPU-only torch through import_torchvision."""

from __future__ import annotations

import subprocess
import sys

from pathlib import Path

import torch

from worker.unlearn.tv import import_torchvision

ROOT = Path(__file__).resolve().parents[2]


def test_import_is_cached_and_idempotent():
    tv = import_torchvision()
    assert import_torchvision() is tv is sys.modules["torchvision"]
    assert tv.__version__.startswith("0.28.0")


def test_transforms_and_image_utils_work(tmp_path):
    tv = import_torchvision()
    from torchvision.datasets.mnist import read_image_file  # noqa: F401  (importable)
    from torchvision.utils import make_grid, save_image

    x = torch.rand(4, 1, 8, 8)
    normalised = tv.transforms.Normalize([0.5], [0.25])(x[0])
    assert torch.allclose(normalised, (x[0] - 0.5) / 0.25)
    grid = make_grid(x, nrow=2, padding=1)
    assert grid.shape == (3, 19, 19)
    save_image(x, tmp_path / "grid.png", nrow=2)
    assert (tmp_path / "grid.png").stat().st_size > 0


def test_fresh_interpreter_imports_through_the_workaround():
    code = (
        "from worker.unlearn.tv import import_torchvision\n"
        "tv = import_torchvision()\n"
        "from torchvision.utils import make_grid\n"
        "import torch\n"
        "print(tuple(make_grid(torch.zeros(2, 1, 4, 4)).shape))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(3, 8, 14)"
