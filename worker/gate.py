"""The publish gate (ALGORITHM.md §5): thresholds over a :class:`~worker.evaluation.Judgement`.

Every check ends in one status:

- ``passed`` / ``failed``: evaluated against its threshold;
- ``disabled``: the model's ``gate_thresholds`` set it to null;
- ``not_evaluated``: it is enabled but its inputs do not exist for this job (no feature network, no
  never-seen images of the forget classes), with the reason;
- ``not_applicable``: it does not concern this job (class evidence when no class is forgotten whole).

The verdict: ``failed`` when any check failed; ``passed`` only when every check was evaluated and
passed (``not_applicable`` ones aside); ``passed_with_unevaluated_checks`` when none failed but some
were disabled or could not be evaluated (they are listed); ``not_evaluated`` when no check was
evaluated at all. Only ``failed`` blocks publication: an operator who disabled checks, or a model
without a feature network, still gets a version, and the verdict and report say what was not checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from worker.evaluation import Judgement
from worker.unlearn.metrics import TASKS
from worker.unlearn.adapters import family_class
from worker.unlearn.mia import tolerance

PASSED, FAILED, DISABLED, NOT_EVALUATED, NOT_APPLICABLE = "passed", "failed", "disabled", "not_evaluated", "not_applicable"
VERDICT_PASSED, VERDICT_PARTIAL, VERDICT_NONE, VERDICT_FAILED = (
    "passed", "passed_with_unevaluated_checks", "not_evaluated", "failed")  # fmt: skip

# Defaults chosen from measurements on the demo model (benchmarks/gate.py -> benchmarks/results/gate.json,
# explained in README "Publish gate"); a model may override any of them, and null disables a check.
DEFAULT_GATE: dict[str, float | None] = {
    "retain_max_psnr_drop": 0.75,  # measured 0.16 (class) / 0.15 (8 samples)
    "retain_max_cosine_drop": 0.02,  # measured -0.0003 / -0.006
    "forget_min_cosine_drop": 0.05,  # measured 0.129 / 0.076
    "forget_min_psnr_drop": 2.0,  # measured 4.60 / 3.91
    "forget_max_cosine_over_reference": 0.02,  # measured -0.001 / -0.088; 0.02 absorbs sampling noise
    # Reported, not gated by default: compared within classes, the demo base's forget images already
    # score AUC 0.57 against never-seen images of their classes and encoder-L2 leaves it there (0.59
    # after 600 and 1,200 steps), so a default would refuse every request; a model may enable it.
    "mia_max_auc_above_chance": None,
    "mia_max_auc_below_chance": 0.05,  # measured AUC 0.475 (class) / 0.055 (8 samples: over-forgotten)
    "class_max_recognition_over_reference": 0.30,  # retrained model 0.254, base 0.71, encoder-L2 0.24
}

# What a check protects: "forgotten" checks fail when the run did too little (more steps may help),
# "not_over_forgotten" and "retain" checks when it did too much or the wrong thing (more steps do not).
CHECKS: dict[str, tuple[str, str]] = {
    "retain_max_psnr_drop": ("retain", "retain hold-out PSNR (dB, mean over tasks) may drop by at most this much"),
    "retain_max_cosine_drop": ("retain", "retain hold-out feature cosine may drop by at most this much"),
    "forget_min_cosine_drop": ("forgotten", "forget-set feature cosine must drop by at least this much"),
    "forget_min_psnr_drop": ("forgotten", "forget-set PSNR (dB, mean over tasks) must drop by at least this much"),
    "forget_max_cosine_over_reference": (
        "forgotten", "after unlearning, forget-set cosine may exceed the never-seen reference's by at most this much"),
    "mia_max_auc_above_chance": (
        "forgotten", "membership attack AUC (raw, forget vs never-seen) may exceed 0.5 by at most delta: "
                     "the forget images no longer look like training data"),
    "mia_max_auc_below_chance": (
        "not_over_forgotten", "membership attack AUC may fall below 0.5 by at most delta: the forget images do not "
                              "look conspicuously worse than never-seen ones"),
    "class_max_recognition_over_reference": (
        "forgotten", "the feature network may recognise a forgotten class in the outputs for held-out images of it "
                     "at most this much more often than from the visible pixels alone (max over mask kinds)"),
}  # fmt: skip
_UPPER = {"retain_max_psnr_drop", "retain_max_cosine_drop", "forget_max_cosine_over_reference",
          "mia_max_auc_above_chance", "mia_max_auc_below_chance", "class_max_recognition_over_reference"}  # fmt: skip


@dataclass(frozen=True)
class GateResult:
    verdict: str
    thresholds: dict[str, float | None]
    checks: list[dict[str, Any]]
    membership_verdict: dict[str, Any] | None

    @property
    def publishable(self) -> bool:
        return self.verdict != VERDICT_FAILED

    @property
    def failures(self) -> list[dict[str, Any]]:
        return [c for c in self.checks if c["status"] == FAILED]

    @property
    def more_steps_may_help(self) -> bool:
        """True when every failed check is one that fails because the run did too little."""
        return bool(self.failures) and all(c["protects"] == "forgotten" for c in self.failures)

    @property
    def forgetting_evidenced(self) -> bool:
        """True when at least one forgotten-side check was evaluated (and so passed, unless the verdict failed)."""
        return any(c["protects"] == "forgotten" and c["status"] in (PASSED, FAILED) for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        unevaluated = [c["name"] for c in self.checks if c["status"] in (DISABLED, NOT_EVALUATED)]
        return {"verdict": self.verdict, "publishable": self.publishable, "unevaluated_checks": unevaluated,
                "membership_verdict": self.membership_verdict, "thresholds": self.thresholds, "checks": self.checks}


def gate_thresholds(family: str, model_thresholds: dict | None) -> dict[str, float | None]:
    """The overrides a job of ``family`` runs with: the family's defaults (Adapter.gate_defaults), the
    model's own over them; :func:`check_gate` puts both over DEFAULT_GATE."""
    try:
        defaults = family_class(family).gate_defaults
    except ValueError:  # an unknown family fails when its checkpoint loads, with its own message
        defaults = {}
    return {**defaults, **(model_thresholds or {})}


