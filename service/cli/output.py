"""How `oblivio` prints: JSON for machines, tables and summaries for people, errors on stderr."""

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from service.cli.advice import after_gate_failure
from service.cli.exits import STATUS_EXIT, Exit, UsageError
from service.client import ApiError


def show(args: argparse.Namespace, data: Any, human: Callable[[Any], str]) -> None:
    print(json.dumps(data, indent=2, default=str) if args.json else human(data))


def write(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc}") from exc


def err(message: str) -> None:
    print(message, file=sys.stderr)


def api_error(exc: ApiError) -> int:
    detail = exc.detail
    items = detail.get("items", []) if isinstance(detail, dict) else detail if isinstance(detail, list) else []
    message = detail.get("message", "") if isinstance(detail, dict) else "" if isinstance(detail, list) else detail
    err(f"error: {exc.kind}: {message or 'see below'}")
    for item in items:
        err(f"  - {problem(item)}")
    if isinstance(detail, dict) and detail.get("truncated"):
        err(f"  … {detail['count'] - len(items)} more ({detail['count']} in all)")
    if exc.status == 401:
        err("  (set OBLIVIO_API_KEY or pass --api-key)")
    if exc.status >= 500 and exc.request_id:
        err(f"  (request id {exc.request_id}: quote it when you report this)")
    return STATUS_EXIT.get(exc.status, Exit.SERVER_ERROR if exc.status >= 500 else Exit.FAILED)


def problem(item: Any) -> str:
    if isinstance(item, dict) and "problem" in item:
        value = f" {item['value']!r}" if "value" in item else ""
        return f"{item.get('field', '?')}{value}: {item['problem']}"
    if isinstance(item, dict) and "msg" in item:
        return f"{'.'.join(str(p) for p in item.get('loc', []))}: {item['msg']}"
    return str(item)


def summary(r: dict) -> str:
    status = r["status"] + (f" ({r['reason']})" if r.get("reason") else "")
    return f"request {r['id']} {status}: forget {forget_set(r)} from {r['model']}, due {when(r['due_at'])}"


def details(r: dict) -> str:
    lines = [
        ("request", r["id"] + (f"  (external id {r['external_id']})" if r.get("external_id") else "")),
        ("status", r["status"] + (f"  ({r['reason']})" if r.get("reason") else "")),
        ("model", f"{r['model']}  ({r['mode']}, {r['method']})"),
        ("settings", " ".join(f"{k}={v}" for k, v in r["effective_config"].items())),
        ("forget", forget_set(r, full=True)),
        ("received", when(r["received_at"])),
        ("due", when(r["due_at"])),
    ]
    if extension := r.get("extension"):  # GDPR Art. 12(3): the one extension, with its reason
        lines.append(("extended", f"from {when(extension['original_due_at'])} on {when(extension['extended_at'])}: "
                                  f"{extension['reason']}"))
    if r.get("finished_at"):
        lines.append(("finished", when(r["finished_at"])))
    if job := r.get("job"):
        progress = job["progress"]
        steps = f"step {progress['step']}/{progress['total']}" if progress["total"] else "no steps yet"
        if progress.get("phase") and job["status"] == "running":
            steps = f"{progress['phase']}, {steps}"
        losses = " ".join(f"{k}={v:.4g}" for k, v in progress["losses"].items())
        lines.append(("job", f"{job['id']}  {job['status']}, {steps} {losses}".rstrip()))
    if r.get("result_version"):
        lines.append(("version", f"v{r['result_version']}  ({r['links'].get('checkpoint', '')})"))
    if r.get("reason_detail"):
        lines.append(("detail", r["reason_detail"]))
    lines += [("next", line) for line in after_gate_failure(r, report=f"oblivio report {r['id']} -o report.json")]
    return "\n".join(f"{label:<9} {text}" for label, text in lines)


def forget_set(r: dict, full: bool = False) -> str:
    parts = []
    if r["classes"]:
        parts.append("class" + ("es " if len(r["classes"]) > 1 else " ") + ", ".join(r["classes"]))
    if r["samples"]:
        shown = r["samples"] if full or len(r["samples"]) <= 2 else [*r["samples"][:2], "…"]
        parts.append(f"{len(r['samples'])} sample{'s' if len(r['samples']) > 1 else ''} ({', '.join(shown)})")
    return "; ".join(parts) or "-"


def when(value: str | None) -> str:
    return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"


def version_label(value: int | None) -> str:
    return f"v{value}" if value is not None else "-"


def render_table(headers: tuple[str, ...], rows: Iterable[tuple]) -> str:
    cells = [tuple(str(c) for c in headers), *(tuple(str(c) for c in row) for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells)
