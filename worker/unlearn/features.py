"""The evaluation feature space: a small independent CNN classifier (ALGORITHM.md §5).

Its penultimate activations are the default space for the feature cosine similarity and the
Fréchet distance of the metrics. It is trained separately from any generator
(:mod:`worker.unlearn.train_classifier`) and stored as safetensors with a JSON header in the
metadata key ``"oblivio"``::

    {"format": "oblivio.feature_net", "version": 1, "arch": {...FeatureNetConfig...},
     "class_names": [...], "recipe": {...}, "test_accuracy": 0.91}
"""

from __future__ import annotations

import dataclasses
import json
import os
import struct
from pathlib import Path

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save_file
from torch import nn

FORMAT = "oblivio.feature_net"
FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class FeatureNetConfig:
    """Architecture of a :class:`FeatureNet`; saved in the checkpoint header."""

    in_channels: int = 1
    image_size: int = 28
    widths: tuple[int, ...] = (16, 32, 64)  # channels of the conv stages, each halves H and W
    feature_dim: int = 128  # F, the penultimate (feature) width
    num_classes: int = 10
    pixel_mean: float = 0.286  # input normalisation (Fashion-MNIST train statistics)
    pixel_std: float = 0.353

    def __post_init__(self) -> None:
        object.__setattr__(self, "widths", tuple(self.widths))  # JSON gives a list
        if self.image_size < 2 ** len(self.widths):
            raise ValueError(f"image_size {self.image_size} too small for {len(self.widths)} stages")


class FeatureNet(nn.Module):
    """conv stages (3x3 conv, BatchNorm, 2x2 max-pool, ReLU) -> flatten -> F-d ReLU features -> logits.

    Input: (N, C, H, W) in [0, 1], normalised inside with the config's pixel mean and std.
    """

    def __init__(self, config: FeatureNetConfig) -> None:
        super().__init__()
        self.config = config
        stages, channels, side = [], config.in_channels, config.image_size
        for width in config.widths:
            stages += [
                nn.Conv2d(channels, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.MaxPool2d(2),  # floor: 28 -> 14 -> 7 -> 3
                nn.ReLU(inplace=True),  # after the pool: same result (ReLU is monotone), 4x less work
            ]
            channels, side = width, side // 2
        self.stages = nn.Sequential(*stages)
        self.embed = nn.Linear(channels * side * side, config.feature_dim)
        self.head = nn.Linear(config.feature_dim, config.num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, C, H, W) in [0, 1] -> penultimate features (N, F), non-negative."""
        cfg = self.config
        expected = (cfg.in_channels, cfg.image_size, cfg.image_size)
        if tuple(x.shape[1:]) != expected:
            raise ValueError(f"FeatureNet expects (N, {expected}) input, got {tuple(x.shape)}")
        x = (x - cfg.pixel_mean) / cfg.pixel_std  # (N, C, H, W)
        x = self.stages(x)  # (N, widths[-1], H / 2^k, W / 2^k)
        return torch.relu(self.embed(x.flatten(1)))  # (N, F)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, C, H, W) in [0, 1] -> class logits (N, num_classes)."""
        return self.head(self.features(x))  # (N, K)


def save_feature_net(path: str | os.PathLike, net: FeatureNet, header: dict) -> None:
    """Write ``net``'s weights and a JSON header (arch added here) as safetensors."""
    meta = {"format": FORMAT, "version": FORMAT_VERSION, "arch": dataclasses.asdict(net.config)}
    meta.update(header)
    tensors = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    save_file(tensors, str(path), metadata={"oblivio": json.dumps(meta, sort_keys=True)})


def read_header(source: str | os.PathLike | bytes) -> dict:
    """The ``"oblivio"`` JSON header of a safetensors file or its bytes (u64 length, JSON, tensor bytes)."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    metadata = json.loads(data[8 : 8 + length]).get("__metadata__") or {}
    if "oblivio" not in metadata:
        raise ValueError("not an Oblivio checkpoint: no 'oblivio' header in the safetensors metadata")
    return json.loads(metadata["oblivio"])


def load_feature_net(path_or_bytes: str | os.PathLike | bytes) -> FeatureNet:
    """Load a FeatureNet (eval mode, no grad) from a safetensors file or its bytes.

    The header's ``"oblivio"`` metadata (format, arch, class names, recipe, accuracy) is kept
    on the module as ``net.header``. Only safetensors is read; a pickle is never unpickled.
    """
    data = path_or_bytes if isinstance(path_or_bytes, bytes) else Path(path_or_bytes).read_bytes()
    header = read_header(data)
    if header.get("format") != FORMAT or header.get("version") != FORMAT_VERSION:
        raise ValueError(f"not a feature net checkpoint: format {header.get('format')!r} "
                         f"version {header.get('version')!r}")  # fmt: skip
    net = FeatureNet(FeatureNetConfig(**header["arch"]))
    net.load_state_dict(load_safetensors(data), strict=True)
    net.header = header
    return net.eval().requires_grad_(False)