def check_gate(judgement: Judgement, overrides: dict[str, float | None]) -> GateResult:
    from worker.sampler_eval import SamplerJudgement  # samplers (GANs) have their own checks

    if isinstance(judgement, SamplerJudgement):
        from worker.sampler_gate import check_sampler_gate

        return check_sampler_gate(judgement, overrides)
    thresholds = {**DEFAULT_GATE, **{k: v for k, v in overrides.items() if k in DEFAULT_GATE}}
    values = _values(judgement)
    checks = [_check(name, threshold, values[name], judgement) for name, threshold in thresholds.items()]
    verdict = verdict_of(checks)
    return GateResult(verdict, thresholds, checks, membership_verdict(judgement.membership, thresholds))


def verdict_of(checks: list[dict[str, Any]]) -> str:
    """The gate's verdict from its checks' statuses: any failed check fails it; none passed, nothing
    was judged; a disabled or unevaluated check beside passed ones is said, not hidden."""
    statuses = {c["status"] for c in checks}
    if FAILED in statuses:
        return VERDICT_FAILED
    if PASSED not in statuses:
        return VERDICT_NONE
    if statuses & {DISABLED, NOT_EVALUATED}:
        return VERDICT_PARTIAL
    return VERDICT_PASSED


def membership_verdict(mia: dict[str, Any] | None, thresholds: dict[str, float | None]) -> dict[str, Any] | None:
    """The two-sided verdict of the raw attack after unlearning; a disabled side is judged at DELTA_MIN (reported only)."""
    if mia is None:
        return None
    n, m, auc = mia["n_forget"], mia["n_never_seen"], mia["raw"]["after"]["auc"]
    upper = tolerance(n, m, _or_default(thresholds, "mia_max_auc_above_chance"))
    lower = tolerance(n, m, _or_default(thresholds, "mia_max_auc_below_chance"))
    return {"auc": auc, "delta_above": round(upper, 6), "delta_below": round(lower, 6),
            "forgotten": auc <= 0.5 + upper, "not_over_forgotten": auc >= 0.5 - lower}  # fmt: skip


