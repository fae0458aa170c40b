"""`oblivio`: officers' commands over HTTP, operators' commands on this machine.

Over HTTP (--url, --api-key): submit, status, list, watch, cancel, approve, reject, report,
signing-key, keys, models, audit export. Here: serve, worker, migrate, purge, demo, verify, audit verify, and `keys create`
straight into the database when no API key is configured (bootstrapping the first admin).
Exit codes are the `Exit` values (service/cli/exits.py); the README's officer's guide lists them.
"""

import argparse
from collections.abc import Callable

import httpx

from service.cli import audit, keys, operations, registry, requests
from service.cli.delegated import hand_over
from service.cli.exits import WATCH_EXIT, Exit, UsageError
from service.cli.output import api_error, err
from service.cli.parser import build_parser
from service.cli.verify import verify
from service.client import ApiError, Client, Unreachable

__all__ = ["WATCH_EXIT", "Exit", "main"]


def main(argv: list[str] | None = None, *, http: httpx.Client | None = None) -> int:
    """Run one command; `http` replaces the connection to --url (tests pass an in-process client)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command in ("worker", "demo"):
        hand_over(args.command, extra)
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(_run(args, http))
    except ApiError as exc:
        return api_error(exc)
    except Unreachable as exc:
        err(f"error: {exc}")
        return Exit.UNREACHABLE
    except UsageError as exc:
        err(f"error: {exc}")
        return Exit.USAGE
    except KeyboardInterrupt:
        return 130


def _run(args: argparse.Namespace, http: httpx.Client | None) -> int:
    local = {"serve": operations.serve, "migrate": operations.migrate, "purge": operations.purge, "verify": verify}
    if args.command in local:
        return local[args.command](args)
    if args.command == "audit" and args.audit_command == "verify":
        return audit.verify_export(args)
    if args.command == "signing-key" and args.local:
        return keys.local_signing_key(args)
    if args.command == "keys" and args.keys_command == "create" and (args.direct or not args.api_key):
        return keys.create_key_directly(args)
    client = Client(http, args.api_key) if http is not None else Client.connect(args.url, args.api_key, args.timeout)
    commands: dict[str, Callable[[Client, argparse.Namespace], int]] = {
        "submit": requests.submit, "status": requests.status, "list": requests.list_requests,
        "watch": requests.watch_command, "cancel": requests.decide, "approve": requests.decide,
        "reject": requests.decide, "report": requests.report, "receipt": requests.receipt, "signing-key": keys.signing_key,
        "keys": keys.keys, "models": registry.models, "audit": audit.export,
    }
    return commands[args.command](client, args)
