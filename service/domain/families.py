"""The model families a checkpoint may name: the built-in ones and those installed as plugins.

A plugin package declares its adapter under the entry-point group `oblivio.families`; the API
reads the names only (it imports nothing: the adapters need torch, which only workers have).
"""

from importlib.metadata import entry_points

ENTRY_POINT_GROUP = "oblivio.families"
BUILTIN_FAMILIES = frozenset({"diffusion", "mae"})


def known_families() -> frozenset[str]:
    return BUILTIN_FAMILIES | {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
