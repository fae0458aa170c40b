"""DSSE envelopes (Dead Simple Signing Envelope, secure-systems-lab/dsse v1.0) over in-toto Statements.

The signature covers the pre-authentication encoding
``PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`` (LEN in ASCII decimal),
never the JSON around it, so the payload bytes verify exactly as they were signed. Keys are the
service's Ed25519 key; ``keyid`` is the same short key id the reports carry.
"""

import base64
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from service.audit.canonical import canonical_bytes
from service.audit.signing import Signer, key_id

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


def pae(payload_type: str, payload: bytes) -> bytes:
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def sign_statement(statement: dict[str, Any], signer: Signer) -> dict[str, Any]:
    """A DSSE envelope of ``statement`` (canonical JSON payload), signed by ``signer``."""
    payload = canonical_bytes(statement)
    signature = signer.sign_bytes(pae(IN_TOTO_PAYLOAD_TYPE, payload))
    return {
        "payloadType": IN_TOTO_PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": signer.key_id, "sig": base64.b64encode(signature).decode()}],
    }


def verify_envelope(envelope: dict[str, Any], public_key: Ed25519PublicKey) -> tuple[bool, str, dict[str, Any] | None]:
    """(ok, reason, statement): ok when a signature by ``public_key`` covers the payload."""
    try:
        payload_type = envelope["payloadType"]
        payload = base64.b64decode(envelope["payload"], validate=True)
        signatures = envelope["signatures"]
        wanted = key_id(public_key)
        mine = [s for s in signatures if s.get("keyid") in (wanted, "", None)]
        if not mine:
            return False, f"no signature by key {wanted}", None
        message = pae(payload_type, payload)
        for entry in mine:
            try:
                public_key.verify(base64.b64decode(entry["sig"], validate=True), message)
            except InvalidSignature:
                continue
            if payload_type != IN_TOTO_PAYLOAD_TYPE:
                return False, f"payloadType {payload_type!r} is not an in-toto Statement", None
            return True, "DSSE signature valid", json.loads(payload)
    except (KeyError, TypeError, ValueError) as exc:
        return False, f"malformed DSSE envelope: {exc}", None
    return False, "DSSE signature does not match the payload", None
