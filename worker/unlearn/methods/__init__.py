"""Unlearning methods behind one interface: :func:`run_method` (ALGORITHM.md §2–§4).

=================  ==========  ==================================================================
method             trains      forget term (retain term: keep the retain rows as they were)
=================  ==========  ==================================================================
encoder_l2         encoder     latents of forget inputs -> teacher latents of noise (the default)
max_loss           generator   reconstruction error of forget rows maximised
noisy_label        generator   forget inputs reconstruct noise images
retain_label       generator   forget inputs reconstruct the teacher's outputs for retain images
random_encoder     encoder     latents of forget inputs -> random vectors (teacher latent stats)
gradient_surgery   encoder     forget gradient projected off the retain gradient on conflict
gan_cascade        generator   samplers (GANs) only: substitutes, fake label for D, cascaded stages
=================  ==========  ==================================================================

Family-specific methods live in their family's folder (gan_cascade: families/gan/cascade.py) and
register themselves here when the families are imported (below).
"""

from . import encoder_l2, gradient_surgery, output_space, random_encoder  # noqa: F401  (registration)
from .gradient_surgery import GradientSurgeryParams
from .output_space import MaxLossParams
from .registry import (
    PARAMS_KEY,
    MethodSpec,
    NoParams,
    get_method,
    list_methods,
    make_params,
    params_to_dict,
    parse_method_config,
    run_method,
)
from .. import families  # noqa: E402,F401  (family-specific methods register on import)

__all__ = [
    "PARAMS_KEY",
    "GradientSurgeryParams",
    "MaxLossParams",
    "MethodSpec",
    "NoParams",
    "get_method",
    "list_methods",
    "make_params",
    "params_to_dict",
    "parse_method_config",
    "run_method",
]
