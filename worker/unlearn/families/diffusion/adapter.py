"""Diffusion family: a Palette-style conditional inpainter on a diffusers ``UNet2DModel``.

The UNet sees three stacks of channels, ``[noisy target, masked image, mask]`` (``2C + 1`` in, ``C``
out), and predicts the noise (Saharia et al. 2022, "Palette"; the authors' unlearning fork
jpmorganchase/i2i_Palette-Image-to-Image-Diffusion-Models, branch ``i2i``). Pixels are mapped from
[0, 1] to [-1, 1]. As in Palette the noisy target is noisy only where the mask hides pixels (the
known pixels are given clean) and the loss is the noise error on the hidden pixels.

The model *is* a ``UNet2DModel``: its state-dict keys and config are diffusers', so a user's
``save_pretrained`` folder loads strictly (pretrained.py converts one into an Oblivio checkpoint).

Masking transform ``T`` = a token mask (patches of ``patch_size``: random at ``mask_ratio``, or the
centre box, exactly the MAE's tasks, from the shared ``PatchMasks``) *plus* a timestep and a noise draw. Those are derived from the
mask row (``mask_row_seeds``, adapters/base.py), so the student, the teacher and the teacher cache,
which all receive the same masks from the run's seeded generator, see the same ``T``.

Encoder ``E`` = the time embedding, ``conv_in``, the down path and the middle block. The latent
``E(T(x))`` is every skip connection of the down path plus the middle block's output, as the fork
compares them (``return_feat=True``: all input-block outputs and the middle output, one MSE per map,
summed). The decoder (up path) reads all of them, so leaving the skips out would let the unlearned
encoder change what the decoder sees unchecked. Each map is flattened and scaled by
``sqrt(total / (K * numel))`` so the MSE over the concatenation is the mean of the K per-map MSEs
(the fork's sum divided by K). The timestep is uniform over ``[1, T)`` as in the fork.

``generate`` = deterministic DDIM (eta 0, ``sample_steps`` steps, "trailing" spacing) from a start
noise seeded by ``sample_seed`` and the mask row; after every step the known pixels are reset to
the clean image, as Palette's ``restoration`` does. ``reconstruct`` (what the
full-model baselines train on) is the one-step estimate of the clean image at the row's timestep.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ...adapters.base import Adapter, mask_row_seeds
from ...adapters.geometry import PatchGrid
from ...adapters.masks import PatchMasks
from ...adapters.registry import register_family
from ...config import dataclass_from_dict
from . import unet as U

ENCODER_SALT = 0x0B11  # salts of mask_row_seeds: encoder/reconstruct draws, sampling start noise, membership
SAMPLE_SALT = 0x5A11
MIA_SALT = 0x3141
SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")
UNET_OWN_KEYS = ("sample_size", "in_channels", "out_channels")  # set from the image geometry


def demo_unet(channels: tuple[int, ...] = (16, 32, 64), groups: int = 8) -> dict[str, Any]:
    """A small UNet2DModel config (attention at the lowest resolution only)."""
    n = len(channels)
    return {
        "block_out_channels": list(channels), "layers_per_block": 1, "norm_num_groups": groups,
        "down_block_types": ["DownBlock2D"] * (n - 1) + ["AttnDownBlock2D"],
        "up_block_types": ["AttnUpBlock2D"] + ["UpBlock2D"] * (n - 1),
        "attention_head_dim": channels[-1] // 2,
    }  # fmt: skip


@dataclass(frozen=True)
class DiffusionConfig(PatchGrid):
    """Architecture and diffusion process of a Palette-style inpainter.

    unet: keyword arguments of ``diffusers.UNet2DModel`` (a ``config.json`` without its ``_`` keys);
    ``sample_size``, ``in_channels`` (= 2 * in_chans + 1) and ``out_channels`` (= in_chans) are set
    from the image geometry (a given value must agree). patch_size, mask_ratio: the token masks.
    num_train_timesteps, beta_*: the DDPM noise schedule (epsilon prediction). sample_steps,
    sample_seed: DDIM sampling of ``generate``. mia_timesteps: the fixed timesteps of the
    membership score. pixel_mean, pixel_std: per channel, of the training images in [0, 1] (the
    noise images of encoder-L2).
    """

    image_size: int = 28
    in_chans: int = 1
    unet: dict[str, Any] = field(default_factory=demo_unet)
    patch_size: int = 4
    mask_ratio: float = 0.75
    num_train_timesteps: int = 1000
    beta_schedule: str = "linear"
    beta_start: float = 1e-4
    beta_end: float = 0.02
    sample_steps: int = 10
    sample_seed: int = 0
    mia_timesteps: tuple[int, ...] = (100, 300, 500)
    pixel_mean: tuple[float, ...] = (0.5,)
    pixel_std: tuple[float, ...] = (0.5,)

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.unet, dict):
            problems.append("unet must be a JSON object (the UNet2DModel config)")
        else:
            for key, value in self.unet_config().items():
                if key in UNET_OWN_KEYS and self.unet.get(key, value) != value:
                    problems.append(f"unet.{key} is {self.unet[key]!r}, the image geometry needs {value!r}")
        problems += self.grid_problems()
        if self.in_chans < 1:
            problems.append(f"in_chans must be >= 1, got {self.in_chans}")
        if self.num_train_timesteps < 2:
            problems.append(f"num_train_timesteps must be >= 2, got {self.num_train_timesteps}")
        if self.beta_schedule not in SCHEDULES:
            problems.append(f"beta_schedule must be one of {list(SCHEDULES)}, got {self.beta_schedule!r}")
        if not 0 < self.beta_start < self.beta_end < 1:
            problems.append(f"need 0 < beta_start < beta_end < 1, got {self.beta_start}, {self.beta_end}")
        if not 1 <= self.sample_steps <= self.num_train_timesteps:
            problems.append(f"sample_steps must be in [1, {self.num_train_timesteps}], got {self.sample_steps}")
        if not self.mia_timesteps or not all(0 <= t < self.num_train_timesteps for t in self.mia_timesteps):
            problems.append(f"mia_timesteps must be non-empty, each in [0, {self.num_train_timesteps})")
        problems += self.pixel_stats_problems()
        if problems:
            raise ValueError("invalid DiffusionConfig: " + "; ".join(problems))

    def unet_config(self) -> dict[str, Any]:
        """The UNet2DModel keyword arguments, geometry included."""
        own = {"sample_size": self.image_size, "in_channels": 2 * self.in_chans + 1, "out_channels": self.in_chans}
        return {**(self.unet if isinstance(self.unet, dict) else {}), **own}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DiffusionConfig:
        d = dict(d)
        if isinstance(d.get("unet"), dict):
            d["unet"] = dict(d["unet"])
        return dataclass_from_dict(cls, d)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {k: list(v) if isinstance(v, tuple) else (dict(v) if isinstance(v, dict) else v) for k, v in out.items()}


@register_family("diffusion")
class DiffusionAdapter(PatchMasks, Adapter):
    """Adapter over a ``diffusers.UNet2DModel`` with Palette's conditioning; ``T`` = mask + timestep + noise."""

    config_class = DiffusionConfig
    encoder_prefixes = ("time_proj", "time_embedding", "class_embedding", "conv_in", "down_blocks", "mid_block")
    fixed_keys = frozenset()
    # The forgetting checks' MAE defaults (2 dB, 0.05) are out of reach for an inpainter that sees the
    # visible pixels at every denoising step: on the demo model, the model retrained without trouser
    # drops the trousers' hidden-region PSNR by 0.89 dB and their feature cosine by 0.032 (an
    # unchanged model: 0 and 0). Half of that separates the two (README, "Publish gate").
    gate_defaults = {"forget_min_psnr_drop": 0.4, "forget_min_cosine_drop": 0.015}

    def __init__(self, config: DiffusionConfig, *, seed: int = 0) -> None:
        unet = U.build_unet(config.unet_config(), seed)
        super().__init__(config, unet)
        self._train_sched, _ = U.schedulers(config.num_train_timesteps, config.beta_schedule,
                                            config.beta_start, config.beta_end)
        self._alphas = self._train_sched.alphas_cumprod.clone()  # (T,) float32 on CPU

    @classmethod
    def test_config(cls) -> dict[str, Any]:
        return {"image_size": 16, "in_chans": 1, "unet": demo_unet((8, 16), groups=4), "patch_size": 4,
                "num_train_timesteps": 100, "sample_steps": 3, "mia_timesteps": [10, 50],
                "pixel_mean": [0.3], "pixel_std": [0.3]}  # fmt: skip

    # ----- the per-row draws of T ------------------------------------------------------------
    def row_draws(self, mask: Tensor, salt: int, timesteps: tuple[int, int] | None) -> tuple[Tensor, Tensor]:
        """Per row of ``mask``: a timestep (N,) long uniform in ``timesteps`` [lo, hi) and noise (N, C, H, W).

        Seeded by the mask row and ``salt`` only (:func:`mask_row_seeds`); ``timesteps`` None: zeros.
        """
        steps, noise = [], []
        for seed in mask_row_seeds(mask, salt):
            g = torch.Generator().manual_seed(seed)
            noise.append(torch.randn(self.image_shape, generator=g))
            steps.append(int(torch.randint(*timesteps, (1,), generator=g)) if timesteps else 0)
        return torch.tensor(steps, device=self.device), torch.stack(noise).to(self.device)

    def model_input(self, x0: Tensor, hidden: Tensor, y_t: Tensor) -> Tensor:
        """(N, 2C + 1, H, W) = [noisy target (clean where known), masked image (0 where hidden), mask].

        x0, y_t: (N, C, H, W) in [-1, 1] units; hidden: (N, 1, H, W) float, 1 = hidden.
        """
        return torch.cat([hidden * y_t + (1 - hidden) * x0, (1 - hidden) * x0, hidden], dim=1)

    def noised(self, x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
        """q(x_t | x_0): sqrt(a_t) x0 + sqrt(1 - a_t) noise, per row."""
        a = self._alphas.to(x0.device)[t.to(x0.device)].view(-1, 1, 1, 1).to(x0.dtype)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def predict_noise(self, x0: Tensor, hidden: Tensor, y_t: Tensor, t: Tensor) -> Tensor:
        return self.model(self.model_input(x0, hidden, y_t), t, return_dict=False)[0]

    def _prepare(self, imgs: Tensor, mask: Tensor, salt: int, t_range: tuple[int, int]):
        self.check_inputs(imgs, mask)
        t, noise = self.row_draws(mask, salt, t_range)
        x0 = imgs * 2 - 1  # (N, C, H, W) in [-1, 1]
        hidden = self.hidden_pixels(mask).to(x0.dtype)  # (N, 1, H, W)
        return x0, hidden, t, noise.to(x0.dtype)

    # ----- encoder, reconstruct, generate -----------------------------------------------------
    def encode(self, imgs: Tensor, mask: Tensor) -> Tensor:
        """(N, F): the down path's skip connections and the middle block's output, flattened and scaled."""
        x0, hidden, t, noise = self._prepare(imgs, mask, ENCODER_SALT, (1, self.config.num_train_timesteps))
        y_t = self.noised(x0, noise, t)
        feats = U.down_and_middle(self.model, self.model_input(x0, hidden, y_t), t)
        sizes = [f[0].numel() for f in feats]
        total = sum(sizes)
        return torch.cat([f.reshape(f.shape[0], -1) * math.sqrt(total / (len(feats) * s))
                          for f, s in zip(feats, sizes)], dim=1)  # fmt: skip

    def reconstruct(self, imgs: Tensor, mask: Tensor) -> Tensor:
        """(N, C, H, W) in [0, 1] units (not clamped): the one-step estimate of x0 at the row's timestep.

        Hidden pixels: (y_t - sqrt(1 - a_t) eps_hat) / sqrt(a_t); known pixels: the input. Same draws
        as ``encode``. Differentiable (the full-model baselines train on it).
        """
        x0, hidden, t, noise = self._prepare(imgs, mask, ENCODER_SALT, (1, self.config.num_train_timesteps))
        y_t = self.noised(x0, noise, t)
        eps = self.predict_noise(x0, hidden, y_t, t)
        a = self._alphas.to(x0.device)[t].view(-1, 1, 1, 1).to(x0.dtype)
        x0_hat = (y_t - (1 - a).sqrt() * eps) / a.sqrt()
        return (hidden * x0_hat + (1 - hidden) * x0 + 1) / 2

    @torch.no_grad()
    def generate(self, imgs: Tensor, mask: Tensor, steps: int | None = None) -> Tensor:
        """(N, C, H, W) in [0, 1]: DDIM (eta 0) over ``steps`` (default ``config.sample_steps``) steps.

        Start noise seeded by ``sample_seed`` and the mask row: the same for every model and batch split.
        """
        self.check_inputs(imgs, mask)
        _, ddim = U.schedulers(self.config.num_train_timesteps, self.config.beta_schedule,
                               self.config.beta_start, self.config.beta_end)
        ddim.set_timesteps(steps or self.config.sample_steps)
        _, noise = self.row_draws(mask, SAMPLE_SALT + self.config.sample_seed, None)
        x0 = imgs * 2 - 1
        hidden = self.hidden_pixels(mask).to(x0.dtype)
        y = noise.to(x0.dtype)
        for t in ddim.timesteps:
            step = torch.full((len(x0),), int(t), device=x0.device, dtype=torch.long)
            eps = self.predict_noise(x0, hidden, y, step)
            y = ddim.step(eps, int(t), y, eta=0.0).prev_sample
            y = hidden * y + (1 - hidden) * x0
        out = ((y.clamp(-1, 1) + 1) / 2).to(imgs.dtype)
        return torch.where(self.hidden_pixels(mask), out, imgs)

    # ----- membership: the denoising loss at fixed timesteps and noise ------------------------
    @torch.no_grad()
    def membership_error(self, imgs: Tensor, mask: Tensor, generated: Tensor | None = None) -> Tensor:
        """(N,) the noise-prediction error on hidden pixels, mean over ``config.mia_timesteps``.

        Noise seeded by the mask row (salt MIA_SALT), the same for every timestep, base and candidate.
        ``generated`` is ignored: a diffusion model's membership signal is its training loss.
        """
        from .evaluation import denoising_error

        return denoising_error(self, imgs, mask, self.config.mia_timesteps)
