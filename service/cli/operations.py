"""Operators' commands on this machine: serve the API, migrate the database, purge superseded checkpoints."""

import argparse

from service.cli.exits import Exit
from service.cli.output import err
from service.config import get_settings


def serve(args: argparse.Namespace) -> int:
    """Say where the state is, refuse an unmigrated database, then run uvicorn."""
    import uvicorn
    from sqlalchemy.exc import OperationalError

    from service.db.migrate import head_revision, schema_problem, state_summary
    from service.logs import logging_config
    from service.storage import StoreRefused, make_store

    settings = get_settings()
    for line in state_summary(settings):
        err(f"oblivio serve: {line}")
    try:
        problem = schema_problem(settings, head=head_revision())
    except OperationalError as exc:  # unreachable now: serve anyway, /readyz answers 503 until it is back
        err(f"oblivio serve: database unreachable for now ({type(exc.orig).__name__}); /readyz reports it")
        problem = None
    if problem:
        err(f"error: not serving: {problem}")
        return Exit.CONFLICT
    try:
        make_store(settings)  # an S3 bucket is checked here: reachable, and a purge can delete every version
    except StoreRefused as exc:
        err(f"error: not serving: {exc}")
        return Exit.CONFLICT
    if settings.artifact_url:
        _probed(settings.artifact_url)
    from service.audit.signing import Signer

    workers = api_workers(settings, args.workers)
    Signer.from_file(settings.signing_key_file, create=True)  # once, here: the worker processes only read it
    err(f"oblivio serve: {workers} API process{'es' if workers > 1 else ''}")
    config = logging_config(settings.log_level)
    # Requests are logged by the app (with their request id); uvicorn's own access lines would repeat them.
    uvicorn.run("service.asgi:app", host=args.host, port=args.port, workers=workers, log_config=config, access_log=False)
    return Exit.OK


def _probed(artifact_url: str) -> None:
    """Tell the API processes (uvicorn's children, or this process) that the bucket's probe passed here."""
    import os

    os.environ["OBLIVIO_ARTIFACT_PROBED_URL"] = artifact_url
    get_settings.cache_clear()  # one API process runs in this process and reads its settings again


def api_workers(settings, requested: int | None) -> int:
    """How many API processes: asked for, else configured, else one per CPU (on SQLite one: it has one writer)."""
    import os

    if requested:
        return requested
    if settings.api_workers:
        return settings.api_workers
    return 1 if settings.is_sqlite else max(1, len(os.sched_getaffinity(0)))


def migrate(args: argparse.Namespace) -> int:
    from service.db.migrate import upgrade

    upgrade(get_settings())
    print("database at head")
    return Exit.OK


def purge(args: argparse.Namespace) -> int:
    from service.db.session import make_engine, make_sessionmaker
    from service.domain.hygiene import purge_superseded
    from service.storage import make_store

    settings = get_settings()
    grace = settings.purge_grace_seconds if args.grace_seconds is None else args.grace_seconds
    with make_sessionmaker(make_engine(settings)).begin() as session:
        purged = purge_superseded(session, store=make_store(settings), grace_seconds=grace, actor="cli")
    print(f"purged {len(purged)} version(s)")
    return Exit.OK
