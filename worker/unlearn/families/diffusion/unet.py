"""The parts of a diffusers ``UNet2DModel`` the family needs: lazy import, the encoder pass, schedulers.

``diffusers`` is an optional dependency of the worker (extra ``worker``); it is imported on first use so
the MAE family and the API never load it. Its UNet pulls in torchvision, which needs the CPU-only
workaround of :mod:`worker.unlearn.tv` first.
"""

from __future__ import annotations

import functools
import types
from typing import Any

import torch
from torch import Tensor, nn

from ...tv import import_torchvision


@functools.cache
def diffusers() -> types.ModuleType:
    """The ``diffusers`` module; ImportError naming the extra when it is not installed."""
    import_torchvision()
    try:
        import diffusers as module
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("the diffusion family needs diffusers: pip install 'oblivio[worker]'") from err
    return module


def build_unet(unet_config: dict[str, Any], seed: int) -> nn.Module:
    """A ``UNet2DModel`` from its config dict; weights initialised from ``seed`` (global RNG untouched).

    ``from_config`` as diffusers itself reads a ``config.json`` (keys of other diffusers versions that
    this one does not know are ignored with a warning; the weights are then checked strictly by name
    and shape).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return diffusers().UNet2DModel.from_config(unet_config)


def time_embedding(unet: nn.Module, timesteps: Tensor, n: int, dtype: torch.dtype) -> Tensor:
    """(N, D_t) timestep embedding, exactly as ``UNet2DModel.forward`` computes it (no class labels)."""
    t = timesteps.expand(n) if timesteps.ndim else timesteps.reshape(1).expand(n)
    return unet.time_embedding(unet.time_proj(t).to(dtype=dtype))


def down_and_middle(unet: nn.Module, sample: Tensor, timesteps: Tensor) -> list[Tensor]:
    """The encoder's outputs: every skip connection of the down path, then the middle block's output.

    sample: (N, C_in, H, W) the UNet's input; timesteps: (N,) long. The list is the one
    ``UNet2DModel.forward`` builds (``down_block_res_samples``: ``conv_in``'s output, then every
    resnet's and downsampler's output) with the middle block's output appended, the ``hs`` list that
    the authors' Palette fork compares (``return_feat=True``). Every map is an input of the decoder
    (the up path reads the skips), so a latent without them would leave most of ``E`` unconstrained.
    """
    if unet.config.center_input_sample:
        sample = 2 * sample - 1.0
    emb = time_embedding(unet, timesteps, sample.shape[0], sample.dtype)
    skip = sample
    h = unet.conv_in(sample)
    feats = [h]
    for block in unet.down_blocks:
        if hasattr(block, "skip_conv"):
            h, res, skip = block(hidden_states=h, temb=emb, skip_sample=skip)
        else:
            h, res = block(hidden_states=h, temb=emb)
        feats.extend(res)
    if unet.mid_block is not None:
        feats.append(unet.mid_block(h, emb))
    return feats


def schedulers(num_train_timesteps: int, beta_schedule: str, beta_start: float, beta_end: float):
    """(DDPMScheduler for training and noising, DDIMScheduler for sampling), epsilon prediction."""
    d = diffusers()
    common = dict(num_train_timesteps=num_train_timesteps, beta_schedule=beta_schedule,
                  beta_start=beta_start, beta_end=beta_end, prediction_type="epsilon", clip_sample=True)
    ddim = d.DDIMScheduler(**common, set_alpha_to_one=True, timestep_spacing="trailing")
    return d.DDPMScheduler(**common), ddim
