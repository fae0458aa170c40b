"""The argument parser of `oblivio`: every command, its options and their help."""

import argparse
import os
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from service.cli.exits import Exit
from service.db.enums import Method, Mode, RequestStatus, Role


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="oblivio", description="Machine unlearning for image-to-image generators.")
    _global_options(parser, suppress=False)
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, suppress=True)  # the same options are also accepted after the command
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, **kwargs) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help, parents=[common], **kwargs)

    submit = command("submit", "file an unlearn request (officer)")
    submit.add_argument("samples", nargs="*", metavar="SAMPLE", help="sample keys of the model's training dataset")
    submit.add_argument("--model", required=True)
    submit.add_argument("--samples-file", type=Path, help="one sample key per line ('-' reads stdin; # starts a comment)")
    submit.add_argument("--class", dest="classes", action="append", default=[], metavar="LABEL",
                        help="forget a whole class (repeatable)")
    submit.add_argument("--mode", choices=[m.value for m in Mode])
    submit.add_argument("--method", choices=[m.value for m in Method])
    submit.add_argument("--steps", type=int, help="unlearning budget: this many optimiser steps (config.steps)")
    submit.add_argument("--external-id", help="your own id for the request; makes retries safe")
    submit.add_argument("--idempotency-key", help="retrying with the same key and body returns the same request")
    submit.add_argument("--due-at", type=datetime.fromisoformat,
                        help="legal deadline with its UTC offset (2026-07-01T00:00:00Z); default received + 30 days")
    submit.add_argument("--watch", action="store_true", help="follow the request until it finishes (exit codes of watch)")
    _watch_options(submit)

    command("status", "show one request: status, progress, due date, result").add_argument("id", type=_request_id)
    listing = command("list", "list requests, newest first")
    listing.add_argument("--status", choices=[s.value for s in RequestStatus])
    listing.add_argument("--model")
    listing.add_argument("--due-before", type=datetime.fromisoformat, metavar="ISO_DATE")
    listing.add_argument("--limit", type=int, default=50, help="page size (at most 200)")
    listing.add_argument("--cursor", help="next_cursor of a previous page")
    listing.add_argument("--all", action="store_true", help="follow the cursor to the last page")

    watch = command("watch", "follow a request with a progress bar until it finishes")
    watch.add_argument("id", type=_request_id)
    _watch_options(watch)
    command("cancel", "cancel a request that is not yet published (officer)").add_argument("id", type=_request_id)
    command("approve", "approve a request waiting for review (reviewer)").add_argument("id", type=_request_id)
    reject = command("reject", "reject a request waiting for review (reviewer)")
    reject.add_argument("id", type=_request_id)
    reject.add_argument("--reason", required=True)

    receipt = command("receipt", "download a request's signed receipt: its own samples, the job's verdict and metrics")
    receipt.add_argument("id", type=_request_id)
    receipt.add_argument("-o", "--output", type=Path, help="write to this file instead of stdout")
    report = command("report", "download the signed audit report of a request's job, every request in it (auditor)")
    report.add_argument("id", type=_request_id)
    report.add_argument("--html", action="store_true", help="the rendered HTML instead of the signed JSON")
    report.add_argument("-o", "--output", type=Path, help="write to this file instead of stdout")
    verify = command("verify", "check a report, receipt (with its audit-log proofs), attestation, checkpoint signature "
                               "or two audit-log checkpoints offline")
    verify.add_argument("report", nargs="?", help="report, receipt or attestations JSON as downloaded")
    verify.add_argument("--public-key", required=True,
                        help="PEM public key: `oblivio signing-key` for documents, GET /model-signing-key for checkpoints")
    verify.add_argument("--against", type=Path, metavar="REPORT", help="also check that the receipt quotes this job report")
    verify.add_argument("--checkpoint", type=Path, help="a downloaded checkpoint to check against --signature")
    verify.add_argument("--signature", type=Path, help="its model-signing bundle (GET …/versions/N/signature)")
    verify.add_argument("--consistency", nargs=2, type=Path, metavar=("OLD", "NEW"),
                        help="two audit-log checkpoints (GET /audit/checkpoints/…, JSON or the note) to check against --proof")
    verify.add_argument("--proof", type=Path, help="their consistency proof (GET /audit/proofs/consistency?first=…&second=…)")
    audit = command("audit", "the audit log's transparency log: export it (auditor), verify an export offline")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    audit_export = audit_sub.add_parser("export", help="download every checkpoint and leaf (JSON lines)", parents=[common])
    audit_export.add_argument("-o", "--output", type=Path, help="write to this file instead of stdout")
    audit_verify = audit_sub.add_parser("verify", help="re-derive the Merkle tree from an export and check every "
                                        "signed checkpoint; names the first bad leaf", parents=[common])  # fmt: skip
    audit_verify.add_argument("export", type=Path, help="the file `oblivio audit export` wrote")
    audit_verify.add_argument("--public-key", required=True, help="PEM public key (`oblivio signing-key`)")
    signing_key = command("signing-key", "print the public key (PEM) that verifies reports")
    signing_key.add_argument("-o", "--output", type=Path, help="write to this file instead of stdout")
    signing_key.add_argument("--local", action="store_true",
                             help="read OBLIVIO_SIGNING_KEY_FILE here instead of asking the API; create the key if missing")

    keys = command("keys", "API keys (admin)")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    keys_sub.add_parser("list", help="list keys", parents=[common])
    create = keys_sub.add_parser("create", help="create a key and print it once", parents=[common])
    create.add_argument("--name", required=True)
    create.add_argument("--role", choices=[r.value for r in Role], default=Role.admin.value)
    create.add_argument("--direct", action="store_true",
                        help="write to the database (OBLIVIO_DATABASE_URL) instead of the API; the default without an API key")
    keys_sub.add_parser("revoke", help="revoke a key", parents=[common]).add_argument("key_id", type=int)

    models = command("models", "the model registry")
    models_sub = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    models_sub.add_parser("list", help="registered models", parents=[common])
    models_sub.add_parser("versions", help="versions of a model", parents=[common]).add_argument("name")
    promote = models_sub.add_parser("promote", help="move `current` to a version (admin)", parents=[common])
    promote.add_argument("name")
    promote.add_argument("version")

    serve = command("serve", "run the API (uvicorn, JSON logs)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=None,
                       help="API processes (default OBLIVIO_API_WORKERS, else one per CPU on Postgres, 1 on SQLite)")
    command("worker", "run a Celery unlearning worker (extra arguments go to Celery)")
    command("migrate", "apply database migrations (alembic upgrade head)")
    purge = command("purge", "purge checkpoint files of versions superseded past the grace period")
    purge.add_argument("--grace-seconds", type=int, default=None, help="override OBLIVIO_PURGE_GRACE_SECONDS")
    # --help goes on to worker.demo, which lists the demo's own options (--family, --samples...)
    command("demo", "run the embedded end-to-end demo on Fashion-MNIST", add_help=False)
    return parser


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument("--url", default=default(os.environ.get("OBLIVIO_URL", "http://127.0.0.1:8000")),
                        help="API base URL (env OBLIVIO_URL; default http://127.0.0.1:8000)")
    parser.add_argument("--api-key", default=default(os.environ.get("OBLIVIO_API_KEY")),
                        help="API key (env OBLIVIO_API_KEY; prefer the variable: arguments show in `ps`)")
    parser.add_argument("--json", action="store_true", default=default(False), help="print JSON for machines")
    parser.add_argument("--timeout", type=float, default=default(30.0), help="seconds to wait for each HTTP answer")


def _watch_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between polls")
    parser.add_argument("--timeout-after", type=float, default=None, metavar="SECONDS",
                        help=f"give up after this long (exit {Exit.WATCH_TIMEOUT.value})")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="draw the progress bar (default: when stderr is a terminal)")


def _request_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a request id (a UUID)") from None
