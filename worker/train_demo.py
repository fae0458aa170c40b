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

import torch

from worker.fashion_mnist import DEFAULT_SOURCE, read_idx_split
from worker.unlearn import EncoderL2Config, create_adapter, save_checkpoint
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
DEMO_DIFFUSION_UNLEARN = EncoderL2Config(lr=1e-3, alpha=0.25, steps=200, batch_size=32)


def _log(message: str) -> None:
    print(message, flush=True)


def train_demo_mae(out_dir: Path, seed: int, source: Path = DEFAULT_SOURCE, log=_log) -> Path:
    """Pre-train the demo MAE on the Fashion-MNIST training split; returns the checkpoint path."""
    images, _ = read_idx_split(source, "train")  # (60000, 28, 28) uint8
    x = torch.from_numpy(images.copy()).unsqueeze(1)  # (N, 1, 28, 28) uint8
    pixels = x.double() / 255.0
    mean, std = pixels.mean().item(), pixels.std().item()  # one channel: statistics over all pixels
    config = {**DEMO_MAE, "pixel_mean": [round(mean, 6)], "pixel_std": [round(std, 6)]}
    adapter = create_adapter("mae", config, seed=seed)
    recipe = MAETrainConfig(**{**DEMO_RECIPE.to_dict(), "seed": seed})
    n_params = sum(p.numel() for p in adapter.model.parameters())
    log(f"MAE: {n_params} parameters, pixel mean {mean:.4f} std {std:.4f}, {recipe}")
    result = train_mae(adapter, x, recipe, on_epoch=lambda e, v: log(f"  epoch {e}/{recipe.epochs} loss {v:.4f}"))
    header = {
        "name": "fashion-mnist-mae-demo",
        "dataset": "fashion-mnist train split (60000 images, dataset-fashion-mnist)",
        "training": {
            **recipe.to_dict(),
            "steps": result.steps,
            "seconds": round(result.seconds, 1),
            "epoch_losses": [round(v, 5) for v in result.losses],
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "machine": platform.machine(),
        },
        "unlearn_defaults": DEMO_UNLEARN.to_dict(),
    }
    path = out_dir / "mae.safetensors"
    digest = save_checkpoint(adapter, path, header)
    log(f"MAE: {result.seconds:.0f} s, wrote {path} ({path.stat().st_size} bytes, sha256 {digest})")
    return path


def train_demo_diffusion(out_dir: Path, seed: int, source: Path = DEFAULT_SOURCE, log=_log) -> Path:
    """Train the demo diffusion inpainter on the Fashion-MNIST training split; returns the checkpoint path."""
    images, _ = read_idx_split(source, "train")  # (60000, 28, 28) uint8
    x = torch.from_numpy(images.copy()).unsqueeze(1)  # (N, 1, 28, 28) uint8
    pixels = x.double() / 255.0
    mean, std = pixels.mean().item(), pixels.std().item()
    config = {**DEMO_DIFFUSION, "pixel_mean": [round(mean, 6)], "pixel_std": [round(std, 6)]}
    adapter = create_adapter("diffusion", config, seed=seed)
    recipe = DiffusionTrainConfig(**{**DEMO_DIFFUSION_RECIPE.to_dict(), "seed": seed})
    n_params = sum(p.numel() for p in adapter.model.parameters())
    log(f"diffusion: {n_params} parameters, {recipe}")
    result = train_diffusion(adapter, x, recipe, on_log=lambda s, v: log(f"  step {s}/{recipe.steps} loss {v:.4f}"),
                             log_every=50)
    header = {
        "name": "fashion-mnist-diffusion-demo",
        "dataset": "fashion-mnist train split (60000 images, dataset-fashion-mnist)",
        "training": {
            **recipe.to_dict(),
            "seconds": round(result.seconds, 1),
            "losses_per_50_steps": [round(v, 5) for v in result.losses],
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "machine": platform.machine(),
        },
        "unlearn_defaults": DEMO_DIFFUSION_UNLEARN.to_dict(),
    }
    path = out_dir / "diffusion.safetensors"
    digest = save_checkpoint(adapter, path, header)
    log(f"diffusion: {result.seconds:.0f} s, wrote {path} ({path.stat().st_size} bytes, sha256 {digest})")


DEMO_GAN = {"image_size": 28, "in_chans": 1, "latent_dim": 32, "g_width": 16, "d_width": 16}
DEMO_GAN_RECIPE = GANTrainConfig(steps=1500, batch_size=64, lr=2e-4, beta1=0.5)


def train_demo_gan(out_dir: Path, seed: int, source: Path = DEFAULT_SOURCE, log=_log,
                   recipe: GANTrainConfig = DEMO_GAN_RECIPE) -> Path:
    """Train the demo GAN on the Fashion-MNIST training split; returns the checkpoint path.

    The header records wall-clock and CPU seconds: on a loaded machine the wall time overstates
    what an idle one needs, CPU time / threads is the idle estimate.
    """
    images, _ = read_idx_split(source, "train")
    x = torch.from_numpy(images.copy()).unsqueeze(1)  # (N, 1, 28, 28) uint8
    adapter = create_adapter("gan", DEMO_GAN, seed=seed)
    recipe = GANTrainConfig(**{**recipe.to_dict(), "seed": seed})
    log(f"GAN: {sum(p.numel() for p in adapter.model.parameters())} parameters, {recipe}")
    cpu = time.process_time()
    result = train_gan(adapter, x, recipe, on_log=lambda s, e: log(f"  step {s}/{recipe.steps} d {e['d']:.3f} g {e['g']:.3f}"))
    cpu = time.process_time() - cpu
    header = {
        "name": "fashion-mnist-gan-demo",
        "dataset": "fashion-mnist train split (60000 images, dataset-fashion-mnist)",
        "training": {**recipe.to_dict(), "seconds": round(result.seconds, 1), "cpu_seconds": round(cpu, 1),
                     "losses": [{k: round(v, 4) for k, v in e.items()} for e in result.losses],
                     "threads": torch.get_num_threads(), "torch": torch.__version__, "machine": platform.machine()},
    }  # no unlearn_defaults: the family's recommendation applies (worker/unlearn/config.py FAMILY_RECOMMENDED)
    path = out_dir / "gan.safetensors"
    digest = save_checkpoint(adapter, path, header)
    log(f"GAN: {result.seconds:.0f} s wall, {cpu:.0f} s CPU, wrote {path} ({path.stat().st_size} bytes, sha256 {digest})")
    return path


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
