"""`oblivio`: officers' commands over HTTP, operators' commands on this machine.

Over HTTP (--url, --api-key): submit, status, list, watch, cancel, approve, reject, report,
signing-key, keys, models. Here: serve, worker, migrate, purge, demo, verify, and `keys create`
straight into the database when no API key is configured (bootstrapping the first admin).
Exit codes are the `Exit` values below; the README's officer's guide lists them.
"""

import argparse
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from enum import IntEnum
from pathlib import Path
from typing import Any

import httpx

from service.client import ApiError, Client, Unreachable
from service.config import get_settings
from service.db.enums import TERMINAL_REQUEST_STATUSES, Method, Mode, RequestStatus, Role


class Exit(IntEnum):
    OK = 0  # watch: the request completed
    FAILED = 1  # refused as invalid (400, 413, 415, 422); verify: signature INVALID
    USAGE = 2  # bad arguments or an unreadable input file
    NOT_FOUND = 3
    AUTH = 4  # missing, wrong or revoked key (401), or a role that may not do it (403)
    CONFLICT = 5  # not in a state that allows it (409): too late to cancel, idempotency key reused, promotion refused
    UNREACHABLE = 6  # no answer (connection refused, timeout) or 503 Unavailable: retry later
    SERVER_ERROR = 7  # any other 5xx: a bug, quote the request id
    REQUEST_FAILED = 10  # watch: the request ended failed
    REQUEST_CANCELLED = 11
    REQUEST_REJECTED = 12
    WATCH_TIMEOUT = 13  # watch --timeout passed before a terminal state


WATCH_EXIT = {
    RequestStatus.completed: Exit.OK,
    RequestStatus.failed: Exit.REQUEST_FAILED,
    RequestStatus.cancelled: Exit.REQUEST_CANCELLED,
    RequestStatus.rejected: Exit.REQUEST_REJECTED,
}
_STATUS_EXIT = {401: Exit.AUTH, 403: Exit.AUTH, 404: Exit.NOT_FOUND, 409: Exit.CONFLICT, 503: Exit.UNREACHABLE}
_WATCH_OUTAGE_SECONDS = 60  # how long watch rides out an unreachable or unavailable API


class UsageError(Exception):
    pass


def main(argv: list[str] | None = None, *, http: httpx.Client | None = None) -> int:
    """Run one command; `http` replaces the connection to --url (tests pass an in-process client)."""
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if args.command in ("worker", "demo"):
        module = "worker" if args.command == "worker" else "worker.demo"
        os.execv(sys.executable, [sys.executable, "-m", module, *extra])
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(_run(args, http))
    except ApiError as exc:
        return _api_error(exc)
    except Unreachable as exc:
        _err(f"error: {exc}")
        return Exit.UNREACHABLE
    except UsageError as exc:
        _err(f"error: {exc}")
        return Exit.USAGE
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
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
    verify = command("verify", "check a report, receipt, attestation or checkpoint signature offline")
    verify.add_argument("report", nargs="?", help="report, receipt or attestations JSON as downloaded")
    verify.add_argument("--public-key", required=True,
                        help="PEM public key: `oblivio signing-key` for documents, GET /model-signing-key for checkpoints")
    verify.add_argument("--against", type=Path, metavar="REPORT", help="also check that the receipt quotes this job report")
    verify.add_argument("--checkpoint", type=Path, help="a downloaded checkpoint to check against --signature")
    verify.add_argument("--signature", type=Path, help="its model-signing bundle (GET …/versions/N/signature)")
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
    serve.add_argument("--workers", type=int, default=1)
    command("worker", "run a Celery unlearning worker (extra arguments go to Celery)")
    command("migrate", "apply database migrations (alembic upgrade head)")
    purge = command("purge", "purge checkpoint files of versions superseded past the grace period")
    purge.add_argument("--grace-seconds", type=int, default=None, help="override OBLIVIO_PURGE_GRACE_SECONDS")
    command("demo", "run the embedded end-to-end demo on Fashion-MNIST")
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


def _run(args: argparse.Namespace, http: httpx.Client | None) -> int:
    local = {"serve": _serve, "migrate": _migrate, "purge": _purge, "verify": _verify}
    if args.command in local:
        return local[args.command](args)
    if args.command == "signing-key" and args.local:
        return _local_signing_key(args)
    if args.command == "keys" and args.keys_command == "create" and (args.direct or not args.api_key):
        return _create_key_directly(args)
    client = Client(http, args.api_key) if http is not None else Client.connect(args.url, args.api_key, args.timeout)
    commands: dict[str, Callable[[Client, argparse.Namespace], int]] = {
        "submit": _submit, "status": _status, "list": _list, "watch": _watch_command, "cancel": _decide,
        "approve": _decide, "reject": _decide, "report": _report, "receipt": _receipt, "signing-key": _signing_key,
        "keys": _keys, "models": _models,
    }
    return commands[args.command](client, args)


