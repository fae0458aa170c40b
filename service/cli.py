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

    args, extra = parser.parse_known_args(argv)
    if args.command == "worker":
        os.execv(sys.executable, [sys.executable, "-m", "worker", *extra])
    if args.command == "demo":
        os.execv(sys.executable, [sys.executable, "-m", "worker.demo", *extra])
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return _run(args)


def _run(args: argparse.Namespace) -> int:
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
