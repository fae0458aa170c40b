"""Judge a candidate against its base on the same fixed inputs (ALGORITHM.md §5).

Sets: the forget samples; a retain-side hold-out (retain-source images kept out of the unlearning
run); a never-seen reference (proxy images of the forget samples' classes) where one exists.
Quality metrics per set (worker/unlearn/metrics.py): centre boxes of a quarter and half of the side,
and random masking at the training ratio. Membership inference (worker/unlearn/mia.py): forget
images against the never-seen reference. Class evidence (worker/unlearn/class_evidence.py): the
feature network on the outputs for the reference's images of the classes forgotten whole.

A :class:`Judge` computes every base-side number once, so judging a candidate costs its forward
passes only: the pipeline judges the final candidate with it, and a small probe split every K steps.
The publish gate reading these numbers lives in worker/gate.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from worker.unlearn.class_evidence import class_indices, recognition
from worker.unlearn.metrics import evaluate
from worker.unlearn.mia import MaskedPass, masked_pass, membership


@dataclass(frozen=True)
class EvalSets:
    """Images a candidate is judged on, (N, C, H, W) in [0, 1] each.

    reference: never-seen images of the forget samples' classes, ``reference_labels`` their classes;
    ``forget_classes``: the classes forgotten whole (class evidence is asked for those only).
    """

    forget: Tensor
    retain: Tensor
    reference: Tensor | None
    reference_labels: list[str] = field(default_factory=list)
    forget_classes: list[str] = field(default_factory=list)
    forget_labels: list[str] | None = None  # one per forget row: membership is then judged within classes

    def quality_sets(self) -> dict[str, Tensor]:
        sets = {"forget": self.forget, "retain": self.retain, "reference": self.reference}
        return {name: images for name, images in sets.items() if images is not None and len(images)}


@dataclass(frozen=True)
class Judgement:
    """Everything the gate reads. ``unavailable``: {section: why it could not be computed}."""

    metrics: dict[str, dict[str, Any]]
    membership: dict[str, Any] | None
    class_evidence: dict[str, Any] | None
    unavailable: dict[str, str]


class Judge:
    """The base's numbers on ``sets``, computed once; call it with a candidate to judge that candidate."""

    @torch.no_grad()
    def __init__(self, base, sets: EvalSets, features, *, seed: int) -> None:
        self.sets, self.features, self.seed = sets, features, seed
        self.before = {name: evaluate(base, images, features, seed=seed) for name, images in sets.quality_sets().items()}
        self.unavailable: dict[str, str] = {}
        self.targets, self.rows = self._class_targets()
        if "reference" not in self.before or not len(sets.forget):
            self.unavailable["membership"] = ("no never-seen images of the forget samples' classes: the model's "
                                              "proxy set has none (or the model has no proxy set)")  # fmt: skip
            self.base_forget = self.base_never = None
            return
        self.base_forget = masked_pass(base, sets.forget, seed=seed)
        self.base_never = masked_pass(base, sets.reference, seed=seed, classify=self._classify)

    @property
    def _classify(self):
        return self.features if self.targets is not None else None

    def _class_targets(self) -> tuple[Tensor | None, Tensor | None]:
        """(targets (R,), rows (R,)) of the reference images of classes forgotten whole, or (None, None)."""
        sets = self.sets
        if not sets.forget_classes:
            self.unavailable["class_evidence"] = "not applicable: no class is forgotten whole"
            return None, None
        rows = [i for i, label in enumerate(sets.reference_labels) if label in sets.forget_classes]
        names = (getattr(self.features, "header", None) or {}).get("class_names")
        if self.features is None or not names:
            self.unavailable["class_evidence"] = "the model has no feature network with class names"
            return None, None
        targets = class_indices(names, [sets.reference_labels[i] for i in rows])
        if not rows or targets is None:
            self.unavailable["class_evidence"] = ("no held-out images of the forgotten classes that the feature "
                                                  "network knows by name")  # fmt: skip
            return None, None
        return targets, torch.tensor(rows)

    @torch.no_grad()
    def __call__(self, candidate) -> Judgement:
        sets, seed = self.sets, self.seed
        metrics = {name: {"before": self.before[name], "after": evaluate(candidate, images, self.features, seed=seed)}
                   for name, images in sets.quality_sets().items()}  # fmt: skip
        if self.base_forget is None:
            return Judgement(metrics, None, None, dict(self.unavailable))
        after_forget = masked_pass(candidate, sets.forget, seed=seed)
        after_never = masked_pass(candidate, sets.reference, seed=seed, classify=self._classify)
        labels = sets.reference_labels if sets.forget_labels is not None else None
        mia = membership(self.base_forget, self.base_never, after_forget, after_never,
                         forget_labels=sets.forget_labels, never_labels=labels)
        evidence = None
        if self.targets is not None:
            evidence = recognition(_rows(self.base_never, self.rows), _rows(after_never, self.rows), self.targets)
        return Judgement(metrics, mia, evidence, dict(self.unavailable))


def _rows(masked: MaskedPass, rows: Tensor) -> MaskedPass:
    """The pass restricted to ``rows`` (R,) of its images."""
    return MaskedPass(masked.errors[rows], masked.predictions[rows], masked.visible_predictions[rows])


def make_judge(base, sets: EvalSets, features, *, seed: int, probe: bool = False):
    """The judge for ``base``'s kind: :class:`Judge` for masked models, a sampler judge (fixed latent codes) for samplers."""
    from worker.unlearn.adapters.sampler import is_sampler

    if is_sampler(base):
        from worker.sampler_eval import PROBE_SAMPLES, SAMPLES, SamplerJudge

        return SamplerJudge(base, sets, features, seed=seed, samples=PROBE_SAMPLES if probe else SAMPLES)
    return Judge(base, sets, features, seed=seed)
