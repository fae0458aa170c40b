"""Models the retrained-reference benchmark needs, trained once and cached under ``var/reference/``.

    python -m benchmarks.reference_models --dataset fashion-mnist --model retrained [--threads 1]

- ``base``: the demo MAE recipe (``worker.train_demo.DEMO_MAE`` / ``DEMO_RECIPE``, seed 0) on the
  dataset's whole training split (for Fashion-MNIST the committed demo asset is the base and is not
  retrained here);
- ``retrained``: the same recipe and seed on the training split without the forgotten class;
- ``base-diffusion``: the demo diffusion recipe on the whole training split (Fashion-MNIST: the
  committed ``diffusion.safetensors``);
- ``retrained-diffusion``: the demo diffusion recipe (``worker.train_demo.DEMO_DIFFUSION`` /
  ``DEMO_DIFFUSION_RECIPE``, seed 0) on the training split without the forgotten class (the
  committed ``diffusion.safetensors`` is the base on Fashion-MNIST);
- ``judge``: an independent classifier (:class:`Judge`: another architecture than the demo's
  feature net, another seed) on the whole training split.

A cached file is reused as long as it exists; delete ``var/reference/<dataset>/`` to retrain.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from benchmarks.datasets import DATASETS, Dataset
from worker.train_demo import DEMO_DIFFUSION_RECIPE, DEMO_RECIPE, fit_diffusion, fit_mae
from worker.unlearn import Adapter, load_checkpoint, save_checkpoint
from worker.unlearn.families.mae.train import MAETrainConfig

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "var" / "reference"
MAE_SEED = 0  # the demo's (MAE and diffusion alike)
MODELS = ("base", "retrained", "base-diffusion", "retrained-diffusion", "judge")
JUDGE_SEED = 7  # not the feature net's 0


class Judge(nn.Module):
    """An evaluation classifier unlike the demo's FeatureNet (3 conv+BN+pool stages, 128-d head):
    two 5x5 conv stages without normalisation, GELU, dropout, a 192-d hidden layer. Input (N, 1, 28, 28)
    in [0, 1]; output (N, classes) logits."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 5, padding=2)
        self.conv2 = nn.Conv2d(16, 32, 5, padding=2)
        self.fc1 = nn.Linear(32 * 7 * 7, 192)
        self.fc2 = nn.Linear(192, classes)
        self.drop = nn.Dropout(0.3)

    def forward(self, x: Tensor) -> Tensor:
        x = F.max_pool2d(F.gelu(self.conv1(x * 2 - 1)), 2)  # (N, 16, 14, 14)
        x = F.max_pool2d(F.gelu(self.conv2(x)), 2)  # (N, 32, 7, 7)
        return self.fc2(self.drop(F.gelu(self.fc1(x.flatten(1)))))


def mae_recipe(data: Dataset) -> MAETrainConfig:
    """The demo recipe (seed 0) with the dataset's epoch count (``Dataset.mae_epochs``): the base and
    the retrained model of a dataset always share it."""
    return MAETrainConfig(**{**DEMO_RECIPE.to_dict(), "epochs": data.mae_epochs, "seed": MAE_SEED})


def _log(message: str) -> None:
    print(message, flush=True)


def _save_reference(adapter: Adapter, training: dict, path: Path, description: str) -> Adapter:
    header = {"name": path.stem, "dataset": description, "training": {**training, "threads": torch.get_num_threads()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(adapter, path, header)
    print(f"{path}: {training['seconds']:.0f} s", flush=True)
    return adapter


def train_reference_mae(data: Dataset, images: Tensor, path: Path, description: str) -> Adapter:
    """The demo MAE recipe (the dataset's epochs) on ``images`` (N, 1, 28, 28) uint8 (worker.train_demo.fit_mae)."""
    print(f"{path.name}: {len(images)} images", flush=True)
    adapter, training = fit_mae(images, MAE_SEED, mae_recipe(data), _log)
    return _save_reference(adapter, training, path, description)


def train_reference_diffusion(images: Tensor, path: Path, description: str) -> Adapter:
    """The demo diffusion recipe on ``images`` (N, 1, 28, 28) uint8 (worker.train_demo.fit_diffusion)."""
    print(f"{path.name}: {len(images)} images", flush=True)
    adapter, training = fit_diffusion(images, MAE_SEED, DEMO_DIFFUSION_RECIPE, _log)
    return _save_reference(adapter, training, path, description)


def train_judge(data: Dataset, path: Path, images_seen: int = 120_000, batch: int = 128) -> Judge:
    """AdamW + cosine schedule on the whole training split for about ``images_seen`` images, seeded."""
    epochs = max(1, round(images_seen / len(data.train_x)))
    torch.manual_seed(JUDGE_SEED)
    net = Judge(len(data.class_names))
    gen = torch.Generator().manual_seed(JUDGE_SEED)
    x_all, y_all = data.train_x.float() / 255.0, data.train_y
    steps = epochs * math.ceil(len(x_all) / batch)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    net.train()
    started = time.perf_counter()
    for epoch in range(epochs):
        order = torch.randperm(len(x_all), generator=gen)
        for start in range(0, len(x_all), batch):
            idx = order[start : start + batch]
            loss = F.cross_entropy(net(x_all[idx]), y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        print(f"judge epoch {epoch + 1}/{epochs} loss {loss.item():.4f}", flush=True)
    net.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(net.state_dict(), path)
    print(f"{path}: {time.perf_counter() - started:.0f} s, test accuracy {judge_accuracy(net, data):.4f}", flush=True)
    return net


@torch.no_grad()
def judge_accuracy(net: Judge, data: Dataset) -> float:
    pred = torch.cat([net(data.test_x[i : i + 1000].float() / 255.0).argmax(1) for i in range(0, len(data.test_x), 1000)])
    return float((pred == data.test_y).float().mean())


def load_or_train(data: Dataset, model: str) -> Adapter | Judge:
    """The cached ``model`` (one of :data:`MODELS`) for ``data``, trained first if missing."""
    if model == "base" and data.base_checkpoint is not None:
        return load_checkpoint(data.base_checkpoint)[0]
    if model == "base-diffusion" and data.base_checkpoint is not None:  # the committed demo assets sit together
        return load_checkpoint(data.base_checkpoint.with_name("diffusion.safetensors"))[0]
    path = CACHE / data.name / f"{model}.safetensors"
    if model == "judge":
        if not path.is_file():
            return train_judge(data, path)
        net = Judge(len(data.class_names))
        net.load_state_dict(load_file(path))
        return net.eval()
    if path.is_file():
        return load_checkpoint(path)[0]
    if model == "base":
        return train_reference_mae(data, data.train_x, path, f"{data.name} train split")
    if model == "base-diffusion":
        return train_reference_diffusion(data.train_x, path, f"{data.name} train split")
    keep = data.train_y != data.forget_class
    if model == "retrained-diffusion":
        return train_reference_diffusion(data.train_x[keep], path,
                                         f"{data.name} train split without class {data.class_names[data.forget_class]}")
    return train_reference_mae(data, data.train_x[keep], path,
                               f"{data.name} train split without class {data.class_names[data.forget_class]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reference_models", description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(DATASETS), required=True)
    parser.add_argument("--model", choices=MODELS, required=True)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    load_or_train(DATASETS[args.dataset](), args.model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
