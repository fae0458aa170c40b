"""A request's receipt: what its officer may see of the job that served it, checkable offline.

The job report names every request a job coalesced; a receipt quotes from it only this request's
samples and classes, with the job's verdict and metrics and the report's digest, so an auditor who
holds the report can tie the two together. Pure data in, canonical-JSON-ready dict out.
"""

from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from service.audit.canonical import digest
from service.audit.signing import verify_signed

SCHEMA = "oblivio.receipt/1"


def receipt_body(
    *, request: dict[str, Any], classes: list[str], report: dict[str, Any], report_digest: str
) -> dict[str, Any]:
    """`request`: the request's own fields; `report`: the signed job report body it quotes from."""
    entry = next((r for r in report["requests"] if r["id"] == request["id"]), {"samples": []})
    samples = {s["sample_key"]: s for s in entry["samples"]}  # a sample named twice is listed once
    gate = report.get("gate") or {}
    return {
        "schema": SCHEMA,
        "request": request,
        "classes": sorted(classes),
        "samples": [samples[k] for k in sorted(samples)],
        "verdict": {"outcome": report["outcome"], "gate_passed": gate.get("passed"), "gate_checks": gate.get("checks", [])},
        "metrics": report["metrics"],
        "checkpoints": report["checkpoints"],
        "report": {"digest": report_digest, "job_id": report["job"]["id"], "created_at": report["created_at"]},
    }


def verify_document(
    document: dict[str, Any], public_key: Ed25519PublicKey, *, report: dict[str, Any] | None = None
) -> tuple[bool, str]:
    """Check a signed report or receipt: signature and stated digest; with `report`, that the receipt quotes it."""
    ok, reason = verify_signed(document, public_key)
    if ok and document.get("digest") not in (None, digest(document["body"])):
        return False, "stated digest does not match the body"
    if not ok or report is None:
        return ok, reason
    ok, why = verify_signed(report, public_key)
    if not ok:
        return False, f"the report: {why}"
    try:
        return _quotes(document["body"], report["body"])
    except (KeyError, TypeError, AttributeError) as exc:
        return False, f"malformed receipt or report: {exc!r}"


def _quotes(receipt: dict[str, Any], report: dict[str, Any]) -> tuple[bool, str]:
    if receipt.get("schema") != SCHEMA:
        return False, "not a receipt: only a receipt is checked against a report"
    if receipt["report"]["digest"] != digest(report):
        return False, "the receipt names another report (digest differs)"
    expected = receipt_body(request=receipt["request"], classes=receipt["classes"], report=report,
                            report_digest=receipt["report"]["digest"])
    if expected != receipt:
        return False, "the receipt does not match what the report says of this request"
    return True, "signature valid; the receipt matches the report"
