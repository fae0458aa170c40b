"""Class evidence: does an independent classifier still recognise a forgotten class in the model's outputs?

Inputs are held-out (never-trained) images of the forgotten classes; the generator fills the hidden
region under random masking (the model's ratio, :data:`~worker.unlearn.mia.RANDOM_DRAWS` draws) and
under the half-side centre box, and the model's feature network (an independent classifier) labels
each output. The *recognition rate* is the fraction labelled with the image's own class, per mask kind.

The never-trained level. The right reference is the same architecture retrained without the class
(ALGORITHM.md §5); a job does not have one. What a job can compute is the rate on the masked *inputs*
themselves, the hidden pixels set to the model's pixel mean: what the visible pixels alone say, with no
generator knowledge added ("visible-only"). A model that never saw the class can only add evidence for
it by continuing visible structure, so its rate sits near this level; the benchmarks (retrained rows)
measure how near. The gate check asks that after unlearning, for every mask kind, the rate exceeds
the visible-only level by at most a margin. It is one-sided: a rate far *below* that level is reported,
not gated (the feature network then reads the fills as another class, which the retain side and the
membership verdict's lower side watch).

Rates are computed from :class:`~worker.unlearn.mia.MaskedPass` predictions: no extra forward passes.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .mia import BOXES, RANDOM_DRAWS, MaskedPass

KINDS = {"random": list(range(RANDOM_DRAWS)), "box_50": [RANDOM_DRAWS + list(BOXES).index("box_50")]}


def class_indices(class_names: list[str] | None, labels: list[str]) -> Tensor | None:
    """(N,) the classifier's index of each label, or None when any label is not one of its classes."""
    if not class_names or any(label not in class_names for label in labels):
        return None
    return torch.tensor([class_names.index(label) for label in labels])


def _rates(predictions: Tensor, targets: Tensor) -> dict[str, float]:
    """predictions (N, M), targets (N,) -> {kind: fraction of the kind's columns equal to the target}."""
    hits = predictions == targets[:, None]  # (N, M) bool
    return {kind: round(float(hits[:, cols].double().mean()), 6) for kind, cols in KINDS.items()}


def recognition(before: MaskedPass, after: MaskedPass, targets: Tensor) -> dict:
    """Recognition rates per mask kind: base outputs, candidate outputs, visible-only inputs.

    before, after: passes over the same held-out forget-class images with a classifier; targets: (N,).
    ``excess_over_reference`` is the gate's value: the largest after - visible-only over mask kinds.
    """
    rates = {
        "before": _rates(before.predictions, targets),
        "after": _rates(after.predictions, targets),
        "visible_only": _rates(after.visible_predictions, targets),
    }
    excess = max(rates["after"][k] - rates["visible_only"][k] for k in KINDS)
    return {"n": int(targets.numel()), **rates, "excess_over_reference": round(excess, 6)}
