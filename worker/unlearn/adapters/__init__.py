"""The Adapter contract and the family registry. The families themselves live in ``..families``."""

from .base import Adapter
from .masks import PatchMasks
from .registry import create_adapter, family_class, list_families, register_family

__all__ = [
    "Adapter",
    "PatchMasks",
    "create_adapter",
    "family_class",
    "list_families",
    "register_family",
]
