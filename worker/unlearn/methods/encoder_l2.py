"""Encoder-L2 (ALGORITHM.md §2), the default: the loop in :mod:`worker.unlearn.loop`, unchanged."""

from __future__ import annotations

from ..loop import run_unlearning
from .registry import NoParams, register_method


@register_method(
    "encoder_l2", trains="encoder", params_class=NoParams,
    summary="encoder latents of forget inputs pulled to the teacher's latents of noise or substitute proxy "
            "images (config forget_target); retain latents kept",
)  # fmt: skip
def encoder_l2(adapter, forget, retain, config, params: NoParams, on_step, stop):
    return run_unlearning(adapter, forget, retain, config, on_step, stop=stop)
