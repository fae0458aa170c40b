"""The body of a job's audit report: plain data in, canonical-JSON-ready dict out."""

import socket
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from typing import Any

import torch
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.models import UnlearnRequest
from worker.evaluation import Judgement
from worker.gate import GateResult
from worker.inputs import JobInputs, ReadLog
from worker.probe import Split

SCHEMA = "oblivio.report/1"
_MAX_HISTORY = 200


def requests_section(session: Session, inputs: JobInputs) -> list[dict[str, Any]]:
    """Each request with the forget samples attributed to it (a sample named twice counts for both)."""
    by_request: dict[str, list[dict[str, str]]] = {}
    for record in inputs.forget.records:
        for owner in inputs.forget_owners[record.sample_key]:
            by_request.setdefault(owner, []).append(
                {"sample_key": record.sample_key, "class_label": record.class_label, "sha256": record.sha256}
            )
    rows = session.scalars(select(UnlearnRequest).where(UnlearnRequest.job_id == inputs.job_id).order_by(UnlearnRequest.received_at))
    return [
        {
            "id": str(r.id),
            "external_id": r.external_id,
            "status_at_report": r.status.value,
            "received_at": r.received_at.isoformat(),
            "due_at": r.due_at.isoformat(),
            "classes": r.classes,
            "samples": by_request.get(str(r.id), []),
        }
        for r in rows
    ]


def data_read_section(inputs: JobInputs, log: ReadLog) -> dict[str, Any]:
    forget_keys = {r.sample_key for r in inputs.forget.records}
    retained_training_read = log.count(inputs.training_dataset, excluding=forget_keys)
    if inputs.mode.value == "retain_free":
        statement = (
            f"retain-free: the job read {len(forget_keys)} forget samples of '{inputs.training_dataset}' and images of "
            f"the public proxy set '{inputs.retain.dataset}'; it read {retained_training_read} retained training samples."
        )
    else:
        statement = f"with_retain: the job read {retained_training_read} retained samples of '{inputs.training_dataset}'."
    return {
        "statement": statement,
        "retained_training_samples_read": retained_training_read,
        "forget": {"dataset": inputs.forget.dataset, "count": len(inputs.forget.records), "digest": inputs.forget.digest},
        "retain": {
            "source": "proxy" if inputs.mode.value == "retain_free" else "training",
            "dataset": inputs.retain.dataset,
            "count": len(inputs.retain.records),
            "digest": inputs.retain.digest,
            "manifest_digest": inputs.retain_manifest_digest,
        },
        "holdout": {"dataset": inputs.holdout.dataset, "count": len(inputs.holdout.records), "digest": inputs.holdout.digest},
        "reference": (
            {"dataset": inputs.reference.dataset, "count": len(inputs.reference.records), "digest": inputs.reference.digest}
            if inputs.reference else None
        ),
        "samples_read_total": len(set(log.entries)),
    }


def verification_section(judgement: Judgement, gate: GateResult, attempts: list[dict[str, Any]],
                         split: Split) -> dict[str, Any]:
    """Membership inference (with its two-sided verdict), class evidence, the probe and every attempt."""
    unavailable = judgement.unavailable
    mia = ({**judgement.membership, "verdict": gate.membership_verdict} if judgement.membership
           else {"unavailable": unavailable.get("membership")})  # fmt: skip
    probe = split.probe
    return {
        "membership": mia,
        "class_evidence": judgement.class_evidence or {"unavailable": unavailable.get("class_evidence")},
        "probe": {
            "images": {"forget": len(probe.forget), "retain": len(probe.retain),
                       "reference": 0 if probe.reference is None else len(probe.reference)},
            "disjoint_from_final": split.disjoint,
        },
        "attempts": attempts,
    }


def build_report(
    *,
    inputs: JobInputs,
    outcome: str,
    requests: list[dict[str, Any]],
    data_read: dict[str, Any] | None,
    config: dict[str, Any],
    new_checkpoint: dict[str, Any] | None,
    metrics: dict[str, Any] | None = None,
    gate: dict[str, Any] | None = None,
    verification: dict[str, Any] | None = None,
    history: list[dict[str, float]] | None = None,
    figures: list[dict[str, Any]] | None = None,
    timings: dict[str, float] | None = None,
    device: str = "cpu",
    error: str | None = None,
) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "created_at": datetime.now(UTC).isoformat(),
        "code_version": package_version("oblivio"),
        "outcome": outcome,
        "error": error,
        "job": {
            "id": str(inputs.job_id), "model": inputs.model, "family": inputs.family, "method": inputs.method,
            "mode": inputs.mode.value, "attempt": inputs.attempt, "config": config,
        },
        "requests": requests,
        "data_read": data_read,
        "checkpoints": {"base": {"version": inputs.base_version, "digest": inputs.base_digest}, "new": new_checkpoint},
        "metrics": metrics or {},
        "gate": gate,
        "verification": verification,
        "loss_history": _thin(history or []),
        "figures": figures or [],
        "timings": {k: round(v, 3) for k, v in (timings or {}).items()},
        "worker": {"host": socket.gethostname(), "device": device, "torch": torch.__version__},
    }


def _thin(history: list[dict[str, float]]) -> list[dict[str, float]]:
    stride = max(1, len(history) // _MAX_HISTORY)
    kept = history[::stride]
    if history and kept[-1] is not history[-1]:
        kept.append(history[-1])
    return [{k: round(v, 6) if isinstance(v, float) else v for k, v in h.items()} for h in kept]
