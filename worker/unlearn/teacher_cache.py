"""Teacher targets computed once per base version (ALGORITHM.md §2, "What must be fast").

The teacher ``E0`` is frozen, so its outputs on retain-side (proxy) images and on noise images do
not depend on the request: for a fixed bank of mask draws they are the same for every job that
starts from the same checkpoint. A :class:`TeacherBank` fixes those draws:

- ``draws_per_image`` masks per retain-side image, ``masks``: (N, K, L) bool;
- ``noise_size`` noise images (the model's fixed statistics, clipped), each with its own mask,
  ``noise_masks``: (M, L) bool; a forget row borrows a noise entry's mask, so student and teacher
  see the same draw of ``T``.

Substitute forget targets (worker/unlearn/substitutes.py) are proxy images too, so they are
lookups in the same bank: a forget row borrows one of its substitute's ``K`` masks and targets.

Everything is derived from ``BankSpec.seed`` by one seeded generator, so the bank can be rebuilt
bit for bit. Two implementations of the same lookups feed the loop:

- :class:`LiveTargets` runs the teacher on the drawn rows at every step (the uncached path);
- :class:`CachedTargets` looks the rows up in tensors computed once (:func:`build_cache`),
  serialised as safetensors with the :class:`CacheKey` in the metadata. A cache whose key differs
  from the one a job expects (another checkpoint, proxy manifest, bank or dtype) is refused.

Size: ``N * K * T * D + M * T * D`` values (T = visible tokens + 1, D = encoder width) at
``BankSpec.dtype`` plus one byte per mask token. The demo MAE (T = 13, D = 96) with the 10,000
Fashion-MNIST test images, K = 2 and M = 4096 in float16 is about 60 MB. A family with large latents
(the demo diffusion UNet's skip connections: 42,336 values a row, about 2 GB) goes over the size
limit of worker/teacher_targets.py and runs the uncached path.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Protocol

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import Tensor

from .adapters.base import Adapter
from .losses import noise_images

CACHE_FORMAT = "oblivio-teacher-cache/1"
METADATA_KEY = "oblivio-teacher-cache"
DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


class CacheMismatch(ValueError):
    """The cache was built for another checkpoint, proxy manifest, bank or storage dtype."""


@dataclass(frozen=True)
class BankSpec:
    """The fixed bank of ``T`` draws: masks per retain-side image, noise entries, seed, storage dtype."""

    draws_per_image: int = 2
    noise_size: int = 4096
    seed: int = 0
    dtype: str = "float16"
    chunk: int = 512  # rows per teacher pass when building (bounds peak memory, not the result)

    def __post_init__(self) -> None:
        if self.draws_per_image < 1 or self.noise_size < 1 or self.seed < 0 or self.chunk < 1:
            raise ValueError(f"invalid BankSpec: {self}")
        if self.dtype not in DTYPES:
            raise ValueError(f"BankSpec.dtype must be one of {sorted(DTYPES)}, got {self.dtype!r}")


@dataclass(frozen=True)
class CacheKey:
    """What the targets depend on; any change means other targets. ``name`` is a file-safe digest of it."""

    checkpoint_digest: str
    proxy_manifest_digest: str
    draws_per_image: int
    noise_size: int
    seed: int
    dtype: str
    family: str = ""  # the model family: its latents have their own layout (and the cache its own name)

    @classmethod
    def for_bank(cls, checkpoint_digest: str, proxy_manifest_digest: str, spec: BankSpec,
                 family: str = "") -> CacheKey:  # fmt: skip
        return cls(checkpoint_digest, proxy_manifest_digest, spec.draws_per_image, spec.noise_size, spec.seed,
                   spec.dtype, family)

    @property
    def name(self) -> str:
        canonical = json.dumps(dataclasses.asdict(self), sort_keys=True, separators=(",", ":"))
        return "teacher-" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


@dataclass
class TeacherBank:
    """Fixed draws: masks (N, K, L) for N retain-side images, noise (M, C, H, W) with masks (M, L)."""

    masks: Tensor
    noise: Tensor
    noise_masks: Tensor

    @classmethod
    def draw(cls, adapter: Adapter, n_images: int, spec: BankSpec) -> TeacherBank:
        """The bank of ``spec`` for ``n_images`` images; depends only on ``spec`` and the model config."""
        gen = torch.Generator().manual_seed(spec.seed)
        k = spec.draws_per_image
        masks = adapter.random_mask(n_images * k, gen).cpu().view(n_images, k, -1)  # (N, K, L)
        cfg = adapter.config
        mean, std = torch.tensor(cfg.pixel_mean), torch.tensor(cfg.pixel_std)  # (C,) fixed per model
        noise = noise_images(spec.noise_size, mean, std, adapter.image_shape, gen)  # (M, C, H, W)
        noise_masks = adapter.random_mask(spec.noise_size, gen).cpu()  # (M, L)
        return cls(masks=masks, noise=noise, noise_masks=noise_masks)


class Targets(Protocol):
    """Teacher targets for drawn rows; what the loop needs, cached or not."""

    draws_per_image: int
    noise_size: int

    def __len__(self) -> int: ...
    def retain(self, rows: Tensor, draws: Tensor) -> tuple[Tensor, Tensor]:
        """rows, draws: (B,) -> masks (B, L) bool, E0(T(x_rows)) (B, T, D)."""
        ...

    def noise(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        """ids: (B,) noise entries -> masks (B, L) bool, E0(T(n_ids)) (B, T, D)."""
        ...


class LiveTargets:
    """The uncached path: the teacher runs on the drawn rows (retain images and bank noise) every step."""

    def __init__(self, teacher: Adapter, images: Tensor, bank: TeacherBank) -> None:
        if len(bank.masks) != len(images):
            raise ValueError(f"bank drawn for {len(bank.masks)} images, got {len(images)}")
        self.teacher, self.images, self.bank = teacher, images, bank
        self.draws_per_image, self.noise_size = bank.masks.shape[1], len(bank.noise)

    def __len__(self) -> int:
        return len(self.images)

    @torch.no_grad()
    def retain(self, rows: Tensor, draws: Tensor) -> tuple[Tensor, Tensor]:
        device = self.teacher.device
        masks = self.bank.masks[rows, draws].to(device)  # (B, L)
        return masks, self.teacher.encode(self.images[rows].to(device), masks)  # (B, T, D)

    @torch.no_grad()
    def noise(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        device = self.teacher.device
        masks = self.bank.noise_masks[ids].to(device)  # (B, L)
        return masks, self.teacher.encode(self.bank.noise[ids].to(device), masks)  # (B, T, D)


class CachedTargets:
    """Targets computed once (:func:`build_cache`): lookups only, no teacher pass.

    masks: (N, K, L) bool, targets: (N, K, T, D), noise_masks: (M, L) bool, noise_targets: (M, T, D),
    keys: the N retain-side sample keys in row order (to align a job's subset, :meth:`select`).
    """

    def __init__(self, key: CacheKey, keys: list[str], masks: Tensor, targets: Tensor,
                 noise_masks: Tensor, noise_targets: Tensor) -> None:  # fmt: skip
        self.key, self.keys = key, list(keys)
        self.masks, self.targets = masks, targets
        self.noise_masks, self.noise_targets = noise_masks, noise_targets
        self.draws_per_image, self.noise_size = masks.shape[1], len(noise_masks)

    def __len__(self) -> int:
        return len(self.keys)

    def to(self, device: torch.device | str) -> CachedTargets:
        """A copy whose tensors live on ``device`` (lookups then never cross the bus)."""
        move = {n: getattr(self, n).to(device) for n in ("masks", "targets", "noise_masks", "noise_targets")}
        return CachedTargets(self.key, self.keys, **move)

    def retain(self, rows: Tensor, draws: Tensor) -> tuple[Tensor, Tensor]:
        rows, draws = rows.to(self.masks.device), draws.to(self.masks.device)
        return self.masks[rows, draws], self.targets[rows, draws]  # (B, L), (B, T, D)

    def noise(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        ids = ids.to(self.noise_masks.device)
        return self.noise_masks[ids], self.noise_targets[ids]  # (B, L), (B, T, D)

    def select(self, keys: list[str]) -> CachedTargets:
        """The rows of ``keys`` in that order (a job's retain subset); an unknown key is a KeyError."""
        index = {k: i for i, k in enumerate(self.keys)}
        missing = [k for k in keys if k not in index]
        if missing:
            raise KeyError(f"{len(missing)} samples are not in the teacher cache, e.g. {missing[:3]}")
        rows = torch.tensor([index[k] for k in keys], dtype=torch.long)
        return CachedTargets(self.key, keys, self.masks[rows], self.targets[rows], self.noise_masks, self.noise_targets)

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.masks, self.targets, self.noise_masks, self.noise_targets))

    @staticmethod
    def row_nbytes(teacher: Adapter, spec: BankSpec) -> int:
        """Bytes of one cached draw (its target at the storage dtype and its uint8 mask), from one teacher pass."""
        with torch.no_grad():
            gen = torch.Generator().manual_seed(spec.seed)
            mask = teacher.random_mask(1, gen)
            row = teacher.encode(torch.full((1, *teacher.image_shape), 0.5, device=teacher.device), mask)
        return row[0].numel() * DTYPES[spec.dtype].itemsize + mask.shape[1]

    @staticmethod
    def estimate_nbytes(teacher: Adapter, n_images: int, spec: BankSpec) -> int:
        """The size of a cache over ``n_images`` images."""
        return CachedTargets.row_nbytes(teacher, spec) * (n_images * spec.draws_per_image + spec.noise_size)

    def to_bytes(self) -> bytes:
        """Safetensors: masks as uint8, targets at the key's dtype, the key and sample keys in the metadata."""
        tensors = {
            "masks": self.masks.to(torch.uint8).contiguous().cpu(),
            "targets": self.targets.contiguous().cpu(),
            "noise_masks": self.noise_masks.to(torch.uint8).contiguous().cpu(),
            "noise_targets": self.noise_targets.contiguous().cpu(),
        }
        meta = {"format": CACHE_FORMAT, "key": dataclasses.asdict(self.key), "keys": self.keys}
        return st_save(tensors, metadata={METADATA_KEY: json.dumps(meta)})

    @classmethod
    def from_bytes(cls, data: bytes, expected: CacheKey) -> CachedTargets:
        """Load a cache; CacheMismatch unless it was built for exactly ``expected``."""
        n = int.from_bytes(data[:8], "little")
        try:
            meta = json.loads(json.loads(data[8 : 8 + n])["__metadata__"][METADATA_KEY])
        except (ValueError, KeyError, TypeError) as err:
            raise CacheMismatch(f"not a teacher cache ({err!r})") from None
        if meta.get("format") != CACHE_FORMAT:
            raise CacheMismatch(f"unsupported teacher cache format {meta.get('format')!r}")
        found = CacheKey(**meta["key"])
        if found != expected:
            raise CacheMismatch(f"teacher cache built for {found}, this job needs {expected}")
        t = st_load(data)
        return cls(found, meta["keys"], t["masks"].bool(), t["targets"], t["noise_masks"].bool(), t["noise_targets"])


