"""Oblivio's unlearning core: a pure PyTorch library (torch, numpy, Pillow, standard library; the
diffusion family adds diffusers, imported on first use).

Model families sit behind :class:`Adapter` and a registry (:func:`create_adapter`); encoder-L2
unlearning is :func:`run_unlearning`; checkpoints are safetensors with a JSON header.
"""

from .adapters import Adapter, create_adapter, family_class, list_families, register_family
from .checkpoint import (
    CheckpointError,
    checkpoint_from_bytes,
    checkpoint_to_bytes,
    load_checkpoint,
    read_header,
    save_checkpoint,
)
from .config import EncoderL2Config
from .families.mae import MAEAdapter, MAEConfig
from .loop import NonFiniteLoss, StepInfo, StopCheck, UnlearnResult, run_unlearning

__all__ = [
    "Adapter",
    "CheckpointError",
    "EncoderL2Config",
    "MAEAdapter",
    "MAEConfig",
    "NonFiniteLoss",
    "StepInfo",
    "StopCheck",
    "UnlearnResult",
    "checkpoint_from_bytes",
    "checkpoint_to_bytes",
    "create_adapter",
    "family_class",
    "list_families",
    "load_checkpoint",
    "read_header",
    "register_family",
    "run_unlearning",
    "save_checkpoint",
]
