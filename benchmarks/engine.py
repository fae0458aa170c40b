"""Time per unlearning step, per model family: the reference loop, ours (cached and live teacher), the floor.

    python -m benchmarks.engine [--model mae|diffusion|vit-b16] [--batch N] [--steps 15] [--rounds 3]
                                [--device cpu] [--threads N] [--fashion-mnist DIR] [--images N] [--dry-run]

Models: ``mae`` (alias ``demo``): the committed demo MAE; ``diffusion``: the committed demo
Palette-style inpainter (worker/unlearn/families/diffusion/); ``vit-b16``: a randomly initialised
MAE of ViT-B/16 size at 224 px. Same data for every variant (forget: Fashion-MNIST training images
of class 1; retain side: the test split minus that class, the proxy set; synthetic images where
Fashion-MNIST is absent and always for ``vit-b16``), same batch size (the model's
``unlearn_defaults``) and masks. Everything goes through the Adapter contract (``encode(x, mask)``,
``random_mask``, ``clone``, ``freeze_non_encoder``, ``encoder_parameters``), so the timing code is
the same for every family; for diffusion the timestep and noise of ``T`` follow from the mask row
(``mask_row_seeds``), so teacher and student see the same ``T`` as they do in the worker.

(a) reference: the reference loop's compute per step, reimplemented: teacher in fp32 on the real
    input of *every* row and on a noise input of every row (noise with the batch's mean and std),
    each term then multiplied by a row mask (half the teacher work discarded), explicit softmax
    attention in teacher and student. For the MAE that is the authors' MAE loop with timm's
    ``Attention``; for diffusion it is the authors' Palette fork loop (the same two teacher passes
    on every row, in fp32, and its UNet's explicit attention: diffusers' ``AttnProcessor``);
(b) ours: ``run_unlearning`` with cached teacher targets (lookups, no teacher pass; fused
    attention; bf16 autocast on CUDA). The cache covers the largest prefix of the proxy set that
    stays under the worker's cache limit (``MAX_CACHE_BYTES``, worker/teacher_targets.py): all of
    it for the MAE, a subset for diffusion, whose latents (every skip connection) are large;
(b') ours_live: ``run_unlearning`` without targets: the teacher runs every step, on only the rows
    whose targets the loss uses (retain rows on real input, forget rows on noise). This is the
    worker's path when the cache would be over the limit, i.e. the diffusion demo's path;
(c) floor: the student's forward, backward and optimizer step on the same batch and masks, loss
    against a constant target: what any training step costs. ``floor_fwd_bwd`` also reports it
    without the optimizer step.

The variants are interleaved in ``rounds`` so machine load hits them alike; each number is the
median step time. Writes benchmarks/results/engine[-<model>][-<device>].json (no model part for
``mae``, so engine.json stays the demo MAE's file).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import types
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from benchmarks.common import DEMO, FASHION_MNIST, device_info, median, write_result
from worker.fashion_mnist import read_idx_split
from worker.teacher_targets import MAX_CACHE_BYTES
from worker.unlearn import Adapter, EncoderL2Config, create_adapter, load_checkpoint, run_unlearning
from worker.unlearn.families.mae.vit import Attention
from worker.unlearn.runtime import configure_cpu_threads
from worker.unlearn.teacher_cache import BankSpec, CachedTargets, CacheKey, build_cache

FORGET_CLASS = 1
# ViT-B/16 (86 M encoder parameters) with the official MAE decoder, at 224 px: the size of a real generator.
VIT_B16 = {"image_size": 224, "patch_size": 16, "in_chans": 3, "embed_dim": 768, "depth": 12, "num_heads": 12,
           "decoder_embed_dim": 512, "decoder_depth": 8, "decoder_num_heads": 16}
# The committed demo checkpoints (trained on Fashion-MNIST); every other model runs on synthetic images.
DEMO_CHECKPOINTS = {"mae": DEMO / "mae.safetensors", "diffusion": DEMO / "diffusion.safetensors"}
MODELS = (*DEMO_CHECKPOINTS, "vit-b16")
ALIASES = {"demo": "mae"}  # the name of the MAE demo before there were other families


def load_model(name: str) -> tuple[Adapter, dict]:
    """The adapter and its checkpoint header (name, unlearn_defaults)."""
    if name in DEMO_CHECKPOINTS:
        return load_checkpoint(DEMO_CHECKPOINTS[name])
    return create_adapter("mae", VIT_B16, seed=0), {"name": "vit-b16-mae (random init)", "unlearn_defaults": {}}


def synthetic_data(adapter: Adapter, images: int) -> tuple[Tensor, Tensor]:
    """forget (images/2, C, H, W) and proxy (images, C, H, W): smooth random images in [0, 1] at the model's size."""
    cfg = adapter.config
    gen = torch.Generator().manual_seed(0)

    def draw(n: int) -> Tensor:
        coarse = torch.rand(n, cfg.in_chans, cfg.image_size // 4, cfg.image_size // 4, generator=gen)
        return F.interpolate(coarse, size=cfg.image_size, mode="bilinear", align_corners=False)  # (n, C, H, W)

    return draw(max(images // 2, 1)), draw(images)


def load_data(source: Path = FASHION_MNIST) -> tuple[Tensor, Tensor]:
    """forget (6000, 1, 28, 28): training images of FORGET_CLASS; proxy (9000, 1, 28, 28): test split minus it."""
    def split(name: str) -> tuple[Tensor, Tensor]:
        images, labels = read_idx_split(source, name)
        return torch.from_numpy(images.copy()).unsqueeze(1).float() / 255.0, torch.from_numpy(labels.astype("int64"))

    (train_x, train_y), (test_x, test_y) = split("train"), split("test")
    return train_x[train_y == FORGET_CLASS], test_x[test_y != FORGET_CLASS]


def explicit_attention(self: Attention, x: Tensor) -> Tensor:
    """timm's (reference-era) attention: softmax(q k^T / sqrt(d)) v, materialised. x: (B, L, D)."""
    b, n, d = x.shape
    h = self.num_heads
    q, k, v = self.qkv(x).reshape(b, n, 3, h, d // h).permute(2, 0, 3, 1, 4).unbind(0)  # 3 x (B, h, L, D/h)
    attn = ((q @ k.transpose(-2, -1)) * (d // h) ** -0.5).softmax(dim=-1)  # (B, h, L, L)
    return self.proj((attn @ v).transpose(1, 2).reshape(b, n, d))  # (B, L, D)


def with_explicit_attention(adapter: Adapter) -> Adapter:
    """Materialised softmax attention wherever the model has attention, as the reference code had it.

    The MAE's ``Attention`` gets timm's forward; a diffusers attention module (the diffusion UNet's)
    gets diffusers' ``AttnProcessor`` (baddbmm + softmax), as the Palette fork's UNet computes it.
    """
    for module in adapter.model.modules():
        if isinstance(module, Attention):
            module.forward = types.MethodType(explicit_attention, module)
        elif hasattr(module, "set_processor"):
            from diffusers.models.attention_processor import AttnProcessor

            module.set_processor(AttnProcessor())
    return adapter


class Batches:
    """The same sequence of (retain rows, forget rows) for every variant: B/2 + B/2 images per step."""

    def __init__(self, forget: Tensor, proxy: Tensor, half: int, seed: int = 0) -> None:
        self.forget, self.proxy, self.half = forget, proxy, half
        self.gen = torch.Generator().manual_seed(seed)

    def next(self, device: torch.device) -> tuple[Tensor, Tensor]:
        r = torch.randint(len(self.proxy), (self.half,), generator=self.gen)
        f = torch.randint(len(self.forget), (self.half,), generator=self.gen)
        return self.proxy[r].to(device), self.forget[f].to(device)  # 2 x (B/2, C, H, W)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def reference_loss(z: Tensor, t_real: Tensor, t_noise: Tensor, is_forget: Tensor, alpha: float) -> Tensor:
    """The reference's loss: each term an MSE over *all* rows, the other set's rows multiplied by 0.

    z, t_real, t_noise: (B, ...) latents of any per-row shape ((B, T, D) for the MAE, (B, F) for
    diffusion); is_forget: (B,) 1.0 on forget rows.
    """
    w = is_forget.view(-1, *(1,) * (z.ndim - 1))  # (B, 1, ...): one weight per row, broadcast over the latent only
    return F.mse_loss(z * (1 - w), t_real * (1 - w)) + alpha * F.mse_loss(z * w, t_noise * w)


def reference_steps(base: Adapter, batches: Batches, config: EncoderL2Config, steps: int) -> list[float]:
    """(a) Step times of the reference loop (teacher fp32 on real and noise inputs of every row)."""
    device = base.device
    teacher = with_explicit_attention(base.clone())
    teacher.model.eval().requires_grad_(False)
    student = with_explicit_attention(base.clone())
    student.freeze_non_encoder()
    student.model.train()
    params = student.encoder_parameters()
    optimizer = torch.optim.Adam(params, lr=config.lr)
    gen = torch.Generator().manual_seed(1)
    times = []
    for _ in range(steps + 1):
        x_r, x_f = batches.next(device)
        sync(device)
        started = time.perf_counter()
        x = torch.cat([x_r, x_f])  # (B, C, H, W)
        is_forget = torch.cat([torch.zeros(len(x_r)), torch.ones(len(x_f))]).to(device)  # (B,)
        mask = student.random_mask(len(x), gen)  # (B, L)
        noise = (torch.randn(x.shape, generator=gen).to(device) * x.std() + x.mean()).clamp(0, 1)  # batch statistics
        with torch.no_grad():
            t_real = teacher.encode(x, mask)  # (B, T, D): every row, the forget rows' then discarded
            t_noise = teacher.encode(noise, mask)  # (B, T, D): every row, the retain rows' then discarded
        z = student.encode(x, mask)  # (B, T, D)
        loss = reference_loss(z, t_real, t_noise, is_forget, config.alpha)
        if not math.isfinite(loss.item()):
            raise FloatingPointError("non-finite reference loss")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        sync(device)
        times.append(time.perf_counter() - started)
    return times[1:]


def ours_steps(base: Adapter, forget: Tensor, retain: Tensor, targets: CachedTargets | None, config: EncoderL2Config,
               steps: int) -> list[float]:  # fmt: skip
    """(b) Step times of ``run_unlearning`` (intervals between progress callbacks).

    ``targets``: cached targets over exactly the rows of ``retain`` (ours), or None: the teacher runs
    live on the rows the loss uses (ours_live).
    """
    stamps: list[float] = []

    def on_step(_info) -> None:
        sync(base.device)
        stamps.append(time.perf_counter())

    run_unlearning(base, forget, retain, config.replace(steps=steps + 1), on_step=on_step, targets=targets)
    return [b - a for a, b in zip(stamps, stamps[1:])]


def floor_steps(base: Adapter, batches: Batches, config: EncoderL2Config, steps: int, optimizer_step: bool) -> list[float]:
    """(c) Bare student forward + backward (+ optimizer step) on the same batch, masks drawn outside the timer."""
    device = base.device
    student = base.clone()
    student.freeze_non_encoder()
    student.model.train()
    optimizer = torch.optim.Adam(student.encoder_parameters(), lr=config.lr)
    gen = torch.Generator().manual_seed(1)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    target = None
    times = []
    for _ in range(steps + 1):
        x_r, x_f = batches.next(device)
        x = torch.cat([x_r, x_f])  # (B, C, H, W)
        mask = student.random_mask(len(x), gen)  # (B, L)
        sync(device)
        started = time.perf_counter()
        with autocast:
            z = student.encode(x, mask)  # (B, T, D)
            target = torch.zeros_like(z, dtype=torch.float32) if target is None else target
            loss = F.mse_loss(z, target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if optimizer_step:
            optimizer.step()
        float(loss.detach())
        sync(device)
        times.append(time.perf_counter() - started)
    return times[1:]


def cached_subset(base: Adapter, proxy: Tensor, spec: BankSpec, limit: int = MAX_CACHE_BYTES) -> Tensor:
    """(n, C, H, W): the first ``n`` proxy images, the most whose teacher cache stays within ``limit`` bytes.

    The worker caches the whole proxy set or nothing (worker/teacher_targets.py); a subset lets ours
    with cached targets be timed for a family whose full cache is over the limit. The step time does
    not depend on how many rows the cache holds (a lookup per row).
    """
    per_row = CachedTargets.row_nbytes(base, spec)  # bytes of one target + its mask
    n = min(len(proxy), (limit // per_row - spec.noise_size) // spec.draws_per_image)
    if n < 1:
        raise ValueError(f"the noise bank alone ({spec.noise_size} x {per_row} bytes) is over {limit} bytes")
    return proxy[:n]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.engine", description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=(*MODELS, *ALIASES), default="mae")
    parser.add_argument("--batch", type=int, default=None, help="rows per step (default: the model's unlearn_defaults)")
    parser.add_argument("--steps", type=int, default=15, help="timed steps per variant and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: on a shared CPU more threads spin-wait; 0 = CPUs available)")
    parser.add_argument("--fashion-mnist", type=Path, default=FASHION_MNIST, help="folder of the Fashion-MNIST .gz files")
    parser.add_argument("--images", type=int, default=2048, help="synthetic proxy images (forget: half as many)")
    parser.add_argument("--dry-run", action="store_true", help="check the arguments and say what would run; run nothing")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.rounds < 1 or args.images < 2 or (args.batch is not None and args.batch < 2):
        parser.error("--steps and --rounds must be at least 1, --images and --batch at least 2")
    torch.device(args.device)  # a malformed device name fails here, before anything runs
    args.model = ALIASES.get(args.model, args.model)
    return args


def result_name(model: str, device: torch.device) -> str:
    """engine[-<model>][-<device>]: engine.json is the demo MAE's on CPU, as before there were families."""
    return "engine" + ("" if model == "mae" else f"-{model}") + ("" if device.type == "cpu" else f"-{device.type}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    synthetic = args.model not in DEMO_CHECKPOINTS or not (args.fashion_mnist / "train-images-idx3-ubyte.gz").is_file()
    data = f"synthetic ({args.images} proxy images)" if synthetic else f"Fashion-MNIST from {args.fashion_mnist}"
    if args.dry_run:
        print(f"would time model {args.model} on {args.device}, data: {data}, {args.rounds} x {args.steps} steps")
        return 0
    threads = configure_cpu_threads(args.threads or None)
    device = torch.device(args.device)

    base, header = load_model(args.model)
    base = base.to(device)
    config = EncoderL2Config.from_header(header["unlearn_defaults"])
    config = config.replace(batch_size=args.batch) if args.batch else config
    forget, proxy = synthetic_data(base, args.images) if synthetic else load_data(args.fashion_mnist)
    spec = BankSpec()
    subset = cached_subset(base, proxy, spec)
    started = time.perf_counter()
    key = CacheKey.for_bank("benchmark", "proxy", spec, base.family)
    cache = build_cache(base, subset, [str(i) for i in range(len(subset))], spec, key)
    build_s = time.perf_counter() - started
    targets = cache.to(device)

    half = config.batch_size // 2
    ref_batches, floor_batches, bare_batches = (Batches(forget, proxy, half) for _ in range(3))
    times: dict[str, list[float]] = {"reference": [], "ours": [], "ours_live": [], "floor": [], "floor_fwd_bwd": []}
    for r in range(args.rounds):
        times["reference"] += reference_steps(base, ref_batches, config, args.steps)
        times["ours"] += ours_steps(base, forget, subset, targets, config.replace(seed=r), args.steps)
        times["ours_live"] += ours_steps(base, forget, proxy, None, config.replace(seed=r), args.steps)
        times["floor"] += floor_steps(base, floor_batches, config, args.steps, optimizer_step=True)
        times["floor_fwd_bwd"] += floor_steps(base, bare_batches, config, args.steps, optimizer_step=False)
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{k} {median(v) * 1e3:.1f} ms" for k, v in times.items()))

    per_step = {k: median(v) for k, v in times.items()}
    full_cache_bytes = CachedTargets.estimate_nbytes(base, len(proxy), spec)
    result = {
        "device": device_info(str(device)),
        "threads": threads,
        "family": base.family,
        "model": {"name": header.get("name"), "params": sum(p.numel() for p in base.model.parameters()),
                  "config": base.config.to_dict()},
        "data": data,
        "image_size": base.config.image_size,
        "batch_size": config.batch_size,
        "steps_timed_per_variant": args.steps * args.rounds,
        "variants": {k: {"step_ms": round(v * 1e3, 3), "images_per_s": round(config.batch_size / v, 1)}
                     for k, v in per_step.items()},
        "ratios": {
            "reference_over_ours": round(per_step["reference"] / per_step["ours"], 3),
            "ours_over_floor": round(per_step["ours"] / per_step["floor"], 3),
            "ours_over_floor_fwd_bwd": round(per_step["ours"] / per_step["floor_fwd_bwd"], 3),
            "reference_over_floor": round(per_step["reference"] / per_step["floor"], 3),
            "reference_over_ours_live": round(per_step["reference"] / per_step["ours_live"], 3),
            "ours_live_over_floor": round(per_step["ours_live"] / per_step["floor"], 3),
        },
        "teacher_cache": {"build_s": round(build_s, 2), "bytes": cache.nbytes, "images": len(cache),
                          "draws_per_image": cache.draws_per_image, "noise_size": cache.noise_size,
                          "dtype": spec.dtype, "proxy_images": len(proxy), "max_bytes": MAX_CACHE_BYTES,
                          "full_proxy_bytes": full_cache_bytes, "worker_caches": full_cache_bytes <= MAX_CACHE_BYTES},
        "targets": {"ours_over_floor_max": 1.15, "reference_over_ours_min": 3.0 if device.type == "cuda" else 2.0},
    }
    path = write_result(result_name(args.model, device), result)
    print(f"reference {per_step['reference'] * 1e3:.1f} ms, ours {per_step['ours'] * 1e3:.1f} ms, ours_live "
          f"{per_step['ours_live'] * 1e3:.1f} ms, floor {per_step['floor'] * 1e3:.1f} ms per step of "
          f"{config.batch_size} on {device}: reference/ours {result['ratios']['reference_over_ours']}, ours/floor "
          f"{result['ratios']['ours_over_floor']}, reference/ours_live {result['ratios']['reference_over_ours_live']}, "
          f"ours_live/floor {result['ratios']['ours_live_over_floor']}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
