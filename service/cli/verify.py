"""`oblivio verify`: check a report's Ed25519 signature and digest offline, without the API."""

import argparse
import json
from pathlib import Path

from service.cli.exits import Exit, UsageError
from service.cli.output import show


def verify(args: argparse.Namespace) -> int:
    from service.audit.canonical import digest
    from service.audit.signing import load_public_pem, verify_signed

    try:
        document = json.loads(Path(args.report).read_bytes())
        public_key = load_public_pem(Path(args.public_key).read_bytes())
    except (OSError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    ok, reason = verify_signed(document, public_key)
    if ok and document.get("digest") not in (None, digest(document["body"])):
        ok, reason = False, "stated digest does not match the body"
    show(args, {"ok": ok, "reason": reason}, lambda r: f"{'OK' if ok else 'INVALID'}: {reason}")
    return Exit.OK if ok else Exit.FAILED
