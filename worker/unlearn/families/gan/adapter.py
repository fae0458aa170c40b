"""GAN family: a DCGAN-style generator and its discriminator, unconditional, one checkpoint.

Generator G: z (latent_dim) -> linear to (2w, S/4, S/4) -> BatchNorm, ReLU -> transposed conv to
(w, S/2, S/2) -> BatchNorm, ReLU -> transposed conv to (C, S, S) -> sigmoid (pixels in [0, 1]).
Discriminator D: (C, S, S) -> conv 4x4/2 to w -> LeakyReLU(0.2) -> conv 4x4/2 to 2w -> LeakyReLU
-> linear to one logit. No normalisation in D, so its output for an image never depends on the
rest of the batch (the cascade mixes forget, substitute and generated rows in one batch).

State-dict keys: ``generator.*`` and ``discriminator.*``. Samples are drawn in eval mode
(BatchNorm running statistics), so a fixed latent code always gives the same image.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ...adapters.registry import register_family
from ...adapters.sampler import SamplerAdapter
from ...config import dataclass_from_dict


@dataclass(frozen=True)
class GANConfig:
    """Architecture of a GAN; ``image_size`` must be a multiple of 4."""

    image_size: int = 28
    in_chans: int = 1
    latent_dim: int = 64
    g_width: int = 64
    d_width: int = 64

    def __post_init__(self) -> None:
        problems = []
        for name in ("image_size", "in_chans", "latent_dim", "g_width", "d_width"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                problems.append(f"{name} must be a positive integer, got {value!r}")
        if not problems and (self.image_size % 4 or self.image_size < 8):
            problems.append(f"image_size must be a multiple of 4 and >= 8, got {self.image_size}")
        if not problems and max(self.latent_dim, self.g_width, self.d_width) > 4096:
            problems.append("latent_dim, g_width and d_width must be at most 4096")
        if problems:
            raise ValueError("invalid GANConfig: " + "; ".join(problems))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GANConfig:
        return dataclass_from_dict(cls, d)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Generator(nn.Module):
    def __init__(self, cfg: GANConfig) -> None:
        super().__init__()
        self.side, w = cfg.image_size // 4, cfg.g_width
        self.fc = nn.Linear(cfg.latent_dim, 2 * w * self.side * self.side, bias=False)
        self.bn0 = nn.BatchNorm1d(2 * w * self.side * self.side)
        self.up1 = nn.ConvTranspose2d(2 * w, w, 4, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.up2 = nn.ConvTranspose2d(w, cfg.in_chans, 4, stride=2, padding=1)

    def forward(self, z: Tensor) -> Tensor:
        x = torch.relu(self.bn0(self.fc(z)))  # (N, 2w*s*s)
        x = x.view(len(z), -1, self.side, self.side)  # (N, 2w, S/4, S/4)
        x = torch.relu(self.bn1(self.up1(x)))  # (N, w, S/2, S/2)
        return torch.sigmoid(self.up2(x))  # (N, C, S, S)


class Discriminator(nn.Module):
    def __init__(self, cfg: GANConfig) -> None:
        super().__init__()
        w, side = cfg.d_width, cfg.image_size // 4
        self.conv1 = nn.Conv2d(cfg.in_chans, w, 4, stride=2, padding=1)
        self.conv2 = nn.Conv2d(w, 2 * w, 4, stride=2, padding=1)
        self.fc = nn.Linear(2 * w * side * side, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = nn.functional.leaky_relu(self.conv1(x * 2.0 - 1.0), 0.2)  # [0, 1] -> [-1, 1]
        x = nn.functional.leaky_relu(self.conv2(x), 0.2)
        return self.fc(x.flatten(1)).squeeze(1)  # (N,)


class GAN(nn.Module):
    def __init__(self, cfg: GANConfig) -> None:
        super().__init__()
        self.generator = Generator(cfg)
        self.discriminator = Discriminator(cfg)

    def initialize_weights(self, generator: torch.Generator) -> None:
        """DCGAN initialisation (N(0, 0.02) weights, BatchNorm N(1, 0.02)) from a seeded generator."""
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif ".bn" in name:
                with torch.no_grad():
                    p.copy_(1.0 + 0.02 * torch.randn(p.shape, generator=generator))
            else:
                with torch.no_grad():
                    p.copy_(0.02 * torch.randn(p.shape, generator=generator))


@register_family("gan")
class GANAdapter(SamplerAdapter):
    """DCGAN-style generator + discriminator for small grey (or C-channel) images."""

    config_class = GANConfig
    generator_prefixes = ("generator",)
    encoder_prefixes = ("generator",)
    discriminator_prefixes = ("discriminator",)

    @classmethod
    def test_config(cls) -> dict[str, Any]:
        """A tiny architecture for the tests (tests/unlearn/tiny_models.py)."""
        return {"image_size": 16, "in_chans": 1, "latent_dim": 8, "g_width": 8, "d_width": 8}

    def __init__(self, config: GANConfig, *, seed: int = 0) -> None:
        model = GAN(config)
        if next(model.parameters()).device.type != "meta":
            model.initialize_weights(torch.Generator().manual_seed(seed))
        super().__init__(config, model.eval())

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.config.in_chans, self.config.image_size, self.config.image_size)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def sample_raw(self, z: Tensor) -> Tensor:
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"latent codes must be (N, {self.latent_dim}), got {tuple(z.shape)}")
        return self.model.generator(z)

    def discriminate(self, imgs: Tensor) -> Tensor:
        if tuple(imgs.shape[1:]) != self.image_shape:
            raise ValueError(f"images must be (N, {self.image_shape}), got {tuple(imgs.shape)}")
        return self.model.discriminator(imgs)
