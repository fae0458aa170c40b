"""`oblivio verify`: check a report, receipt, attestations or a checkpoint signature offline, without the API."""

import argparse
from pathlib import Path

from service.cli.exits import Exit, UsageError
from service.cli.output import show


def verify(args: argparse.Namespace) -> int:
    from service.audit.offline import load_json, verify_checkpoint_files, verify_document
    from service.audit.signing import load_public_pem

    if (args.checkpoint is None) != (args.signature is None) or (args.checkpoint is None) == (args.report is None):
        raise UsageError("give a document, or --checkpoint with --signature")
    try:
        if args.checkpoint is not None:
            ok, reason = verify_checkpoint_files(args.checkpoint, args.signature, Path(args.public_key))
        else:
            report = load_json(args.against) if args.against else None
            public_key = load_public_pem(Path(args.public_key).read_bytes())
            ok, reason = verify_document(load_json(Path(args.report)), public_key, report=report)
    except (OSError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    show(args, {"ok": ok, "reason": reason}, lambda r: f"{'OK' if ok else 'INVALID'}: {reason}")
    return Exit.OK if ok else Exit.FAILED
