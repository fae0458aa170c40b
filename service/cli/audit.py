"""`oblivio audit export` (over HTTP, auditor) and `oblivio audit verify` (offline): the whole transparency log."""

import argparse
import json
import sys
from pathlib import Path

from service.cli.exits import Exit, UsageError
from service.cli.output import show, write
from service.client import Client


def export(client: Client, args: argparse.Namespace) -> int:
    content = client.call("GET", "/audit/export").content
    if args.output is None:
        sys.stdout.buffer.write(content)
        return Exit.OK
    write(args.output, content)
    lines = content.count(b"\n")
    show(args, {"path": str(args.output), "lines": lines}, lambda r: f"audit log export ({lines} lines) written to {r['path']}")
    return Exit.OK


def verify_export(args: argparse.Namespace) -> int:
    """Re-derive the tree from an export and compare it with every signed checkpoint in it."""
    from service.audit.signing import load_public_pem
    from service.audit.translog import unb64, verify_log

    try:
        public_key = load_public_pem(Path(args.public_key).read_bytes())
        checkpoints, leaves = [], []
        for number, line in enumerate(Path(args.export).read_text().splitlines(), 1):
            if not line.strip():
                continue
            item = json.loads(line)
            if "checkpoint" in item:
                checkpoints.append(item["checkpoint"])
            else:
                stored = item.get("leaf_hash")
                leaves.append((item["entry"], unb64(stored) if stored else None))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"cannot read the export: {exc}") from exc
    check = verify_log(leaves, checkpoints, public_key)
    result = {"ok": check.ok, "checked": check.checked, "size": check.size, "checkpoints": check.checkpoints,
              "first_bad_index": check.first_bad_index, "reason": check.reason}  # fmt: skip

    def text(r: dict) -> str:
        if r["ok"]:
            return f"OK: {r['size']} leaves re-derived, {r['checkpoints']} signed checkpoints match"
        return f"INVALID at leaf {r['first_bad_index']}: {r['reason']}"

    show(args, result, text)
    return Exit.OK if check.ok else Exit.FAILED
