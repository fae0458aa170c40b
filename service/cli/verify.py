"""`oblivio verify`: check a report, receipt (and its audit-log inclusion proofs), attestations, a checkpoint
signature, or two audit-log checkpoints' consistency offline, without the API."""

import argparse
import json
from pathlib import Path

from service.cli.exits import Exit, UsageError
from service.cli.output import show


def verify(args: argparse.Namespace) -> int:
    from service.audit.offline import load_json, verify_checkpoint_files, verify_document
    from service.audit.signing import load_public_pem

    modes = [args.report is not None, args.checkpoint is not None, args.consistency is not None]
    if sum(modes) != 1 or (args.checkpoint is None) != (args.signature is None) or (args.consistency is None) != (args.proof is None):
        raise UsageError("give a document, or --checkpoint with --signature, or --consistency OLD NEW with --proof")
    try:
        if args.checkpoint is not None:
            ok, reason = verify_checkpoint_files(args.checkpoint, args.signature, Path(args.public_key))
        elif args.consistency is not None:
            ok, reason = _consistency(args, load_public_pem(Path(args.public_key).read_bytes()))
        else:
            report = load_json(args.against) if args.against else None
            public_key = load_public_pem(Path(args.public_key).read_bytes())
            ok, reason = verify_document(load_json(Path(args.report)), public_key, report=report)
    except (OSError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    show(args, {"ok": ok, "reason": reason}, lambda r: f"{'OK' if ok else 'INVALID'}: {reason}")
    return Exit.OK if ok else Exit.FAILED


def _note(path: Path) -> str:
    """A checkpoint as saved: the signed note itself, or the JSON of GET /audit/checkpoints/…"""
    text = path.read_text()
    if text.lstrip().startswith("{"):
        return json.loads(text)["checkpoint"]
    return text


def _consistency(args: argparse.Namespace, public_key) -> tuple[bool, str]:
    from service.audit.translog import verify_consistency_notes

    old, new = (_note(Path(p)) for p in args.consistency)
    proof = json.loads(Path(args.proof).read_text())
    hashes = proof["consistency_proof"] if isinstance(proof, dict) else proof
    if not isinstance(hashes, list):
        raise ValueError("the proof file holds no consistency_proof list")
    return verify_consistency_notes(old, new, hashes, public_key)
