"""Stop when done: the split a run is probed on, and the stop check the unlearning loop asks.

The final evaluation judges the candidate on up to ``eval_max`` forget images, the never-seen
reference and the retain hold-out. The probe is a small split of the same three sets (at most
``PROBE_MAX`` images each), disjoint from what the final evaluation uses where the sizes allow: the
forget images beyond the evaluation subset, and a quarter of the reference and of the hold-out (kept
out of the final evaluation) when those hold at least ``4 * PROBE_MIN`` images. Otherwise the probe
reuses final images and says so. Every ``every`` steps the loop hands the student to the probe, which
runs the whole gate on the probe split with forward passes only; the run stops as soon as no check
fails *and* at least one forgetting check was evaluated (a gate that checks nothing never stops a run).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from worker.evaluation import EvalSets, Judge
from worker.gate import check_gate
from worker.unlearn import StopCheck

PROBE_MAX = 64  # images per probe set
PROBE_MIN = 16  # a set is split between probe and final evaluation only when it holds 4x this
PROBES_PER_RUN = 12  # the probe runs about this often over a run's budget ...
MIN_EVERY = 10  # ... but not more often than every this many steps


def probe_every(budget: int) -> int:
    """K: the probe interval for a run of ``budget`` steps."""
    return max(MIN_EVERY, math.ceil(budget / PROBES_PER_RUN))


@dataclass(frozen=True)
class Split:
    final: EvalSets
    probe: EvalSets
    disjoint: dict[str, bool]  # per set: the probe's images are none of the final evaluation's


def split_sets(forget: Tensor, holdout: Tensor, reference: Tensor | None, reference_labels: list[str],
               forget_classes: list[str], *, eval_max: int, seed: int, forget_labels: list[str] | None = None) -> Split:
    """The final evaluation's sets and the probe's; images (N, C, H, W), reference_labels one per reference row."""
    if len(reference_labels) != (0 if reference is None else len(reference)):
        raise ValueError(f"{len(reference_labels)} reference labels for {0 if reference is None else len(reference)} images")
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(forget), generator=gen) if len(forget) > eval_max else torch.arange(len(forget))
    final_forget, rest = order[:eval_max], order[eval_max:]
    forget_disjoint = len(rest) >= PROBE_MIN
    probe_forget = rest[:PROBE_MAX] if forget_disjoint else final_forget[:PROBE_MAX]
    retain_final, retain_probe, retain_disjoint = _split(len(holdout), gen)
    if reference is None:
        ref_final = ref_probe = None
        ref_disjoint = False
    else:
        ref_final, ref_probe, ref_disjoint = _split(len(reference), gen)
    labels = list(reference_labels)

    def sets(f: Tensor, r: Tensor, ref: Tensor | None) -> EvalSets:
        return EvalSets(forget=forget[f], retain=holdout[r], reference=None if ref is None else reference[ref],
                        reference_labels=[] if ref is None else [labels[i] for i in ref.tolist()],
                        forget_classes=list(forget_classes),
                        forget_labels=None if forget_labels is None else [forget_labels[i] for i in f.tolist()])  # fmt: skip

    return Split(final=sets(final_forget, retain_final, ref_final), probe=sets(probe_forget, retain_probe, ref_probe),
                 disjoint={"forget": forget_disjoint, "retain": retain_disjoint, "reference": ref_disjoint})  # fmt: skip


def _split(n: int, gen: torch.Generator) -> tuple[Tensor, Tensor, bool]:
    """(final rows, probe rows, disjoint) of a set of n images: a quarter (<= PROBE_MAX) to the probe when n >= 4 PROBE_MIN."""
    order = torch.randperm(n, generator=gen)
    if n < 4 * PROBE_MIN:
        return torch.arange(n), order[:PROBE_MAX], False
    k = min(PROBE_MAX, n // 4)
    return order[k:].sort().values, order[:k], True


@dataclass
class Probe:
    """The loop's stop check over a probe split; ``history`` records each probe's verdict."""

    judge: Judge
    overrides: dict[str, float | None]
    every: int
    history: list[dict[str, Any]] = field(default_factory=list)

    def done(self, student, step: int) -> bool:
        gate = check_gate(self.judge(student), self.overrides)
        done = gate.publishable and gate.forgetting_evidenced
        self.history.append({"step": step, "verdict": gate.verdict, "failed_checks": [c["name"] for c in gate.failures],
                             "done": done})  # fmt: skip
        return done

    def check(self) -> StopCheck:
        return StopCheck(every=self.every, done=self.done)

    @property
    def steps_to_verdict(self) -> int | None:
        """The step at which the probe first found the run done, or None."""
        return next((h["step"] for h in self.history if h["done"]), None)
