"""Model families behind one adapter interface. Importing this package registers every family."""

from .base import Adapter
from .mae import MAEAdapter, MAEConfig, MaskedAutoencoderViT
from .registry import create_adapter, family_class, list_families, register_family

__all__ = [
    "Adapter",
    "MAEAdapter",
    "MAEConfig",
    "MaskedAutoencoderViT",
    "create_adapter",
    "family_class",
    "list_families",
    "register_family",
]
