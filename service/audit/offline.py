"""Offline verification of everything Oblivio signs: reports and receipts (with their audit-log inclusion
proofs), DSSE attestations, checkpoints.

Each check needs only the downloaded files and a public key: the Ed25519 key (`oblivio signing-key`)
for documents and envelopes, the EC key (`GET /model-signing-key`) for checkpoint signatures.
"""

import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from service.audit.attestation import SLSA_PROVENANCE, STATEMENT_TYPE
from service.audit.dsse import verify_envelope
from service.audit.receipt import verify_document as verify_signed_document
from service.audit.translog import verify_inclusions


def verify_document(
    document: Any, public_key: Ed25519PublicKey, *, report: dict[str, Any] | None = None
) -> tuple[bool, str]:
    """A signed report or receipt ({"body", "signature", "digest"}; a receipt optionally against its
    job's ``report``), or DSSE envelopes (one or a list)."""
    if isinstance(document, list) or (isinstance(document, dict) and "payloadType" in document):
        return verify_envelopes(document if isinstance(document, list) else [document], public_key)
    if not isinstance(document, dict):
        return False, "not a signed Oblivio document"
    ok, reason = verify_signed_document(document, public_key, report=report)
    log = document.get("transparency_log")
    if not ok or not isinstance(log, dict):
        return ok, reason
    if not log.get("checkpoint"):
        return True, f"{reason}; audit log: no checkpoint signed yet, inclusion not checked"
    included, why, _ = verify_inclusions(log, public_key)
    return (True, f"{reason}; audit log: {why}") if included else (False, f"audit log: {why}")


def verify_envelopes(envelopes: list[Any], public_key: Ed25519PublicKey) -> tuple[bool, str]:
    if not envelopes:
        return False, "no DSSE envelopes"
    kinds = []
    for i, envelope in enumerate(envelopes):
        ok, reason, statement = verify_envelope(envelope, public_key) if isinstance(envelope, dict) else (False, "not an object", None)
        if not ok:
            return False, f"envelope {i}: {reason}"
        if statement.get("_type") != STATEMENT_TYPE or not statement.get("subject"):
            return False, f"envelope {i}: payload is not an in-toto Statement v1 with subjects"
        kinds.append("SLSA provenance v1" if statement["predicateType"] == SLSA_PROVENANCE else statement["predicateType"])
    return True, f"{len(envelopes)} DSSE envelope(s) valid: " + ", ".join(kinds)


def verify_checkpoint_files(checkpoint: Path, signature: Path, public_key: Path) -> tuple[bool, str]:
    from service.audit.checkpoint_signing import verify_checkpoint  # model_signing is slow to import

    return verify_checkpoint(checkpoint, signature, public_key)


def load_json(path: Path) -> Any:
    return json.loads(path.read_bytes())
