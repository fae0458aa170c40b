"""The sampler kind of the Adapter contract: models that generate from latent codes (GANs).

A masked generator (the base :class:`Adapter`) maps a masked image to a filled-in image; a
sampler maps a latent code ``z`` to an image and has no masking transform. Everything that only
works on masked models (``random_mask``, ``encode``, ``reconstruct`` ...) raises a ``TypeError``
naming the kind, so a caller that does not dispatch on the kind fails loudly instead of silently.

Callers dispatch with :func:`is_sampler` (on the adapter kind, never on a family name).

A sampler adapter owns one ``nn.Module`` that holds both networks: the generator under
``generator_prefixes`` and, where the family has one, the discriminator under
``discriminator_prefixes`` (adversarial unlearning methods need it; both travel in one checkpoint).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from .base import Adapter

KIND_MASKED, KIND_SAMPLER = "masked", "sampler"


def adapter_kind(adapter_or_class: Any) -> str:
    """``"sampler"`` for a :class:`SamplerAdapter` (instance or class), ``"masked"`` for any other adapter."""
    cls = adapter_or_class if isinstance(adapter_or_class, type) else type(adapter_or_class)
    return KIND_SAMPLER if issubclass(cls, SamplerAdapter) else KIND_MASKED


def is_sampler(adapter_or_class: Any) -> bool:
    return adapter_kind(adapter_or_class) == KIND_SAMPLER


class SamplerAdapter(Adapter):
    """Base class of latent-code generators. Subclasses set the prefixes and implement the abstract methods.

    Class variables:
        generator_prefixes: state-dict prefixes of the generator G (what unlearning must change);
            a subclass sets ``encoder_prefixes`` to the same (the base contract's trainable part).
        discriminator_prefixes: those of the discriminator D (empty: the family has none).
    """

    kind: ClassVar[str] = KIND_SAMPLER
    generator_prefixes: ClassVar[tuple[str, ...]]
    discriminator_prefixes: ClassVar[tuple[str, ...]] = ()

    # ----- the sampler contract ------------------------------------------------------------
    @property
    @abstractmethod
    def latent_dim(self) -> int:
        """Length of a latent code."""

    def latent(self, n: int, generator: torch.Generator) -> Tensor:
        """(n, latent_dim) standard-normal codes drawn from ``generator`` (on CPU, then moved to the model)."""
        return torch.randn(n, self.latent_dim, generator=generator).to(self.device)

    @abstractmethod
    def sample_raw(self, z: Tensor) -> Tensor:
        """(N, latent_dim) -> (N, C, H, W) generator output, differentiable (the training-time view of ``sample``)."""

    @torch.no_grad()
    def sample(self, z: Tensor) -> Tensor:
        """(N, latent_dim) -> (N, C, H, W) images in [0, 1] (inference: no gradient; train on ``sample_raw``)."""
        return self.sample_raw(z).clamp(0.0, 1.0)

    @property
    def has_discriminator(self) -> bool:
        return bool(self.discriminator_prefixes)

    def discriminate(self, imgs: Tensor) -> Tensor:
        """(N, C, H, W) in [0, 1] -> (N,) logits of "real training image"."""
        raise TypeError(f"model family {self.family!r} has no discriminator")

    def is_discriminator_key(self, name: str) -> bool:
        return any(name == p or name.startswith(p + ".") for p in self.discriminator_prefixes)

    def generator_parameters(self) -> list[nn.Parameter]:
        """The trainable generator parameters (generator keys minus ``fixed_keys``)."""
        return self.encoder_parameters()

    def discriminator_parameters(self) -> list[nn.Parameter]:
        return [p for name, p in self.model.named_parameters()
                if self.is_discriminator_key(name) and name not in self.fixed_keys]  # fmt: skip

    # ----- the masked-model contract does not apply ------------------------------------------
    def _not_masked(self, what: str):
        raise TypeError(f"{self.family!r} is a sampler (generates from latent codes): it has no {what}")

    def random_mask(self, n: int, generator: torch.Generator) -> Tensor:
        self._not_masked("masking transform")

    def box_mask(self, n: int, side_frac: float) -> Tensor:
        self._not_masked("masking transform")

    def encode(self, imgs: Tensor, mask: Tensor) -> Tensor:
        self._not_masked("encoder of masked images")

    def reconstruct(self, imgs: Tensor, mask: Tensor) -> Tensor:
        self._not_masked("reconstruction of masked images")

    def generate(self, imgs: Tensor, mask: Tensor) -> Tensor:
        self._not_masked("masked-image generation (use sample(z))")

    def hidden_pixels(self, mask: Tensor) -> Tensor:
        self._not_masked("hidden pixels")