DELTA_MIN = 0.05  # 2 null standard deviations at 256 vs 256 images; widened for smaller sets


def _or_default(thresholds: dict[str, float | None], name: str) -> float:
    return thresholds[name] if thresholds[name] is not None else DEFAULT_GATE[name] or DELTA_MIN


def _values(j: Judgement) -> dict[str, float | None]:
    mean = {(s, when, k): _task_mean(j.metrics[s][when], k) for s in j.metrics for when in ("before", "after")
            for k in ("psnr", "cosine")}  # fmt: skip
    mean = {key: value for key, value in mean.items() if value is not None}
    auc = j.membership["raw"]["after"]["auc"] if j.membership else None
    return {
        "retain_max_psnr_drop": _drop(mean, "retain", "psnr"),
        "retain_max_cosine_drop": _drop(mean, "retain", "cosine"),
        "forget_min_cosine_drop": _drop(mean, "forget", "cosine"),
        "forget_min_psnr_drop": _drop(mean, "forget", "psnr"),
        "forget_max_cosine_over_reference": (
            mean[("forget", "after", "cosine")] - mean[("reference", "after", "cosine")]
            if ("reference", "after", "cosine") in mean and ("forget", "after", "cosine") in mean else None
        ),
        "mia_max_auc_above_chance": None if auc is None else auc - 0.5,
        "mia_max_auc_below_chance": None if auc is None else 0.5 - auc,
        "class_max_recognition_over_reference": j.class_evidence["excess_over_reference"] if j.class_evidence else None,
    }


def _check(name: str, configured: float | None, value: float | None, j: Judgement) -> dict[str, Any]:
    protects, description = CHECKS[name]
    check = {"name": name, "protects": protects, "description": description, "value": value, "threshold": configured,
             "status": None, "margin": None, "reason": None}  # fmt: skip
    if configured is None:
        return check | {"status": DISABLED, "reason": "disabled by the model's gate_thresholds (null)"}
    if value is None:
        reason = _missing(name, j)
        status = NOT_APPLICABLE if reason.startswith("not applicable") else NOT_EVALUATED
        return check | {"status": status, "reason": reason}
    threshold = configured
    if name.startswith("mia_"):  # delta widens with the null spread of the AUC for small sets
        threshold = tolerance(j.membership["n_forget"], j.membership["n_never_seen"], configured)
        check["configured"] = configured
    margin = threshold - value if name in _UPPER else value - threshold
    return check | {"value": round(value, 6), "threshold": round(threshold, 6), "margin": round(margin, 6),
                    "status": PASSED if margin >= 0 else FAILED}  # fmt: skip


def _missing(name: str, j: Judgement) -> str:
    if name.startswith("mia_"):
        return j.unavailable.get("membership", "membership inference was not computed")
    if name.startswith("class_"):
        return j.unavailable.get("class_evidence", "class evidence was not computed")
    if name.endswith("reference") and "reference" not in j.metrics:
        return j.unavailable.get("membership", "no never-seen reference set")
    if "cosine" in name:
        return "the model has no feature network: no feature cosine"
    return "the set this check reads was empty"


def _task_mean(metrics: dict[str, dict[str, float | None]], key: str) -> float | None:
    """Mean over tasks; None when the metric was not computed (no feature network for cosine)."""
    values = [metrics[t][key] for t in TASKS]
    return None if any(v is None for v in values) else sum(values) / len(values)


def _drop(mean: dict, name: str, key: str) -> float | None:
    if (name, "before", key) not in mean:
        return None
    return mean[(name, "before", key)] - mean[(name, "after", key)]
