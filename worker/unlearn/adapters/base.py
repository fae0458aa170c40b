"""The adapter interface: one image-to-image generator ``h(x) = D(E(T(x)))`` (ALGORITHM.md §1).

An adapter owns an ``nn.Module`` and knows which of its tensors form the encoder ``E`` (the only
part unlearning trains), how to draw the masking transform ``T``, how to encode, and how to fill in
the hidden region. Masks are token masks ``(N, L)`` bool, True = hidden; every row hides the same
number of tokens so a batch stays rectangular after the visible tokens are gathered.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
from torch import Tensor, nn


class Adapter(ABC):
    """Base class of every model family. Subclasses set the class variables and the abstract methods.

    Class variables:
        family: registry name.
        config_class: the frozen dataclass of the family's architecture (has ``from_dict``/``to_dict``).
        encoder_prefixes: state-dict key prefixes that make up the encoder ``E``.
        fixed_keys: keys of constants that are never trained (e.g. sin-cos position tables), wherever
            they sit; no method ever puts them in an optimiser.
    """

    family: ClassVar[str]
    config_class: ClassVar[type]
    encoder_prefixes: ClassVar[tuple[str, ...]]
    fixed_keys: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, config: Any, model: nn.Module) -> None:
        self.config = config
        self.model = model

    # ----- geometry and device -------------------------------------------------------------
    @property
    @abstractmethod
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the images the generator takes."""

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device: torch.device | str) -> Adapter:
        """Move the model to ``device`` in place; returns self."""
        self.model.to(device)
        return self

    # ----- encoder / frozen rest -----------------------------------------------------------
    def is_encoder_key(self, name: str) -> bool:
        """True when state-dict key ``name`` belongs to the encoder ``E``."""
        return any(name == p or name.startswith(p + ".") for p in self.encoder_prefixes)

    def encoder_parameters(self) -> list[nn.Parameter]:
        """The trainable encoder parameters (encoder keys minus ``fixed_keys``), in module order."""
        return [
            p for name, p in self.model.named_parameters()
            if self.is_encoder_key(name) and name not in self.fixed_keys
        ]

    def generator_parameters(self) -> list[nn.Parameter]:
        """Every trainable parameter of the whole generator (all keys minus ``fixed_keys``), in module order.

        Only the full-model baselines of ALGORITHM.md §3 train these; encoder-L2 never does.
        """
        return [p for name, p in self.model.named_parameters() if name not in self.fixed_keys]

    def freeze_non_encoder(self) -> None:
        """Set ``requires_grad`` True on the trainable encoder parameters, False on everything else."""
        trainable = {id(p) for p in self.encoder_parameters()}
        for p in self.model.parameters():
            p.requires_grad_(id(p) in trainable)

    # ----- masking transform T, encoder, generator -----------------------------------------
    @abstractmethod
    def random_mask(self, n: int, generator: torch.Generator) -> Tensor:
        """(N, L) bool, True = hidden, ``config.mask_ratio`` of the tokens per row, drawn from ``generator``."""

    @abstractmethod
    def box_mask(self, n: int, side_frac: float) -> Tensor:
        """(N, L) bool hiding every token that overlaps a centred square of side ``side_frac * H``."""

    @abstractmethod
    def encode(self, imgs: Tensor, mask: Tensor) -> Tensor:
        """imgs: (N, C, H, W) in [0, 1], mask: (N, L) -> latent E(T(x)) of shape (N, L_vis + 1, D)."""

    @abstractmethod
    def reconstruct(self, imgs: Tensor, mask: Tensor) -> Tensor:
        """(N, C, H, W) decoder output in pixel units everywhere, differentiable and not clamped.

        The training-time view of ``generate``: the baselines that train the whole generator take
        their losses on it (on the hidden pixels).
        """

    @abstractmethod
    def generate(self, imgs: Tensor, mask: Tensor) -> Tensor:
        """(N, C, H, W) in [0, 1]: the hidden region generated, visible pixels copied from ``imgs``."""

    @abstractmethod
    def hidden_pixels(self, mask: Tensor) -> Tensor:
        """mask: (N, L) -> (N, 1, H, W) bool, True on pixels of hidden tokens."""

    # ----- copies and state ----------------------------------------------------------------
    def clone(self) -> Adapter:
        """A deep copy (own tensors, same ``requires_grad`` flags): the teacher of a run."""
        return copy.deepcopy(self)

    def state_dict(self) -> dict[str, Tensor]:
        """All tensors by official key name (the tensors share storage with the model)."""
        return dict(self.model.state_dict())

    def load_state_dict(self, sd: dict[str, Tensor], strict: bool = True) -> tuple[list[str], list[str]]:
        """Copy ``sd`` into the model; returns (missing, unexpected) key lists.

        With ``strict`` a missing or unexpected key is a ValueError naming them. A shape mismatch
        is always a ValueError naming the key and both shapes.
        """
        own = self.model.state_dict()
        missing = sorted(set(own) - set(sd))
        unexpected = sorted(set(sd) - set(own))
        if strict and (missing or unexpected):
            raise ValueError(
                f"state dict does not match the {self.family!r} layout of this config: "
                f"missing keys {missing}, unexpected keys {unexpected}"
            )
        for key in sorted(set(own) & set(sd)):
            if tuple(sd[key].shape) != tuple(own[key].shape):
                raise ValueError(
                    f"state dict key {key!r} has shape {tuple(sd[key].shape)}, "
                    f"this {self.family!r} config expects {tuple(own[key].shape)}"
                )
        self.model.load_state_dict({k: v for k, v in sd.items() if k in own}, strict=False)
        return missing, unexpected

    def __repr__(self) -> str:
        n = sum(p.numel() for p in self.model.parameters())
        return f"{type(self).__name__}(family={self.family!r}, params={n}, config={self.config})"
