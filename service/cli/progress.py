"""How a request's progress reads on a terminal (`oblivio watch`, the demo): pure functions, no I/O.

A request shows its job's progress (coalesced requests share one job). The job reports a phase
separately from its steps: loading inputs, building teacher targets and evaluating are not steps,
so the rate and the ETA come from the worker's count of unlearning steps over unlearning time, never
from when the terminal started watching.
"""

from dataclasses import dataclass
from typing import Any

# tqdm's own rate and remaining time measure the terminal's polling, not the job: leave them out.
BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt}{postfix}"  # tqdm puts ", " before the postfix


@dataclass(frozen=True)
class ProgressView:
    phase: str
    step: int
    total: int
    rate: float | None  # unlearning steps per second, as the worker measured them
    eta_seconds: float | None


def progress_of(request: dict[str, Any]) -> ProgressView:
    """The progress of the request's job; unless a worker runs the job, the request's status is the phase."""
    job = request.get("job") or {}
    progress = job.get("progress") or {}
    phase = progress.get("phase") if job.get("status") == "running" and progress.get("phase") else request["status"]
    step, total, rate = progress.get("step", 0), progress.get("total", 0), progress.get("steps_per_second")
    return ProgressView(phase=phase, step=step, total=total, rate=rate, eta_seconds=eta_seconds(phase, step, total, rate))


def eta_seconds(phase: str, step: int, total: int, rate: float | None) -> float | None:
    """Time left for the unlearning steps; None outside the unlearning phase or before a rate is known."""
    if phase != "unlearning" or not total or not rate or rate <= 0:
        return None
    return max(total - step, 0) / rate


def postfix(view: ProgressView, status: str, losses: dict[str, float]) -> dict[str, str]:
    """What follows the bar: status, phase, the job's own rate, the ETA (unlearning only), the losses."""
    fields = {"status": status}
    if view.phase != status:
        fields["phase"] = view.phase
    if view.rate:
        fields["rate"] = f"{view.rate:.3g} step/s"
    if view.eta_seconds is not None:
        fields["eta"] = duration(view.eta_seconds)
    return fields | {k: f"{v:.4g}" for k, v in losses.items()}


def duration(seconds: float) -> str:
    """H:MM:SS."""
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
