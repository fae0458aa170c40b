"""MAE family: the ViT masked autoencoder with the official parameter layout.

Parameter names and shapes are those of ``MaskedAutoencoderViT`` in facebookresearch/mae
``models_mae.py`` so a user's official state dict loads with strict key checking. Differences:

- Image size, patch size, channels, widths and depths are all configurable (square images).
- Masking takes a given boolean mask instead of drawing one inside ``forward``: random masks and
  centre-box masks go through the same encoder path (official ``random_masking`` semantics: the
  visible tokens are gathered in their original order, ``ids_restore`` puts them back).
- Pixels: callers pass images in [0, 1]; the model itself normalises with the per-channel
  ``pixel_mean``/``pixel_std`` of its config (the official code does this in the data transform),
  and the decoder predicts normalised pixels (an official model trained with
  ``norm_pix_loss=False``, like the released visualisation checkpoints).

Encoder ``E`` = ``patch_embed``, ``cls_token``, ``pos_embed``, ``blocks``, ``norm``; ``pos_embed`` and
``decoder_pos_embed`` are fixed sin-cos tables (``requires_grad=False``, as in the official code).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ...adapters.base import Adapter
from ...adapters.geometry import PatchGrid
from ...adapters.masks import PatchMasks
from ...adapters.registry import register_family
from ...config import dataclass_from_dict
from .vit import LAYER_NORM_EPS, Block, PatchEmbed, sincos_pos_embed_2d

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class MAEConfig(PatchGrid):
    """Architecture of a MAE; the defaults are the official ``mae_vit_large_patch16``.

    pixel_mean, pixel_std: per channel, of the training images in [0, 1]; used to normalise
    inputs and to draw the noise images of encoder-L2.
    """

    image_size: int = 224
    patch_size: int = 16
    in_chans: int = 3
    embed_dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    decoder_embed_dim: int = 512
    decoder_depth: int = 8
    decoder_num_heads: int = 16
    mlp_ratio: float = 4.0
    mask_ratio: float = 0.75
    pixel_mean: tuple[float, ...] = IMAGENET_MEAN
    pixel_std: tuple[float, ...] = IMAGENET_STD

    def __post_init__(self) -> None:
        problems = self.grid_problems()
        for dim, heads in ((self.embed_dim, self.num_heads), (self.decoder_embed_dim, self.decoder_num_heads)):
            if dim % heads or dim % 4:
                problems.append(f"width {dim} must be divisible by 4 and by its head count {heads}")
        problems += self.pixel_stats_problems()
        if problems:
            raise ValueError("invalid MAEConfig: " + "; ".join(problems))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MAEConfig:
        return dataclass_from_dict(cls, d)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


class MaskedAutoencoderViT(nn.Module):
    """ViT encoder on the visible tokens, light ViT decoder on all tokens, linear pixel head."""

    def __init__(self, cfg: MAEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d, dd, n = cfg.embed_dim, cfg.decoder_embed_dim, cfg.num_patches
        self.patch_embed = PatchEmbed(cfg.patch_size, cfg.in_chans, d)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, n + 1, d), requires_grad=False)
        self.blocks = nn.ModuleList(Block(d, cfg.num_heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(d, eps=LAYER_NORM_EPS)
        self.decoder_embed = nn.Linear(d, dd)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dd))
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, n + 1, dd), requires_grad=False)
        self.decoder_blocks = nn.ModuleList(
            Block(dd, cfg.decoder_num_heads, cfg.mlp_ratio) for _ in range(cfg.decoder_depth)
        )
        self.decoder_norm = nn.LayerNorm(dd, eps=LAYER_NORM_EPS)
        self.decoder_pred = nn.Linear(dd, cfg.patch_size**2 * cfg.in_chans)
        stats = dict(pixel_mean=cfg.pixel_mean, pixel_std=cfg.pixel_std)
        for name, values in stats.items():  # not state-dict keys: they live in the config
            self.register_buffer(name, torch.tensor(values).view(1, -1, 1, 1), persistent=False)

    @torch.no_grad()
    def initialize_weights(self, generator: torch.Generator) -> None:
        """The official initialisation (sin-cos tables, xavier-uniform linears, N(0, 0.02) tokens)."""
        g = self.cfg.grid_size
        self.pos_embed.copy_(sincos_pos_embed_2d(self.cfg.embed_dim, g)[None])
        self.decoder_pos_embed.copy_(sincos_pos_embed_2d(self.cfg.decoder_embed_dim, g)[None])
        w = self.patch_embed.proj.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1), generator=generator)
        nn.init.zeros_(self.patch_embed.proj.bias)
        nn.init.normal_(self.cls_token, std=0.02, generator=generator)
        nn.init.normal_(self.mask_token, std=0.02, generator=generator)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight, generator=generator)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def normalize(self, imgs: Tensor) -> Tensor:
        """(N, C, H, W) in [0, 1] -> per-channel standardised pixels (what the network sees)."""
        return (imgs - self.pixel_mean) / self.pixel_std

    def denormalize(self, x: Tensor) -> Tensor:
        return x * self.pixel_std + self.pixel_mean

    def patchify(self, imgs: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, L, p*p*C), channel last inside a patch, as the official code."""
        p, g, c = self.cfg.patch_size, self.cfg.grid_size, self.cfg.in_chans
        x = imgs.reshape(imgs.shape[0], c, g, p, g, p)
        return torch.einsum("nchpwq->nhwpqc", x).reshape(imgs.shape[0], g * g, p * p * c)

    def unpatchify(self, x: Tensor) -> Tensor:
        """(N, L, p*p*C) -> (N, C, H, W)."""
        p, g, c = self.cfg.patch_size, self.cfg.grid_size, self.cfg.in_chans
        x = torch.einsum("nhwpqc->nchpwq", x.reshape(x.shape[0], g, g, p, p, c))
        return x.reshape(x.shape[0], c, g * p, g * p)

    @staticmethod
    def masking_indices(mask: Tensor) -> tuple[Tensor, Tensor]:
        """mask: (N, L) bool -> ids_keep (N, L_vis), ids_restore (N, L).

        A stable sort puts the visible tokens first in their original order; ``ids_restore``
        inverts the shuffle, exactly as in the official ``random_masking``.
        """
        ids_shuffle = torch.argsort(mask.to(torch.uint8), dim=1, stable=True)  # (N, L)
        ids_restore = torch.argsort(ids_shuffle, dim=1)  # (N, L)
        n_visible = mask.shape[1] - int(mask[0].sum())
        return ids_shuffle[:, :n_visible], ids_restore

    def forward_encoder(self, imgs: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """imgs: (N, C, H, W) in [0, 1], mask: (N, L) -> latent (N, 1 + L_vis, D), ids_restore (N, L)."""
        x = self.patch_embed(self.normalize(imgs))  # (N, L, D)
        x = x + self.pos_embed[:, 1:, :]
        ids_keep, ids_restore = self.masking_indices(mask)
        x = torch.gather(x, 1, ids_keep.unsqueeze(-1).expand(-1, -1, x.shape[2]))  # (N, L_vis, D)
        cls = (self.cls_token + self.pos_embed[:, :1, :]).expand(x.shape[0], -1, -1)  # (N, 1, D)
        x = torch.cat([cls, x], dim=1)  # (N, 1 + L_vis, D)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x), ids_restore

    def forward_decoder(self, latent: Tensor, ids_restore: Tensor) -> Tensor:
        """latent: (N, 1 + L_vis, D), ids_restore: (N, L) -> predicted normalised patches (N, L, p*p*C)."""
        x = self.decoder_embed(latent)  # (N, 1 + L_vis, Dd)
        n_hidden = ids_restore.shape[1] + 1 - x.shape[1]
        tokens = torch.cat([x[:, 1:, :], self.mask_token.expand(x.shape[0], n_hidden, -1)], dim=1)  # (N, L, Dd)
        tokens = torch.gather(tokens, 1, ids_restore.unsqueeze(-1).expand(-1, -1, x.shape[2]))  # unshuffle
        x = torch.cat([x[:, :1, :], tokens], dim=1) + self.decoder_pos_embed  # (N, 1 + L, Dd)
        for blk in self.decoder_blocks:
            x = blk(x)
        return self.decoder_pred(self.decoder_norm(x))[:, 1:, :]  # (N, L, p*p*C), cls dropped

    def forward(self, imgs: Tensor, mask: Tensor) -> Tensor:
        """imgs: (N, C, H, W) in [0, 1], mask: (N, L) -> predicted normalised patches (N, L, p*p*C)."""
        latent, ids_restore = self.forward_encoder(imgs, mask)
        return self.forward_decoder(latent, ids_restore)


@register_family("mae")
class MAEAdapter(PatchMasks, Adapter):
    """Adapter over :class:`MaskedAutoencoderViT`; ``T`` is patch masking (random or centre box, :class:`PatchMasks`)."""

    config_class = MAEConfig
    encoder_prefixes = ("patch_embed", "cls_token", "pos_embed", "blocks", "norm")
    fixed_keys = frozenset({"pos_embed", "decoder_pos_embed"})
    model: MaskedAutoencoderViT

    def __init__(self, config: MAEConfig, *, seed: int = 0) -> None:
        model = MaskedAutoencoderViT(config)
        model.initialize_weights(torch.Generator().manual_seed(seed))
        super().__init__(config, model)

    @classmethod
    def test_config(cls) -> dict[str, Any]:
        return dict(
            image_size=16, patch_size=4, in_chans=1, embed_dim=32, depth=2, num_heads=4,
            decoder_embed_dim=32, decoder_depth=1, decoder_num_heads=4, mlp_ratio=2.0, mask_ratio=0.75,
            pixel_mean=[0.3], pixel_std=[0.3],
        )  # fmt: skip

    def _check(self, imgs: Tensor, mask: Tensor) -> None:
        """``check_inputs``, and every row hiding as many tokens: the visible ones gather into one (N, L_vis, D)."""
        self.check_inputs(imgs, mask)
        counts = mask.sum(dim=1)
        if bool((counts != counts[0]).any()):
            raise ValueError("every mask row must hide the same number of tokens")

    def encode(self, imgs: Tensor, mask: Tensor) -> Tensor:
        """imgs: (N, C, H, W) in [0, 1], mask: (N, L) -> E(T(x)): (N, 1 + L_vis, D), cls token first."""
        self._check(imgs, mask)
        return self.model.forward_encoder(imgs, mask)[0]

    def reconstruct(self, imgs: Tensor, mask: Tensor) -> Tensor:
        """(N, C, H, W) decoder output in [0, 1] pixel units (not clamped), with grad when enabled."""
        self._check(imgs, mask)
        pred = self.model(imgs, mask)  # (N, L, p*p*C) normalised
        return self.model.denormalize(self.model.unpatchify(pred))  # (N, C, H, W)

    @torch.no_grad()
    def generate(self, imgs: Tensor, mask: Tensor) -> Tensor:
        """(N, C, H, W) in [0, 1]: decoder output on hidden patches, input pixels elsewhere."""
        out = self.reconstruct(imgs, mask).clamp(0, 1)  # (N, C, H, W)
        return torch.where(self.hidden_pixels(mask), out, imgs)