@torch.no_grad()
def build_cache(teacher: Adapter, images: Tensor, keys: list[str], spec: BankSpec, key: CacheKey) -> CachedTargets:
    """Run the teacher once over the whole bank: ``images`` (N, C, H, W) in [0, 1], one key per image.

    ``teacher`` is used in eval mode and left as it was. Under bf16 autocast on CUDA, like the loop.
    """
    if len(images) != len(keys):
        raise ValueError(f"{len(images)} images but {len(keys)} keys")
    if key.draws_per_image != spec.draws_per_image or key.noise_size != spec.noise_size or key.seed != spec.seed:
        raise ValueError(f"cache key {key} does not describe bank {spec}")
    bank = TeacherBank.draw(teacher, len(images), spec)
    live = LiveTargets(teacher, images, bank)
    dtype, k = DTYPES[spec.dtype], spec.draws_per_image
    was_training = teacher.model.training
    teacher.model.eval()
    device = teacher.device
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    try:
        with autocast:
            flat_rows = torch.arange(len(images)).repeat_interleave(k)  # (N*K,) image of each draw
            flat_draws = torch.arange(k).repeat(len(images))  # (N*K,)
            targets = torch.cat([
                live.retain(flat_rows[i : i + spec.chunk], flat_draws[i : i + spec.chunk])[1].to(dtype).cpu()
                for i in range(0, len(flat_rows), spec.chunk)
            ])  # (N*K, T, D)
            ids = torch.arange(spec.noise_size)
            noise_targets = torch.cat([
                live.noise(ids[i : i + spec.chunk])[1].to(dtype).cpu() for i in range(0, spec.noise_size, spec.chunk)
            ])  # (M, T, D)
    finally:
        teacher.model.train(was_training)
    targets = targets.view(len(images), k, *targets.shape[1:])  # (N, K, T, D)
    return CachedTargets(key, keys, bank.masks, targets, bank.noise_masks, noise_targets)

