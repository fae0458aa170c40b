"""Judge a candidate against its base on the same fixed inputs, and the publish gate (ALGORITHM.md §5).

Sets: the forget samples; a retain-side hold-out (retain-source images kept out of the unlearning
run); a never-trained reference (proxy images of the forget samples' classes) where one exists.
Tasks: centre boxes of a quarter and half of the side, and random masking at the training ratio.
The gate compares means over tasks, so no single mask geometry decides alone.
"""

from dataclasses import dataclass
from typing import Any

import torch

from worker.unlearn.metrics import TASKS, evaluate

# Defaults chosen from measurements on the demo model (benchmarks/gate.py -> benchmarks/results/gate.json,
# explained in README "Publish gate"); a model may override any of them, and null disables a check.
DEFAULT_GATE: dict[str, float | None] = {
    "retain_max_psnr_drop": 0.75,  # measured 0.17 (class) / 0.26 (10 samples)
    "retain_max_cosine_drop": 0.02,  # measured -0.0002 / 0.0006
    "forget_min_cosine_drop": 0.05,  # measured 0.129 / 0.085
    "forget_min_psnr_drop": 2.0,  # measured 4.60 / 3.87
    "forget_max_cosine_over_reference": 0.02,  # measured -0.001 / -0.082; 0.02 absorbs sampling noise
}

DESCRIPTIONS = {
    "retain_max_psnr_drop": "retain hold-out PSNR (dB, mean over tasks) may drop by at most this much",
    "retain_max_cosine_drop": "retain hold-out feature cosine may drop by at most this much",
    "forget_min_cosine_drop": "forget-set feature cosine must drop by at least this much",
    "forget_min_psnr_drop": "forget-set PSNR (dB, mean over tasks) must drop by at least this much",
    "forget_max_cosine_over_reference": "after unlearning, forget-set cosine may exceed the never-trained reference's by at most this much",
}


@dataclass(frozen=True)
class GateResult:
    passed: bool
    thresholds: dict[str, float | None]
    checks: list[dict[str, Any]]

    @property
    def failures(self) -> list[dict[str, Any]]:
        return [c for c in self.checks if not c["passed"]]

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "thresholds": self.thresholds, "checks": self.checks}


@torch.no_grad()
def evaluate_sets(base, candidate, sets: dict[str, torch.Tensor], features, *, seed: int) -> dict[str, dict[str, Any]]:
    """{set: {"before": {task: metrics}, "after": {task: metrics}}} for every non-empty set."""
    results = {}
    for name, images in sets.items():
        if images is None or len(images) == 0:
            continue
        results[name] = {
            "before": evaluate(base, images, features, seed=seed),
            "after": evaluate(candidate, images, features, seed=seed),
        }
    return results


def task_mean(metrics: dict[str, dict[str, float | None]], key: str) -> float | None:
    """Mean over tasks; None when the metric was not computed (no feature network for cosine)."""
    values = [metrics[t][key] for t in TASKS]
    return None if any(v is None for v in values) else sum(values) / len(values)


def check_gate(results: dict[str, dict[str, Any]], overrides: dict[str, float | None]) -> GateResult:
    thresholds = {**DEFAULT_GATE, **{k: v for k, v in overrides.items() if k in DEFAULT_GATE}}
    mean = {(s, when, k): task_mean(results[s][when], k) for s in results for when in ("before", "after")
            for k in ("psnr", "cosine")}
    mean = {key: value for key, value in mean.items() if value is not None}
    values: dict[str, tuple[float | None, str]] = {
        "retain_max_psnr_drop": (_drop(mean, "retain", "psnr"), "max"),
        "retain_max_cosine_drop": (_drop(mean, "retain", "cosine"), "max"),
        "forget_min_cosine_drop": (_drop(mean, "forget", "cosine"), "min"),
        "forget_min_psnr_drop": (_drop(mean, "forget", "psnr"), "min"),
        "forget_max_cosine_over_reference": (
            mean[("forget", "after", "cosine")] - mean[("reference", "after", "cosine")]
            if ("reference", "after", "cosine") in mean else None,
            "max",
        ),
    }
    checks = []
    for name, threshold in thresholds.items():
        value, kind = values[name]
        if threshold is None or value is None:
            checks.append({"name": name, "value": value, "threshold": threshold, "passed": True, "margin": None,
                           "description": DESCRIPTIONS[name], "evaluated": False})
            continue
        margin = threshold - value if kind == "max" else value - threshold
        checks.append({"name": name, "value": round(value, 6), "threshold": threshold, "passed": margin >= 0,
                       "margin": round(margin, 6), "description": DESCRIPTIONS[name], "evaluated": True})
    return GateResult(passed=all(c["passed"] for c in checks), thresholds=thresholds, checks=checks)


def _drop(mean: dict, name: str, key: str) -> float | None:
    if (name, "before", key) not in mean:
        return None
    return mean[(name, "before", key)] - mean[(name, "after", key)]
