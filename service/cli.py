"""`oblivio` command line: serve, worker, migrate, keys, demo."""

import argparse
import os
import sys

from service.config import get_settings
from service.db.enums import Role


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="oblivio", description="Machine unlearning for image-to-image generators.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the API (uvicorn)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)

    sub.add_parser("worker", help="run a Celery unlearning worker (extra arguments go to Celery)")
    sub.add_parser("migrate", help="apply database migrations (alembic upgrade head)")

    keys = sub.add_parser("keys", help="manage API keys directly in the database")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key and print it once")
    create.add_argument("--name", required=True)
    create.add_argument("--role", choices=[r.value for r in Role], default=Role.admin.value)

    sub.add_parser("demo", help="run the embedded end-to-end demo on Fashion-MNIST")

    verify = sub.add_parser("verify", help="check a report's Ed25519 signature offline")
    verify.add_argument("report", help="report JSON as downloaded from GET /unlearn-requests/{id}/report")
    verify.add_argument("--public-key", required=True, help="PEM file of the public key (GET /signing-key)")

    purge = sub.add_parser("purge", help="purge checkpoint files of versions superseded past the grace period")
    purge.add_argument("--grace-seconds", type=int, default=None, help="override OBLIVIO_PURGE_GRACE_SECONDS")

    args, extra = parser.parse_known_args(argv)
    if args.command == "worker":
        os.execv(sys.executable, [sys.executable, "-m", "worker", *extra])
    if args.command == "demo":
        os.execv(sys.executable, [sys.executable, "-m", "worker.demo", *extra])
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return _run(args)


def _run(args: argparse.Namespace) -> int:
    if args.command == "verify":
        return _verify(args.report, args.public_key)
    settings = get_settings()
    if args.command == "serve":
        import uvicorn

        from service.logs import configure_logging

        configure_logging(settings.log_level)
        uvicorn.run("service.asgi:app", host=args.host, port=args.port, workers=args.workers, log_config=None)
    elif args.command == "migrate":
        from service.db.migrate import upgrade

        upgrade(settings)
        print("database at head")
    elif args.command == "keys":
        from service.db.session import make_engine, make_sessionmaker
        from service.domain.auth import create_api_key

        with make_sessionmaker(make_engine(settings)).begin() as session:
            key, token = create_api_key(session, name=args.name, role=Role(args.role), actor="cli")
        print(token)
    elif args.command == "purge":
        from service.db.session import make_engine, make_sessionmaker
        from service.domain.hygiene import purge_superseded
        from service.storage import make_store

        grace = settings.purge_grace_seconds if args.grace_seconds is None else args.grace_seconds
        with make_sessionmaker(make_engine(settings)).begin() as session:
            purged = purge_superseded(session, store=make_store(settings), grace_seconds=grace, actor="cli")
        print(f"purged {len(purged)} version(s)")
    return 0


def _verify(report_path: str, key_path: str) -> int:
    import json

    from service.audit.canonical import digest
    from service.audit.signing import load_public_pem, verify_signed

    try:
        document = json.loads(open(report_path, "rb").read())
        public_key = load_public_pem(open(key_path, "rb").read())
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ok, reason = verify_signed(document, public_key)
    if ok and document.get("digest") not in (None, digest(document["body"])):
        ok, reason = False, "stated digest does not match the body"
    print(f"{'OK' if ok else 'INVALID'}: {reason}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
