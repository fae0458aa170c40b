"""Built-in model families, one folder each: its adapter, pre-training recipe and evaluation hooks.

Importing this package registers every built-in family; plugin families arrive through the
``oblivio.families`` entry points (see ``adapters/registry.py``). The loop, methods, cache and
metrics never import a family: they reach one only through the Adapter contract and the registry.
"""

from . import diffusion, gan, mae

__all__ = ["diffusion", "gan", "mae"]
