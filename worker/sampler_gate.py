"""The publish gate for samplers (GANs): thresholds over a :class:`~worker.sampler_eval.SamplerJudgement`.

Statuses and verdicts as in worker/gate.py (passed, failed, disabled, not_evaluated, not_applicable).
A model's ``gate_thresholds`` may override these names like any other check; null disables one.

Thresholds, measured on the demo GAN (benchmarks/gan_retrain.py -> benchmarks/results/gan_retrain.json,
README "GAN family"). A threshold the GAN retrained without the forget set would fail is not honest:
each default below is met by that retrained reference.

- ``sampler_class_max_share_ratio`` 0.75: after unlearning, a forgotten class may keep at most this
  fraction of the base's share of generated samples. The target is the share of a GAN retrained
  without the class, which is not available at job time (retraining is what unlearning avoids).
  On the demo (class sandal) the base's share is 0.132, the retrained GAN's 0.088 (ratio 0.67: the
  classifier calls some of its blurry sneakers and boots sandals), the cascade's 0.004 (ratio 0.03).
  0.75 lets the retrained reference pass and fails a model that did not change (ratio 1).
- ``sampler_mia_max_auc_above_chance`` 0.05: the nearest-neighbour membership AUC (forget vs
  never-seen images) may exceed 0.5 by at most delta, delta widened to 2 null standard deviations
  for small sets (worker/unlearn/mia.py ``tolerance``): the forget images are not closer to what
  the model generates than images it never saw.
- ``sampler_mia_max_auc_below_chance`` 0.05: the AUC may fall below min(0.5, the base's AUC) by at
  most delta: not conspicuously far (over-forgotten). Relative to the base because the sets alone
  can sit below 0.5: the demo's 64 items score 0.400 on the base and 0.405 on the retrained GAN.
- ``sampler_retain_max_frechet_increase`` 0.5: the retained classes' Fréchet distance (classifier
  features, samples vs hold-out) may grow by at most half of the base's (demo: cascade +0.37 on
  the class request and +0.11 on the items; retrained -0.04 and +0.16).
"""

from __future__ import annotations

from typing import Any

from worker.gate import (
    DISABLED,
    FAILED,
    NOT_APPLICABLE,
    NOT_EVALUATED,
    PASSED,
    GateResult,
    verdict_of,
)
from worker.unlearn.mia import tolerance

SAMPLER_GATE: dict[str, float | None] = {
    "sampler_class_max_share_ratio": 0.75,
    "sampler_mia_max_auc_above_chance": 0.05,
    "sampler_mia_max_auc_below_chance": 0.05,
    "sampler_retain_max_frechet_increase": 0.5,
}

SAMPLER_CHECKS: dict[str, tuple[str, str]] = {
    "sampler_class_max_share_ratio": (
        "forgotten", "GANs: the share of generated samples assigned to a forgotten class may be at most this "
                     "fraction of the base's share"),
    "sampler_mia_max_auc_above_chance": (
        "forgotten", "GANs: nearest-neighbour membership AUC (forget vs never-seen images, distance to the closest "
                     "generated sample) may exceed 0.5 by at most delta"),
    "sampler_mia_max_auc_below_chance": (
        "not_over_forgotten", "GANs: nearest-neighbour membership AUC may fall below min(0.5, the base's AUC) by at "
                              "most delta: the forget images are not conspicuously far from what the model generates"),
    "sampler_retain_max_frechet_increase": (
        "retain", "GANs: the retained classes' Fréchet distance (classifier features, samples vs retain hold-out) "
                  "may grow by at most this fraction of the base's"),
}  # fmt: skip
_UPPER = set(SAMPLER_GATE)  # every sampler check is an upper bound on its value


def check_sampler_gate(judgement, overrides: dict[str, float | None]) -> GateResult:
    thresholds = {**SAMPLER_GATE, **{k: v for k, v in overrides.items() if k in SAMPLER_GATE}}
    sides = judgement.metrics["samples"]
    before, after = sides["before"]["generated"], sides["after"]["generated"]
    values = _values(before, after)
    checks = [_check(name, thresholds[name], values[name], judgement) for name in SAMPLER_GATE]
    verdict = verdict_of(checks)
    return GateResult(verdict, thresholds, checks, _membership_verdict(judgement.membership, thresholds))


def _values(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float | None]:
    share = None
    if "forgotten_class_share" in after:
        denominator = max(before["forgotten_class_share"], 1.0 / before["n_samples"])  # a base share of 0 is not / 0
        share = after["forgotten_class_share"] / denominator
    frechet = None
    if "retained_frechet" in after and "retained_frechet" in before and before["retained_frechet"] > 0:
        frechet = (after["retained_frechet"] - before["retained_frechet"]) / before["retained_frechet"]
    auc = after.get("nn_membership_auc")
    floor = min(0.5, before.get("nn_membership_auc", 0.5))
    return {
        "sampler_class_max_share_ratio": share,
        "sampler_mia_max_auc_above_chance": None if auc is None else auc - 0.5,
        "sampler_mia_max_auc_below_chance": None if auc is None else floor - auc,
        "sampler_retain_max_frechet_increase": frechet,
    }


def _check(name: str, configured: float | None, value: float | None, j) -> dict[str, Any]:
    protects, description = SAMPLER_CHECKS[name]
    check = {"name": name, "protects": protects, "description": description, "value": value, "threshold": configured,
             "status": None, "margin": None, "reason": None}  # fmt: skip
    if configured is None:
        return check | {"status": DISABLED, "reason": "disabled by the model's gate_thresholds (null)"}
    if value is None:
        reason = _missing(name, j)
        status = NOT_APPLICABLE if reason.startswith("not applicable") else NOT_EVALUATED
        return check | {"status": status, "reason": reason}
    threshold = configured
    if "_mia_" in name:  # delta widens with the null spread of the AUC for small sets
        threshold = tolerance(j.membership["n_forget"], j.membership["n_never_seen"], configured)
        check["configured"] = configured
    margin = threshold - value if name in _UPPER else value - threshold
    return check | {"value": round(value, 6), "threshold": round(threshold, 6), "margin": round(margin, 6),
                    "status": PASSED if margin >= 0 else FAILED}  # fmt: skip


def _missing(name: str, j) -> str:
    if "_mia_" in name:
        return j.unavailable.get("membership", "membership was not computed")
    if "_class_" in name:
        return j.unavailable.get("class_evidence", "the forgotten-class share was not computed")
    return j.unavailable.get("frechet", "the Fréchet distance was not computed")


def _membership_verdict(mia: dict[str, Any] | None, thresholds: dict[str, float | None]) -> dict[str, Any] | None:
    if mia is None:
        return None
    n, m, auc = mia["n_forget"], mia["n_never_seen"], mia["raw"]["after"]["auc"]
    floor = min(0.5, mia["raw"]["before"]["auc"])
    up = tolerance(n, m, thresholds["sampler_mia_max_auc_above_chance"] or SAMPLER_GATE["sampler_mia_max_auc_above_chance"])
    low = tolerance(n, m, thresholds["sampler_mia_max_auc_below_chance"] or SAMPLER_GATE["sampler_mia_max_auc_below_chance"])
    return {"auc": auc, "delta_above": round(up, 6), "delta_below": round(low, 6),
            "forgotten": auc <= 0.5 + up, "not_over_forgotten": auc >= floor - low}  # fmt: skip
