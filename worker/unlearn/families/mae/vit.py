"""Vision Transformer building blocks with timm's parameter layout.

``Block`` has the keys of ``timm.models.vision_transformer.Block`` as used by the official MAE
(``norm1``, ``attn.qkv``, ``attn.proj``, ``norm2``, ``mlp.fc1``, ``mlp.fc2``), so official
checkpoints load by name. Attention runs through ``scaled_dot_product_attention`` (fused kernels).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LAYER_NORM_EPS = 1e-6  # the official MAE uses partial(nn.LayerNorm, eps=1e-6)


class Attention(nn.Module):
    """Multi-head self-attention: one ``qkv`` projection (with bias), one output ``proj``."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, L, D) -> (B, L, D)."""
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, d // self.num_heads)  # (B, L, 3, h, D/h)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # 3 x (B, h, L, D/h)
        x = F.scaled_dot_product_attention(q, k, v)  # (B, h, L, D/h)
        return self.proj(x.transpose(1, 2).reshape(b, n, d))  # (B, L, D)


class Mlp(nn.Module):
    """fc1 -> GELU -> fc2, hidden width ``mlp_ratio * dim``."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, L, D) -> (B, L, D)."""
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, L, D) -> (B, L, D)."""
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    """Non-overlapping patches -> tokens with a strided convolution (key ``proj``)."""

    def __init__(self, patch_size: int, in_chans: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, C, H, W) -> (B, L, D) with L = (H/p) * (W/p), row-major patch order."""
        return self.proj(x).flatten(2).transpose(1, 2)


def sincos_pos_embed_2d(dim: int, grid: int, cls_token: bool = True) -> Tensor:
    """Fixed 2D sine-cosine position embedding of the official MAE (``get_2d_sincos_pos_embed``).

    Returns (1 + grid*grid, dim) with a zero row first for the cls token, else (grid*grid, dim).
    Half of the channels encode the column (w) coordinate, half the row (h) coordinate.
    """
    if dim % 4:
        raise ValueError(f"sin-cos position embedding needs dim divisible by 4, got {dim}")
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim / 4.0))  # (D/4,)
    coords = torch.arange(grid, dtype=torch.float64)
    gh, gw = torch.meshgrid(coords, coords, indexing="ij")  # (g, g) each
    # The official code builds meshgrid(w, h) and embeds grid[0] (= w) first, then grid[1] (= h).
    parts = []
    for pos in (gw.reshape(-1), gh.reshape(-1)):
        out = pos[:, None] * omega[None, :]  # (g*g, D/4)
        parts += [torch.sin(out), torch.cos(out)]
    emb = torch.cat(parts, dim=1).float()  # (g*g, D)
    if cls_token:
        emb = torch.cat([torch.zeros(1, dim), emb], dim=0)  # (1 + g*g, D)
    return emb
