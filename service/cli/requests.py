"""Officers' request commands over HTTP: submit, status, list, watch, cancel/approve/reject, report."""

import argparse
import sys
import time
from pathlib import Path

from service.cli.exits import WATCH_EXIT, Exit, UsageError
from service.cli.output import details, err, forget_set, render_table, show, summary, version_label, when, write
from service.cli.progress import BAR_FORMAT, postfix, progress_of
from service.client import ApiError, Client, Unreachable
from service.db.enums import TERMINAL_REQUEST_STATUSES, RequestStatus

_WATCH_OUTAGE_SECONDS = 60  # how long watch rides out an unreachable or unavailable API


def submit(client: Client, args: argparse.Namespace) -> int:
    samples = [*args.samples, *(_read_keys(args.samples_file) if args.samples_file else [])]
    budget = {"steps": args.steps} if args.steps is not None else {}
    body = {"model": args.model, "samples": samples, "classes": args.classes, "mode": args.mode, "method": args.method,
            "external_id": args.external_id, "due_at": args.due_at.isoformat() if args.due_at else None,
            "config": budget or None}
    request, created = client.submit({k: v for k, v in body.items() if v is not None}, idempotency_key=args.idempotency_key)
    if not args.json or not args.watch:
        show(args, request, lambda r: f"{'filed' if created else 'already filed (replay)'}: {summary(r)}")
    return _watch(client, request, args) if args.watch else Exit.OK


def _read_keys(path: Path) -> list[str]:
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read sample keys from {path}: {exc}") from exc
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def status(client: Client, args: argparse.Namespace) -> int:
    show(args, client.request(args.id), details)
    return Exit.OK


def list_requests(client: Client, args: argparse.Namespace) -> int:
    filters = {"status": args.status, "model": args.model, "limit": args.limit,
               "due_before": args.due_before.isoformat() if args.due_before else None}
    page = client.requests(**filters, cursor=args.cursor)
    items = page["items"]
    while args.all and page["next_cursor"]:
        page = client.requests(**filters, cursor=page["next_cursor"])
        items += page["items"]
    result = {"items": items, "next_cursor": page["next_cursor"]}
    show(args, result, _request_table)
    return Exit.OK


def _request_table(page: dict) -> str:
    rows = [(r["id"], r["status"], r["model"], forget_set(r), when(r["due_at"]), version_label(r["result_version"]))
            for r in page["items"]]
    table = render_table(("ID", "STATUS", "MODEL", "FORGET", "DUE", "VERSION"), rows) if rows else "no requests"
    return table + (f"\nmore: --cursor {page['next_cursor']}" if page["next_cursor"] else "")


def decide(client: Client, args: argparse.Namespace) -> int:
    """cancel, approve or reject."""
    if args.command == "reject":
        request = client.reject(args.id, args.reason)
    else:
        request = getattr(client, args.command)(args.id)
    show(args, request, summary)
    return Exit.OK


def watch_command(client: Client, args: argparse.Namespace) -> int:
    return _watch(client, client.request(args.id), args)


def _watch(client: Client, request: dict, args: argparse.Namespace) -> int:
    """Poll until a terminal state, drawing step/total and the losses; print the result; exit by outcome."""
    from tqdm import tqdm

    show_bar = args.progress if args.progress is not None else sys.stderr.isatty()
    deadline = time.monotonic() + args.timeout_after if args.timeout_after else None
    with tqdm(desc=request["id"][:8], unit="step", file=sys.stderr, disable=not show_bar, dynamic_ncols=True,
              bar_format=BAR_FORMAT) as bar:
        while True:
            _draw(bar, request)
            if RequestStatus(request["status"]) in TERMINAL_REQUEST_STATUSES:
                break
            if deadline is not None and time.monotonic() > deadline:
                bar.close()
                err(f"error: request {request['id']} is still {request['status']} after {args.timeout_after:g} s")
                return Exit.WATCH_TIMEOUT
            time.sleep(args.interval)
            request = _poll(client, request["id"])
    show(args, request, details)
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
    """The job's own steps, phase, rate and ETA (coalesced requests share their job's progress)."""
    view = progress_of(request)
    if view.total:
        bar.total, bar.n = view.total, view.step
    losses = ((request.get("job") or {}).get("progress") or {}).get("losses", {})
    bar.set_postfix(postfix(view, request["status"], losses), refresh=False)
    bar.refresh()


def receipt(client: Client, args: argparse.Namespace) -> int:
    content = client.call("GET", f"/unlearn-requests/{args.id}/receipt").content
    if args.output is None:
        sys.stdout.buffer.write(content + b"\n")
        return Exit.OK
    write(args.output, content)
    result = {"request": args.id, "path": str(args.output)}
    show(args, result, lambda r: f"receipt of {r['request']} written to {r['path']}")
    return Exit.OK


def report(client: Client, args: argparse.Namespace) -> int:
    response = client.report(args.id, html=args.html)
    digest = response.headers.get("x-report-digest")
    if args.output is None:
        sys.stdout.buffer.write(response.content + (b"" if response.content.endswith(b"\n") else b"\n"))
        return Exit.OK
    write(args.output, response.content)
    result = {"request": args.id, "path": str(args.output), "format": "html" if args.html else "json", "digest": digest}
    show(args, result, lambda r: f"report of {r['request']} written to {r['path']}" + (f" (digest {digest})" if digest else ""))
    return Exit.OK
