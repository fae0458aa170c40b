"""The adapter interface: one image-to-image generator ``h(x) = D(E(T(x)))`` (ALGORITHM.md §1).

An adapter owns an ``nn.Module`` and knows which of its tensors form the encoder ``E`` (the only
part unlearning trains), how to draw the masking transform ``T``, how to encode, and how to fill in
the hidden region. Masks are token masks ``(N, L)`` bool, True = hidden; every row hides the same
number of tokens so a batch stays rectangular after the visible tokens are gathered.

The whole contract (what a plugin family implements, what the loop assumes) is documented in
docs/adapters.md. The mask members (``image_shape``, ``random_mask``, ``box_mask``,
``hidden_pixels``) stay abstract here; a family on a square patch grid gets them by mixing in
:class:`.masks.PatchMasks`. Two rules matter for families whose transform ``T`` has randomness
beyond the mask (a diffusion model's timestep and noise):

- ``encode``, ``reconstruct`` and ``generate`` are deterministic functions of ``(imgs, mask)`` and the
  weights. The loop hands the student and the teacher the same mask, and the teacher cache stores
  masks next to its targets, so the same mask must mean the same ``T``. Such a family derives its
  extra draws from the mask row with :func:`mask_row_seeds`; the masks themselves come from the run's
  seeded generator, so everything stays a function of the run's seed.
- ``membership_error`` is the per-image error the membership attack scores (worker/unlearn/mia.py);
  the default is the hidden-pixel error of ``generate``, a family may use its own training loss.
"""

from __future__ import annotations

import copy
import hashlib
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
from torch import Tensor, nn


def mask_row_seeds(mask: Tensor, salt: int = 0) -> list[int]:
    """One 63-bit seed per row of ``mask`` (N, L) bool: a hash of the row's bits and ``salt``.

    Rows that hide the same tokens get the same seed (whatever their position in the batch); the
    family seeds its per-row draws with it (``torch.Generator().manual_seed(seed)``).
    """
    n, length = mask.shape
    bits = torch.zeros(n, -(-length // 8) * 8, dtype=torch.uint8)
    bits[:, :length] = mask.detach().to("cpu", torch.uint8)
    packed = (bits.view(n, -1, 8) << torch.arange(8, dtype=torch.uint8)).sum(dim=2, dtype=torch.uint8)  # (N, L/8)
    prefix = salt.to_bytes(8, "little", signed=True) + length.to_bytes(8, "little")
    return [int.from_bytes(hashlib.blake2b(prefix + bytes(row), digest_size=8).digest(), "little") >> 1
            for row in packed.tolist()]


class Adapter(ABC):
    """Base class of every model family. Subclasses set the class variables and the abstract methods.

    Class variables:
        family: registry name.
        config_class: the frozen dataclass of the family's architecture (has ``from_dict``/``to_dict``).
        encoder_prefixes: state-dict key prefixes that make up the encoder ``E``.
        fixed_keys: keys of constants that are never trained (e.g. sin-cos position tables), wherever
            they sit; no method ever puts them in an optimiser.
        gate_defaults: publish-gate thresholds of this family over the service-wide defaults
            (worker/gate.py DEFAULT_GATE, measured on the demo MAE), a model's own gate_thresholds
            over both. A family sets one only from a measurement: the value a model retrained without
            the forgotten data passes and an unchanged model fails (README, "Publish gate").
    """

    family: ClassVar[str]
    config_class: ClassVar[type]
    encoder_prefixes: ClassVar[tuple[str, ...]]
    fixed_keys: ClassVar[frozenset[str]] = frozenset()
    gate_defaults: ClassVar[dict[str, float | None]] = {}

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
        """imgs: (N, C, H, W) in [0, 1], mask: (N, L) -> latent E(T(x)), (N, ...) with a fixed shape per row.

        The MAE's is (N, L_vis + 1, D); the loss compares latents element-wise (MSE), so any fixed
        per-row shape works. Deterministic in ``(imgs, mask)`` (see the module docstring).
        """

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

    # ----- optional hooks (defaults suit a one-pass generator) ------------------------------
    @torch.no_grad()
    def membership_error(self, imgs: Tensor, mask: Tensor, generated: Tensor | None = None) -> Tensor:
        """(N,) float: how badly the model does on each image under ``mask``; lower = "more likely a member".

        Default: mean squared error of ``generate`` on the hidden pixels (``generated``: its output
        when the caller already has it). A family whose own training loss is the better membership
        signal (diffusion: the denoising loss at fixed timesteps and noise) overrides this; it must
        be deterministic in ``(imgs, mask)`` so the base and a candidate are scored alike.
        """
        out = (self.generate(imgs, mask) if generated is None else generated).float()  # (N, C, H, W)
        w = self.hidden_pixels(mask).float()  # (N, 1, H, W)
        sq = ((out - imgs.float()) ** 2 * w).sum(dim=(1, 2, 3))  # (N,)
        return sq / (w.sum(dim=(1, 2, 3)) * imgs.shape[1])

    @classmethod
    def test_config(cls) -> dict[str, Any]:
        """A tiny architecture for the contract tests (tests/unlearn/test_adapters_contract.py, ``--family``)."""
        raise NotImplementedError(f"family {cls.__name__} has no test_config")

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
