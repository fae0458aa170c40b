"""Registry of unlearning methods and the one dispatcher every caller goes through.

A method is a function ``run(adapter, forget, retain, config, params, on_step, stop) -> UnlearnResult``
registered under a name, with the frozen dataclass of its own parameters and what it trains
("encoder": the decoder stays bit-identical; "generator": the whole model). The shared
hyper-parameters (lr, alpha, steps, batch size, seed …) are :class:`EncoderL2Config` for all of
them, so one request config validates the same way whatever the method.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from torch import Tensor

from ..adapters.base import Adapter
from ..config import EncoderL2Config
from ..loop import StepInfo, StopCheck, UnlearnResult

PARAMS_KEY = "params"  # the key of a job config that holds the method's own parameters

Runner = Callable[..., UnlearnResult]


@dataclass(frozen=True)
class MethodSpec:
    name: str
    trains: Literal["encoder", "generator"]
    params_class: type
    run: Runner
    summary: str
    kind: Literal["masked", "sampler"] = "masked"  # the adapter kind it works on (adapters/sampler.py)


_METHODS: dict[str, MethodSpec] = {}


def register_method(
    name: str, *, trains: Literal["encoder", "generator"], params_class: type, summary: str,
    kind: Literal["masked", "sampler"] = "masked",
) -> Callable[[Runner], Runner]:
    """Decorator: register ``run`` as method ``name`` (for adapters of ``kind``)."""

    def decorate(run: Runner) -> Runner:
        if name in _METHODS:
            raise ValueError(f"unlearning method {name!r} is already registered")
        _METHODS[name] = MethodSpec(name, trains, params_class, run, summary, kind)
        return run

    return decorate


def list_methods(kind: str | None = None) -> list[str]:
    """Registered method names, sorted; ``kind``: only those for that adapter kind ("masked", "sampler")."""
    return sorted(name for name, spec in _METHODS.items() if kind is None or spec.kind == kind)


def get_method(name: str) -> MethodSpec:
    if name not in _METHODS:
        raise ValueError(f"unknown unlearning method {name!r}; known methods: {list_methods()}")
    return _METHODS[name]


def make_params(name: str, params: Mapping[str, Any] | None = None) -> Any:
    """Method ``name``'s validated parameter dataclass from a JSON-like mapping (None = defaults).

    Unknown keys and bad values are a ValueError naming the method and the parameter.
    """
    spec = get_method(name)
    params = dict(params or {})
    known = [f.name for f in dataclasses.fields(spec.params_class)]
    unknown = sorted(set(params) - set(known))
    if unknown:
        takes = f"its parameters are {known}" if known else "it takes no parameters"
        raise ValueError(f"unknown parameter(s) {unknown} for method {name!r}; {takes}")
    try:
        return spec.params_class(**params)
    except ValueError as err:
        raise ValueError(f"invalid parameters for method {name!r}: {err}") from None


def parse_method_config(
    name: str, config: Mapping[str, Any], defaults: EncoderL2Config | None = None
) -> tuple[EncoderL2Config, Any]:
    """Split a job config into the shared :class:`EncoderL2Config` and method ``name``'s parameters.

    config: the shared keys plus, optionally, ``"params"``: {parameter: value}; a shared key it
    leaves out comes from ``defaults`` (default: the class defaults). Unknown keys are a ValueError.
    """
    spec = get_method(name)
    shared = {k: v for k, v in config.items() if k != PARAMS_KEY}
    return (defaults or EncoderL2Config()).replace(**shared), make_params(spec.name, config.get(PARAMS_KEY))


def run_method(
    name: str,
    adapter: Adapter,
    forget: Tensor,
    retain: Tensor,
    config: EncoderL2Config,
    on_step: Callable[[StepInfo], None] | None = None,
    *,
    params: Any = None,
    stop: StopCheck | None = None,
) -> UnlearnResult:
    """Run unlearning method ``name``; ``params``: its dataclass, a mapping, or None (defaults).

    forget: (N_f, C, H, W), retain: (N_r, C, H, W), floats in [0, 1]; ``adapter`` is not modified.
    """
    spec = get_method(name)
    if not isinstance(params, spec.params_class):
        params = make_params(name, params)
    return spec.run(adapter, forget, retain, config, params, on_step, stop)


def params_to_dict(params: Any) -> dict[str, Any]:
    return dataclasses.asdict(params)


@dataclass(frozen=True)
class NoParams:
    """The parameters of a method that has none beyond the shared config."""
