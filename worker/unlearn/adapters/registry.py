"""Registry and factory of model families (timm's ``@register_model`` / ``create_model``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any, TypeVar

from .base import Adapter

A = TypeVar("A", bound=type[Adapter])

ENTRY_POINT_GROUP = "oblivio.families"  # plugin packages declare `name = "package.module:AdapterClass"`
_FAMILIES: dict[str, type[Adapter]] = {}


def register_family(name: str) -> Callable[[A], A]:
    """Class decorator: register an ``Adapter`` subclass under ``name`` and set its ``family``."""

    def decorate(cls: A) -> A:
        if name in _FAMILIES and _FAMILIES[name] is not cls:
            raise ValueError(f"model family {name!r} is already registered by {_FAMILIES[name].__name__}")
        cls.family = name
        _FAMILIES[name] = cls
        return cls

    return decorate


def list_families() -> list[str]:
    """Registered family names, sorted."""
    return sorted(_FAMILIES)


def family_class(family: str) -> type[Adapter]:
    """The adapter class of ``family``, importing its plugin if one is installed; ValueError otherwise."""
    if family not in _FAMILIES:
        _load_plugin(family)
    try:
        return _FAMILIES[family]
    except KeyError:
        raise ValueError(f"unknown model family {family!r}; known families: {list_families()}") from None


def _load_plugin(family: str) -> None:
    """Import the adapter a package declares under the entry-point group; it registers itself when imported."""
    for entry_point in entry_points(group=ENTRY_POINT_GROUP, name=family):
        loaded = entry_point.load()
        if isinstance(loaded, type) and issubclass(loaded, Adapter) and family not in _FAMILIES:
            register_family(family)(loaded)


def create_adapter(family: str, config: Mapping[str, Any] | Any, *, seed: int = 0) -> Adapter:
    """Build a freshly initialised adapter of ``family``.

    config: a dict of the family's config fields (unknown keys are a ValueError) or an instance of
    its config dataclass. ``seed`` makes the weight initialisation deterministic without touching
    the global RNG.
    """
    cls = family_class(family)
    if not isinstance(config, cls.config_class):
        config = cls.config_class.from_dict(dict(config))
    return cls(config, seed=seed)