# --- requests ---------------------------------------------------------------------------------


def _submit(client: Client, args: argparse.Namespace) -> int:
    samples = [*args.samples, *(_read_keys(args.samples_file) if args.samples_file else [])]
    body = {"model": args.model, "samples": samples, "classes": args.classes, "mode": args.mode, "method": args.method,
            "external_id": args.external_id, "due_at": args.due_at.isoformat() if args.due_at else None}
    request, created = client.submit({k: v for k, v in body.items() if v is not None}, idempotency_key=args.idempotency_key)
    if not args.json or not args.watch:
        _show(args, request, lambda r: f"{'filed' if created else 'already filed (replay)'}: {_summary(r)}")
    return _watch(client, request, args) if args.watch else Exit.OK


def _read_keys(path: Path) -> list[str]:
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read sample keys from {path}: {exc}") from exc
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _status(client: Client, args: argparse.Namespace) -> int:
    _show(args, client.request(args.id), _details)
    return Exit.OK


def _list(client: Client, args: argparse.Namespace) -> int:
    filters = {"status": args.status, "model": args.model, "limit": args.limit,
               "due_before": args.due_before.isoformat() if args.due_before else None}
    page = client.requests(**filters, cursor=args.cursor)
    items = page["items"]
    while args.all and page["next_cursor"]:
        page = client.requests(**filters, cursor=page["next_cursor"])
        items += page["items"]
    result = {"items": items, "next_cursor": page["next_cursor"]}
    _show(args, result, _request_table)
    return Exit.OK


def _request_table(page: dict) -> str:
    rows = [(r["id"], r["status"], r["model"], _forget_set(r), _when(r["due_at"]), _version(r["result_version"]))
            for r in page["items"]]
    table = _table(("ID", "STATUS", "MODEL", "FORGET", "DUE", "VERSION"), rows) if rows else "no requests"
    return table + (f"\nmore: --cursor {page['next_cursor']}" if page["next_cursor"] else "")


def _decide(client: Client, args: argparse.Namespace) -> int:
    """cancel, approve or reject."""
    if args.command == "reject":
        request = client.reject(args.id, args.reason)
    else:
        request = getattr(client, args.command)(args.id)
    _show(args, request, _summary)
    return Exit.OK


def _watch_command(client: Client, args: argparse.Namespace) -> int:
    return _watch(client, client.request(args.id), args)


def _watch(client: Client, request: dict, args: argparse.Namespace) -> int:
    """Poll until a terminal state, drawing step/total and the losses; print the result; exit by outcome."""
    from tqdm import tqdm

    show_bar = args.progress if args.progress is not None else sys.stderr.isatty()
    deadline = time.monotonic() + args.timeout_after if args.timeout_after else None
    with tqdm(desc=request["id"][:8], unit="step", file=sys.stderr, disable=not show_bar, dynamic_ncols=True) as bar:
        while True:
            _draw(bar, request)
            if RequestStatus(request["status"]) in TERMINAL_REQUEST_STATUSES:
                break
            if deadline is not None and time.monotonic() > deadline:
                bar.close()
                _err(f"error: request {request['id']} is still {request['status']} after {args.timeout_after:g} s")
                return Exit.WATCH_TIMEOUT
            time.sleep(args.interval)
            request = _poll(client, request["id"])
    _show(args, request, _details)
    return WATCH_EXIT[RequestStatus(request["status"])]


def _poll(client: Client, request_id: str) -> dict:
    """The request's current state; rides out an API restart of up to a minute."""
    outage_since = None
    while True:
        try:
            return client.request(request_id)
        except (Unreachable, ApiError) as exc:
            if isinstance(exc, ApiError) and exc.status != 503:
                raise
            outage_since = outage_since or time.monotonic()
            if time.monotonic() - outage_since > _WATCH_OUTAGE_SECONDS:
                raise
            time.sleep(2)


def _draw(bar, request: dict) -> None:
    progress = (request.get("job") or {}).get("progress") or {}
    if progress.get("total"):
        bar.total, bar.n = progress["total"], progress["step"]
    losses = {k: f"{v:.4g}" for k, v in progress.get("losses", {}).items()}
    bar.set_postfix({"status": request["status"], **losses}, refresh=False)
    bar.refresh()


# --- reports and keys -------------------------------------------------------------------------


