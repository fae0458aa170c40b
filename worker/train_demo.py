"""Train the demo models on Fashion-MNIST (CPU, reproducible) and write them to ``--out``.

    python -m worker.train_demo --out worker/assets/demo [--seed 0] [--only mae|classifier|diffusion|gan]
    python -m worker.train_demo --family diffusion --out worker/assets/demo   # the diffusion demo only

``mae.safetensors``: a small MAE (28x28, patch 4, one channel) pre-trained on the 60k training
images read from the Debian package ``dataset-fashion-mnist``; its header records the training
recipe and time and the recommended encoder-L2 settings for this model (``unlearn_defaults``).
``diffusion.safetensors`` (only with ``--only diffusion`` / ``--family diffusion``): a small Palette-style
inpainter (worker.unlearn.families.diffusion, a diffusers UNet2DModel) trained on the same images.
``classifier.safetensors``: the independent evaluation feature net (worker.unlearn.train_classifier).
``gan.safetensors``: a small DCGAN-style GAN (generator + discriminator, family ``gan``) trained on
the same 60k images; not part of the default run (``--only gan`` or ``--family gan``).

Same seed, same thread count, same machine -> the same weights (deterministic algorithms, a fixed
thread count, seeded generators only). The header's wall-clock time differs between runs, so the
file digest does too; compare tensors, not files.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch

from worker.fashion_mnist import DEFAULT_SOURCE, read_idx_split
from worker.unlearn import Adapter, EncoderL2Config, create_adapter, save_checkpoint
from worker.unlearn.families.diffusion import DiffusionTrainConfig, demo_unet, train_diffusion
from worker.unlearn.families.gan import GANTrainConfig, train_gan
from worker.unlearn.families.mae.train import MAETrainConfig, train_mae

DEMO_MAE = {
    "image_size": 28, "patch_size": 4, "in_chans": 1,
    "embed_dim": 96, "depth": 5, "num_heads": 3,
    "decoder_embed_dim": 64, "decoder_depth": 2, "decoder_num_heads": 4,
    "mlp_ratio": 4.0, "mask_ratio": 0.75,
}  # fmt: skip
DEMO_RECIPE = MAETrainConfig(epochs=4, batch_size=256, lr=2e-3, min_lr=1e-5, warmup_epochs=1.0, weight_decay=0.05)
# Encoder-L2 settings measured on this model (see tests/unlearn/test_quality_demo.py): the paper's
# lr 1e-5 was for a ViT-L on ImageNet and barely moves this 0.6M-parameter encoder.
DEMO_UNLEARN = EncoderL2Config(lr=1e-3, alpha=0.25, steps=600, batch_size=64)


DEMO_DIFFUSION = {"image_size": 28, "in_chans": 1, "unet": demo_unet((16, 32, 64)), "patch_size": 4,
                  "mask_ratio": 0.75, "sample_steps": 10}  # fmt: skip
DEMO_DIFFUSION_RECIPE = DiffusionTrainConfig(steps=600, batch_size=32, lr=2e-3, min_lr=1e-5, warmup_steps=50)
# Encoder-L2 settings for the demo diffusion model (see README, "Diffusion family").
DEMO_DIFFUSION_UNLEARN = EncoderL2Config(lr=1e-3, alpha=0.25, steps=400, batch_size=32)


DATASET = "fashion-mnist train split (60000 images, dataset-fashion-mnist)"


def _log(message: str) -> None:
    print(message, flush=True)


def _training_images(source: Path) -> torch.Tensor:
    """The training split as (N, 1, 28, 28) uint8."""
    images, _ = read_idx_split(source, "train")  # (60000, 28, 28) uint8
    return torch.from_numpy(images.copy()).unsqueeze(1)  # (N, 1, 28, 28) uint8


def _pixel_stats(x: torch.Tensor) -> tuple[float, float]:
    """Pixel mean and std in [0, 1] of (N, 1, H, W) uint8 images (one channel: over all pixels)."""
    pixels = x.double() / 255.0
    return pixels.mean().item(), pixels.std().item()


def _save_demo(adapter: Adapter, out_dir: Path, name: str, training: dict[str, Any],
               unlearn_defaults: EncoderL2Config | None, log, done: str) -> Path:
    """Write ``out_dir/<name>.safetensors`` with the header every demo carries; returns its path.

    ``training``: the recipe and what the run measured; the thread count, torch version and machine
    are added, since the weights are reproducible only with all three the same. ``unlearn_defaults``:
    the encoder-L2 settings measured on this model (None: the family's recommendation applies,
    worker/unlearn/config.py FAMILY_RECOMMENDED). ``done``: the start of the closing log line.
    """
    header = {
        "name": f"fashion-mnist-{name}-demo",
        "dataset": DATASET,
        "training": {**training, "threads": torch.get_num_threads(), "torch": torch.__version__,
                     "machine": platform.machine()},
    }  # fmt: skip
    if unlearn_defaults is not None:
        header["unlearn_defaults"] = unlearn_defaults.to_dict()
    path = out_dir / f"{name}.safetensors"
    digest = save_checkpoint(adapter, path, header)
    log(f"{done}, wrote {path} ({path.stat().st_size} bytes, sha256 {digest})")
    return path


def fit_mae(x: torch.Tensor, seed: int, recipe: MAETrainConfig = DEMO_RECIPE, log=_log) -> tuple[Adapter, dict]:
    """The demo MAE (DEMO_MAE) trained by ``recipe`` on ``x`` (N, 1, 28, 28) uint8, pixel statistics from
    ``x``; returns it and the header's ``training`` section. benchmarks/reference_models.py trains its
    base and retrained models with it."""
    mean, std = _pixel_stats(x)
    config = {**DEMO_MAE, "pixel_mean": [round(mean, 6)], "pixel_std": [round(std, 6)]}
    adapter = create_adapter("mae", config, seed=seed)
    recipe = MAETrainConfig(**{**recipe.to_dict(), "seed": seed})
    n_params = sum(p.numel() for p in adapter.model.parameters())
    log(f"MAE: {n_params} parameters, pixel mean {mean:.4f} std {std:.4f}, {recipe}")
    result = train_mae(adapter, x, recipe, on_epoch=lambda e, v: log(f"  epoch {e}/{recipe.epochs} loss {v:.4f}"))
    return adapter, {**recipe.to_dict(), "steps": result.steps, "seconds": round(result.seconds, 1),
                     "epoch_losses": [round(v, 5) for v in result.losses]}  # fmt: skip


def fit_diffusion(x: torch.Tensor, seed: int, recipe: DiffusionTrainConfig = DEMO_DIFFUSION_RECIPE,
                  log=_log) -> tuple[Adapter, dict]:
    """The demo diffusion inpainter (DEMO_DIFFUSION) trained by ``recipe`` on ``x`` (N, 1, 28, 28) uint8, as
    :func:`fit_mae`."""
    mean, std = _pixel_stats(x)
    config = {**DEMO_DIFFUSION, "pixel_mean": [round(mean, 6)], "pixel_std": [round(std, 6)]}
    adapter = create_adapter("diffusion", config, seed=seed)
    recipe = DiffusionTrainConfig(**{**recipe.to_dict(), "seed": seed})
    n_params = sum(p.numel() for p in adapter.model.parameters())
    log(f"diffusion: {n_params} parameters, {recipe}")
    result = train_diffusion(adapter, x, recipe, on_log=lambda s, v: log(f"  step {s}/{recipe.steps} loss {v:.4f}"),
                             log_every=50)
    return adapter, {**recipe.to_dict(), "seconds": round(result.seconds, 1),
                     "losses_per_50_steps": [round(v, 5) for v in result.losses]}  # fmt: skip


def train_demo_mae(out_dir: Path, seed: int, source: Path = DEFAULT_SOURCE, log=_log,
                   recipe: MAETrainConfig = DEMO_RECIPE) -> Path:
    """Pre-train the demo MAE on the Fashion-MNIST training split; returns the checkpoint path."""
    adapter, training = fit_mae(_training_images(source), seed, recipe, log)
    return _save_demo(adapter, out_dir, "mae", training, DEMO_UNLEARN, log, f"MAE: {training['seconds']:.0f} s")


def train_demo_diffusion(out_dir: Path, seed: int, source: Path = DEFAULT_SOURCE, log=_log,
                         recipe: DiffusionTrainConfig = DEMO_DIFFUSION_RECIPE) -> Path:
    """Train the demo diffusion inpainter on the Fashion-MNIST training split; returns the checkpoint path."""
    adapter, training = fit_diffusion(_training_images(source), seed, recipe, log)
    return _save_demo(adapter, out_dir, "diffusion", training, DEMO_DIFFUSION_UNLEARN, log,
                      f"diffusion: {training['seconds']:.0f} s")


DEMO_GAN = {"image_size": 28, "in_chans": 1, "latent_dim": 32, "g_width": 16, "d_width": 16}
DEMO_GAN_RECIPE = GANTrainConfig(steps=1500, batch_size=64, lr=2e-4, beta1=0.5)


def train_demo_gan(out_dir: Path, seed: int, source: Path = DEFAULT_SOURCE, log=_log,
                   recipe: GANTrainConfig = DEMO_GAN_RECIPE) -> Path:
    """Train the demo GAN on the Fashion-MNIST training split; returns the checkpoint path.

    The header records wall-clock and CPU seconds: on a loaded machine the wall time overstates
    what an idle one needs, CPU time / threads is the idle estimate.
    """
    x = _training_images(source)
    adapter = create_adapter("gan", DEMO_GAN, seed=seed)
    recipe = GANTrainConfig(**{**recipe.to_dict(), "seed": seed})
    log(f"GAN: {sum(p.numel() for p in adapter.model.parameters())} parameters, {recipe}")
    cpu = time.process_time()
    result = train_gan(adapter, x, recipe, on_log=lambda s, e: log(f"  step {s}/{recipe.steps} d {e['d']:.3f} g {e['g']:.3f}"))
    cpu = time.process_time() - cpu
    training = {**recipe.to_dict(), "seconds": round(result.seconds, 1), "cpu_seconds": round(cpu, 1),
                "losses": [{k: round(v, 4) for k, v in e.items()} for e in result.losses]}  # fmt: skip
    return _save_demo(adapter, out_dir, "gan", training, None, log,
                      f"GAN: {result.seconds:.0f} s wall, {cpu:.0f} s CPU")


def train_demo_classifier(out_dir: Path, seed: int, source: Path = DEFAULT_SOURCE) -> Path:
    """The independent evaluation classifier (written by worker.unlearn.train_classifier)."""
    from worker.unlearn.train_classifier import train_classifier

    return train_classifier(out_dir, seed, source=source)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker.train_demo", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=("mae", "classifier", "diffusion", "gan"), default=None,
                        help="train just one model (default: mae and classifier; diffusion and gan only when asked for)")
    parser.add_argument("--family", choices=("mae", "diffusion", "gan"), default=None, help="same as --only FAMILY")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (part of reproducibility)")
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="Fashion-MNIST .gz directory")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    args.only = args.only or args.family
    if args.only == "diffusion":
        train_demo_diffusion(args.out, args.seed, args.source)
    if args.only in (None, "mae"):
        train_demo_mae(args.out, args.seed, args.source)
    if args.only == "gan":
        train_demo_gan(args.out, args.seed, args.source)
    if args.only in (None, "classifier"):
        print(f"classifier: wrote {train_demo_classifier(args.out, args.seed, args.source)}")
    print(f"done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
