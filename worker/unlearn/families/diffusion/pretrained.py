"""A user's diffusers UNet (``save_pretrained`` folder) -> an Oblivio checkpoint of the diffusion family.

    python -m worker.unlearn.families.diffusion.pretrained FOLDER OUT.safetensors [--pixel-mean 0.5 ...]

The folder holds ``config.json`` and ``diffusion_pytorch_model.safetensors``, what
``UNet2DModel.save_pretrained`` writes. The UNet must be a Palette-style inpainter: ``in_channels`` =
2 * ``out_channels`` + 1 (noisy target, masked image, mask), square ``sample_size``. Its tensors load
strictly (every key, every shape) into the UNet its config describes; the file keeps diffusers' key
names, so ``UNet2DModel.from_pretrained`` can read the weights back after unlearning.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from safetensors.torch import load_file

from ...checkpoint import checkpoint_to_bytes
from .adapter import DiffusionAdapter, DiffusionConfig

WEIGHTS = "diffusion_pytorch_model.safetensors"


def config_from_pretrained(folder: Path, **fields: Any) -> DiffusionConfig:
    """The family config of a ``save_pretrained`` folder; ``fields``: the DiffusionConfig fields besides ``unet``."""
    unet = {k: v for k, v in json.loads((Path(folder) / "config.json").read_text()).items() if not k.startswith("_")}
    size = unet.get("sample_size")
    if isinstance(size, list):
        if len(set(size)) != 1:
            raise ValueError(f"the diffusion family takes square images, sample_size is {size}")
        size = size[0]
    channels = unet.get("out_channels", 3)
    if unet.get("in_channels") != 2 * channels + 1:
        raise ValueError(f"in_channels {unet.get('in_channels')} is not 2 * out_channels + 1 = {2 * channels + 1}: "
                         "not a Palette-style inpainter (noisy target, masked image, mask)")
    mean = fields.pop("pixel_mean", [0.5] * channels)
    std = fields.pop("pixel_std", [0.5] * channels)
    return DiffusionConfig.from_dict({"image_size": size, "in_chans": channels, "unet": unet,
                                      "pixel_mean": mean, "pixel_std": std, **fields})


def adapter_from_pretrained(folder: Path, **fields: Any) -> DiffusionAdapter:
    """The adapter with the folder's weights, loaded strictly (ValueError naming missing/unexpected keys)."""
    adapter = DiffusionAdapter(config_from_pretrained(folder, **fields))
    adapter.load_state_dict(load_file(str(Path(folder) / WEIGHTS)), strict=True)
    adapter.model.eval()
    return adapter


def checkpoint_from_pretrained(folder: Path, header: dict[str, Any] | None = None, **fields: Any) -> bytes:
    """The Oblivio checkpoint bytes (ready for ``POST /models``) of a ``save_pretrained`` folder."""
    return checkpoint_to_bytes(adapter_from_pretrained(folder, **fields), header)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker.unlearn.families.diffusion.pretrained",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--pixel-mean", type=float, nargs="+")
    parser.add_argument("--pixel-std", type=float, nargs="+")
    parser.add_argument("--patch-size", type=int)
    parser.add_argument("--sample-steps", type=int)
    args = parser.parse_args(argv)
    fields = {k: v for k, v in (("pixel_mean", args.pixel_mean), ("pixel_std", args.pixel_std),
                                ("patch_size", args.patch_size), ("sample_steps", args.sample_steps)) if v}
    args.out.write_bytes(checkpoint_from_pretrained(args.folder, {"source": str(args.folder)}, **fields))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