def _report(client: Client, args: argparse.Namespace) -> int:
    response = client.report(args.id, html=args.html)
    digest = response.headers.get("x-report-digest")
    if args.output is None:
        sys.stdout.buffer.write(response.content + (b"" if response.content.endswith(b"\n") else b"\n"))
        return Exit.OK
    _write(args.output, response.content)
    result = {"request": args.id, "path": str(args.output), "format": "html" if args.html else "json", "digest": digest}
    _show(args, result, lambda r: f"report of {r['request']} written to {r['path']}" + (f" (digest {digest})" if digest else ""))
    return Exit.OK


def _receipt(client: Client, args: argparse.Namespace) -> int:
    content = client.call("GET", f"/unlearn-requests/{args.id}/receipt").content
    if args.output is None:
        sys.stdout.buffer.write(content + b"\n")
        return Exit.OK
    _write(args.output, content)
    result = {"request": args.id, "path": str(args.output)}
    _show(args, result, lambda r: f"receipt of {r['request']} written to {r['path']}")
    return Exit.OK


def _verify(args: argparse.Namespace) -> int:
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
    _show(args, {"ok": ok, "reason": reason}, lambda r: f"{'OK' if ok else 'INVALID'}: {reason}")
    return Exit.OK if ok else Exit.FAILED


def _signing_key(client: Client, args: argparse.Namespace) -> int:
    return _write_pem(args, client.signing_key())


def _local_signing_key(args: argparse.Namespace) -> int:
    from service.audit.signing import Signer

    return _write_pem(args, Signer.from_file(get_settings().signing_key_file, create=True).public_pem())


def _write_pem(args: argparse.Namespace, pem: str) -> int:
    if args.output:
        _write(args.output, pem.encode())
        _err(f"public key written to {args.output}")
    else:
        print(pem, end="")
    return Exit.OK


def _keys(client: Client, args: argparse.Namespace) -> int:
    if args.keys_command == "list":
        keys = client.keys()
        rows = [(k["id"], k["name"], k["role"], k["prefix"], _when(k["created_at"]), _when(k["revoked_at"])) for k in keys]
        _show(args, keys, lambda _: _table(("ID", "NAME", "ROLE", "PREFIX", "CREATED", "REVOKED"), rows))
    elif args.keys_command == "create":
        _show_new_key(args, client.create_key(args.name, args.role))
    else:
        key = client.revoke_key(args.key_id)
        _show(args, key, lambda k: f"revoked key {k['id']} ({k['name']}, {k['role']})")
    return Exit.OK


def _create_key_directly(args: argparse.Namespace) -> int:
    from service.db.session import make_engine, make_sessionmaker
    from service.domain.auth import create_api_key

    with make_sessionmaker(make_engine(get_settings())).begin() as session:
        key, token = create_api_key(session, name=args.name, role=Role(args.role), actor="cli")
        created = {"id": key.id, "name": key.name, "role": key.role.value, "prefix": key.prefix, "key": token}
    _show_new_key(args, created)
    return Exit.OK


def _show_new_key(args: argparse.Namespace, created: dict) -> None:
    if not args.json:
        _err(f"created key {created['id']} '{created['name']}' ({created['role']}); it is shown only this once")
    _show(args, created, lambda k: k["key"])


def _models(client: Client, args: argparse.Namespace) -> int:
    if args.models_command == "list":
        models = client.models()
        rows = [(m["name"], m["family"], _version(m["current_version"]), m["training_dataset"], m["proxy_dataset"] or "-")
                for m in models]
        _show(args, models, lambda _: _table(("NAME", "FAMILY", "CURRENT", "TRAINING", "PROXY"), rows))
    elif args.models_command == "versions":
        versions = client.versions(args.name)
        rows = [(_version(v["version"]), _version(v["parent_version"]), v["status"], "yes" if v["is_current"] else "no",
                 v["checkpoint_digest"][:16], _when(v["created_at"]), len(v["absorbed_request_ids"])) for v in versions]
        headers = ("VERSION", "PARENT", "STATUS", "CURRENT", "SHA256", "CREATED", "REQUESTS")
        _show(args, versions, lambda _: _table(headers, rows))
    else:
        version = client.promote(args.name, args.version)
        _show(args, version, lambda v: f"{args.name}: current is now v{v['version']}")
    return Exit.OK


# --- operator commands on this machine ---------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from service.logs import logging_config

    config = logging_config(get_settings().log_level)
    # Requests are logged by the app (with their request id); uvicorn's own access lines would repeat them.
    uvicorn.run("service.asgi:app", host=args.host, port=args.port, workers=args.workers, log_config=config, access_log=False)
    return Exit.OK


def _migrate(args: argparse.Namespace) -> int:
    from service.db.migrate import upgrade

    upgrade(get_settings())
    print("database at head")
    return Exit.OK


