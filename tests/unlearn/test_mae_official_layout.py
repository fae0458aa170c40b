"""The MAE family loads state dicts in the official facebookresearch/mae layout, strictly.

The expected names and shapes are written out here from ``models_mae.py`` (MaskedAutoencoderViT
with timm's Block), independently of the module code, for a small three-channel ViT.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from worker.unlearn import MAEConfig, create_adapter

IMG, P, C, D, DEPTH, HEADS, DD, DDEPTH, DHEADS, MLP = 32, 8, 3, 48, 2, 3, 32, 1, 4, 4
L = (IMG // P) ** 2
CONFIG = dict(
    image_size=IMG, patch_size=P, in_chans=C, embed_dim=D, depth=DEPTH, num_heads=HEADS,
    decoder_embed_dim=DD, decoder_depth=DDEPTH, decoder_num_heads=DHEADS, mlp_ratio=float(MLP),
)  # fmt: skip


def block_shapes(prefix: str, dim: int) -> dict[str, tuple[int, ...]]:
    hidden = dim * MLP
    return {
        f"{prefix}.norm1.weight": (dim,), f"{prefix}.norm1.bias": (dim,),
        f"{prefix}.attn.qkv.weight": (3 * dim, dim), f"{prefix}.attn.qkv.bias": (3 * dim,),
        f"{prefix}.attn.proj.weight": (dim, dim), f"{prefix}.attn.proj.bias": (dim,),
        f"{prefix}.norm2.weight": (dim,), f"{prefix}.norm2.bias": (dim,),
        f"{prefix}.mlp.fc1.weight": (hidden, dim), f"{prefix}.mlp.fc1.bias": (hidden,),
        f"{prefix}.mlp.fc2.weight": (dim, hidden), f"{prefix}.mlp.fc2.bias": (dim,),
    }  # fmt: skip


def official_shapes() -> dict[str, tuple[int, ...]]:
    shapes = {
        "cls_token": (1, 1, D), "pos_embed": (1, L + 1, D),
        "patch_embed.proj.weight": (D, C, P, P), "patch_embed.proj.bias": (D,),
        "norm.weight": (D,), "norm.bias": (D,),
        "decoder_embed.weight": (DD, D), "decoder_embed.bias": (DD,),
        "mask_token": (1, 1, DD), "decoder_pos_embed": (1, L + 1, DD),
        "decoder_norm.weight": (DD,), "decoder_norm.bias": (DD,),
        "decoder_pred.weight": (P * P * C, DD), "decoder_pred.bias": (P * P * C,),
    }  # fmt: skip
    for i in range(DEPTH):
        shapes |= block_shapes(f"blocks.{i}", D)
    for i in range(DDEPTH):
        shapes |= block_shapes(f"decoder_blocks.{i}", DD)
    return shapes


def official_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: 0.05 * torch.randn(shape, generator=g) for k, shape in official_shapes().items()}


def official_sincos(dim: int, grid_size: int) -> np.ndarray:
    """``get_2d_sincos_pos_embed(dim, grid_size, cls_token=True)`` of the official util/pos_embed.py."""

    def one_d(d: int, pos: np.ndarray) -> np.ndarray:
        omega = 1.0 / 10000 ** (np.arange(d // 2, dtype=np.float64) / (d / 2.0))
        out = np.einsum("m,d->md", pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    grid = np.stack(np.meshgrid(np.arange(grid_size, dtype=np.float32), np.arange(grid_size, dtype=np.float32)))
    emb = np.concatenate([one_d(dim // 2, grid[0]), one_d(dim // 2, grid[1])], axis=1)
    return np.concatenate([np.zeros([1, dim]), emb], axis=0)


def test_official_state_dict_loads_strictly_and_round_trips() -> None:
    adapter = create_adapter("mae", CONFIG)
    assert {k: tuple(v.shape) for k, v in adapter.state_dict().items()} == official_shapes()
    sd = official_state_dict()
    adapter.load_state_dict(sd, strict=True)
    assert all(torch.equal(adapter.state_dict()[k], v) for k, v in sd.items())
    imgs = torch.rand(2, C, IMG, IMG, generator=torch.Generator().manual_seed(1))
    out = adapter.generate(imgs, adapter.box_mask(2, 0.5))
    assert out.shape == imgs.shape and bool(torch.isfinite(out).all())


def test_encoder_is_the_official_encoder_part() -> None:
    adapter = create_adapter("mae", CONFIG)
    encoder = {k for k in official_shapes() if adapter.is_encoder_key(k)}
    prefixes = ("patch_embed.", "blocks.", "norm.")
    expected = {k for k in official_shapes() if k.startswith(prefixes) or k in ("cls_token", "pos_embed")}
    assert encoder == expected


@pytest.mark.parametrize("key", ["blocks.1.mlp.fc2.bias", "decoder_pred.weight", "cls_token"])
def test_missing_key_is_named(key: str) -> None:
    sd = official_state_dict()
    del sd[key]
    with pytest.raises(ValueError, match=rf"missing keys \['{key}'\]"):
        create_adapter("mae", CONFIG).load_state_dict(sd)


def test_unexpected_key_is_named() -> None:
    sd = official_state_dict() | {"head.weight": torch.zeros(10, D)}
    with pytest.raises(ValueError, match=r"unexpected keys \['head.weight'\]"):
        create_adapter("mae", CONFIG).load_state_dict(sd)


def test_non_strict_load_reports_and_keeps_the_rest() -> None:
    sd = official_state_dict() | {"head.weight": torch.zeros(10, D)}
    del sd["norm.bias"]
    missing, unexpected = create_adapter("mae", CONFIG).load_state_dict(sd, strict=False)
    assert (missing, unexpected) == (["norm.bias"], ["head.weight"])


def test_wrong_shape_is_named() -> None:
    sd = official_state_dict() | {"decoder_embed.weight": torch.zeros(DD + 1, D)}
    with pytest.raises(ValueError, match=r"'decoder_embed.weight' has shape \(33, 48\).*expects \(32, 48\)"):
        create_adapter("mae", CONFIG).load_state_dict(sd)


def test_position_tables_are_the_official_sincos() -> None:
    sd = create_adapter("mae", CONFIG).state_dict()
    np.testing.assert_allclose(sd["pos_embed"][0].numpy(), official_sincos(D, IMG // P), atol=1e-6)
    np.testing.assert_allclose(sd["decoder_pos_embed"][0].numpy(), official_sincos(DD, IMG // P), atol=1e-6)


def test_patchify_is_the_official_channel_last_order() -> None:
    model = create_adapter("mae", CONFIG).model
    imgs = torch.rand(2, C, IMG, IMG)
    h = IMG // P
    x = imgs.reshape(2, 3, h, P, h, P)
    expected = torch.einsum("nchpwq->nhwpqc", x).reshape(2, h * h, P * P * 3)  # official patchify
    assert torch.equal(model.patchify(imgs), expected)
    assert torch.equal(model.unpatchify(expected), imgs)


def test_given_mask_matches_official_random_masking() -> None:
    """Official path: keep the lowest-noise tokens in noise order; ours: same tokens, index order."""
    adapter = create_adapter("mae", CONFIG, seed=3)
    model = adapter.model
    imgs = torch.rand(2, C, IMG, IMG, generator=torch.Generator().manual_seed(0))
    noise = torch.rand(2, L, generator=torch.Generator().manual_seed(1))
    keep = int(L * 0.25)
    ids_shuffle = torch.argsort(noise, dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    mask = torch.ones(2, L)
    mask[:, :keep] = 0
    mask = torch.gather(mask, 1, ids_restore).bool()
    with torch.no_grad():
        x = model.patch_embed(model.normalize(imgs)) + model.pos_embed[:, 1:, :]
        x = torch.gather(x, 1, ids_shuffle[:, :keep].unsqueeze(-1).expand(-1, -1, D))
        x = torch.cat([(model.cls_token + model.pos_embed[:, :1]).expand(2, -1, -1), x], dim=1)
        for blk in model.blocks:
            x = blk(x)
        official = model.forward_decoder(model.norm(x), ids_restore)
        ours = model(imgs, mask)
    torch.testing.assert_close(ours, official, atol=1e-5, rtol=1e-5)


def test_config_validation_is_clear() -> None:
    with pytest.raises(ValueError, match="not a multiple of patch_size"):
        MAEConfig(image_size=30, patch_size=8)
    with pytest.raises(ValueError, match="pixel_mean and pixel_std need 1 values"):
        MAEConfig(**{**CONFIG, "in_chans": 1})
    with pytest.raises(ValueError, match="mask_ratio"):
        MAEConfig(**{**CONFIG, "mask_ratio": 1.0})
    assert MAEConfig.from_dict(MAEConfig(**CONFIG).to_dict()) == MAEConfig(**CONFIG)


def test_mae_latent_counts_visible_tokens_plus_cls() -> None:
    from tests.unlearn.tiny_models import make_images, make_tiny

    adapter = make_tiny("mae")
    mask = adapter.random_mask(3, torch.Generator().manual_seed(0))  # (3, L)
    latent = adapter.encode(make_images(adapter, 3, seed=1), mask)
    assert latent.ndim == 3 and latent.shape[:2] == (3, int((~mask[0]).sum()) + 1)


def test_mae_generate_is_reconstruct_clamped_with_the_visible_pixels_copied() -> None:
    from tests.unlearn.tiny_models import make_images, make_tiny

    adapter = make_tiny("mae")
    imgs = make_images(adapter, 3, seed=4)
    mask = adapter.random_mask(3, torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = adapter.reconstruct(imgs, mask)
    assert torch.equal(torch.where(adapter.hidden_pixels(mask), out.clamp(0, 1), imgs), adapter.generate(imgs, mask))
