"""What an officer can do after the publish gate refused a request's candidate (`oblivio watch`, the demo)."""

import re
from typing import Any

from service.domain.families import SAMPLER_METHODS

_CHECK = re.compile(r"(\w+) \(value ([^,]+), threshold ([^)]+)\)")


def failed_checks(reason_detail: str | None) -> list[tuple[str, str, str]]:
    """(check, value, threshold) of each failed gate check named in a request's reason_detail."""
    return _CHECK.findall(reason_detail or "")


def after_gate_failure(request: dict[str, Any], *, report: str) -> list[str]:
    """The lines that say what to do next; `report` is how to get the signed report (a path or a command)."""
    if request.get("reason") != "gate_failed":
        return []
    checks = failed_checks(request.get("reason_detail"))
    lines = [f"the publish gate refused the result: {name} was {value}, "
             f"{'at least' if '_min_' in name else 'at most'} {threshold} is required" for name, value, threshold in checks]
    if request.get("method") in SAMPLER_METHODS:
        return lines + _sampler_advice(request, checks, report)
    again = f"oblivio submit {_forget_args(request)} --model {request['model']}"
    if any(name.startswith("forget_") for name, _, _ in checks):
        lines.append(f"forget harder with a larger budget: {again} --steps N (more than this run's steps)")
    if any(name.startswith("retain_") for name, _, _ in checks):
        lines.append(f"protect the rest with retain data or a smaller budget: {again} --mode with_retain, or --steps N")
    lines += [
        f"or another method: {again} --method gradient_surgery (see README, Methods)",
        *_last_resort(report),
    ]
    return lines


def _sampler_advice(request: dict[str, Any], checks: list[tuple[str, str, str]], report: str) -> list[str]:
    """A sampler (GAN) has one method and its own checks (README, Evaluation and gate for samplers)."""
    again = f"oblivio submit {_forget_args(request)} --model {request['model']} --method {request['method']}"
    lines = []
    if any(name.startswith(("sampler_class_", "sampler_mia_max_auc_above")) for name, _, _ in checks):
        lines.append(f"forget harder with a larger budget: {again} --steps N (more than this run's steps)")
    if any(name.startswith(("sampler_retain_", "sampler_mia_max_auc_below")) for name, _, _ in checks):
        lines.append(f"change less with a smaller budget: {again} --steps N (fewer than this run's steps)")
    return lines + _last_resort(report)


def _last_resort(report: str) -> list[str]:
    return [
        "or ask an admin to approve other thresholds for this model (its gate_thresholds; README, Publish gate)",
        f"every check with its value and margin is in the signed report: {report}",
    ]


def _forget_args(request: dict[str, Any]) -> str:
    samples = request.get("samples") or []
    args = [*(samples if len(samples) <= 3 else ["--samples-file", "KEYS.txt"]), *(f"--class {c}" for c in request["classes"])]
    return " ".join(args)