def _purge(args: argparse.Namespace) -> int:
    from service.db.session import make_engine, make_sessionmaker
    from service.domain.hygiene import purge_superseded
    from service.storage import make_store

    settings = get_settings()
    grace = settings.purge_grace_seconds if args.grace_seconds is None else args.grace_seconds
    with make_sessionmaker(make_engine(settings)).begin() as session:
        purged = purge_superseded(session, store=make_store(settings), grace_seconds=grace, actor="cli")
    print(f"purged {len(purged)} version(s)")
    return Exit.OK


# --- output ------------------------------------------------------------------------------------


def _show(args: argparse.Namespace, data: Any, human: Callable[[Any], str]) -> None:
    print(json.dumps(data, indent=2, default=str) if args.json else human(data))


def _write(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc}") from exc


def _err(message: str) -> None:
    print(message, file=sys.stderr)


def _api_error(exc: ApiError) -> int:
    detail = exc.detail
    items = detail.get("items", []) if isinstance(detail, dict) else detail if isinstance(detail, list) else []
    message = detail.get("message", "") if isinstance(detail, dict) else "" if isinstance(detail, list) else detail
    _err(f"error: {exc.kind}: {message or 'see below'}")
    for item in items:
        _err(f"  - {_problem(item)}")
    if isinstance(detail, dict) and detail.get("truncated"):
        _err(f"  … {detail['count'] - len(items)} more ({detail['count']} in all)")
    if exc.status == 401:
        _err("  (set OBLIVIO_API_KEY or pass --api-key)")
    if exc.status >= 500 and exc.request_id:
        _err(f"  (request id {exc.request_id}: quote it when you report this)")
    return _STATUS_EXIT.get(exc.status, Exit.SERVER_ERROR if exc.status >= 500 else Exit.FAILED)


def _problem(item: Any) -> str:
    if isinstance(item, dict) and "problem" in item:
        value = f" {item['value']!r}" if "value" in item else ""
        return f"{item.get('field', '?')}{value}: {item['problem']}"
    if isinstance(item, dict) and "msg" in item:
        return f"{'.'.join(str(p) for p in item.get('loc', []))}: {item['msg']}"
    return str(item)


def _summary(r: dict) -> str:
    status = r["status"] + (f" ({r['reason']})" if r.get("reason") else "")
    return f"request {r['id']} {status}: forget {_forget_set(r)} from {r['model']}, due {_when(r['due_at'])}"


def _details(r: dict) -> str:
    lines = [
        ("request", r["id"] + (f"  (external id {r['external_id']})" if r.get("external_id") else "")),
        ("status", r["status"] + (f"  ({r['reason']})" if r.get("reason") else "")),
        ("model", f"{r['model']}  ({r['mode']}, {r['method']})"),
        ("settings", " ".join(f"{k}={v}" for k, v in r["effective_config"].items())),
        ("forget", _forget_set(r, full=True)),
        ("received", _when(r["received_at"])),
        ("due", _when(r["due_at"])),
    ]
    if r.get("finished_at"):
        lines.append(("finished", _when(r["finished_at"])))
    if job := r.get("job"):
        progress = job["progress"]
        steps = f"step {progress['step']}/{progress['total']}" if progress["total"] else "not started"
        losses = " ".join(f"{k}={v:.4g}" for k, v in progress["losses"].items())
        lines.append(("job", f"{job['id']}  {job['status']}, {steps} {losses}".rstrip()))
    if r.get("result_version"):
        lines.append(("version", f"v{r['result_version']}  ({r['links'].get('checkpoint', '')})"))
    if r.get("reason_detail"):
        lines.append(("detail", r["reason_detail"]))
    return "\n".join(f"{label:<9} {text}" for label, text in lines)


def _forget_set(r: dict, full: bool = False) -> str:
    parts = []
    if r["classes"]:
        parts.append("class" + ("es " if len(r["classes"]) > 1 else " ") + ", ".join(r["classes"]))
    if r["samples"]:
        shown = r["samples"] if full or len(r["samples"]) <= 2 else [*r["samples"][:2], "…"]
        parts.append(f"{len(r['samples'])} sample{'s' if len(r['samples']) > 1 else ''} ({', '.join(shown)})")
    return "; ".join(parts) or "-"


def _when(value: str | None) -> str:
    return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"


def _version(value: int | None) -> str:
    return f"v{value}" if value is not None else "-"


def _table(headers: tuple[str, ...], rows: Iterable[tuple]) -> str:
    cells = [tuple(str(c) for c in headers), *(tuple(str(c) for c in row) for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells)


if __name__ == "__main__":
    sys.exit(main())
