"""API keys and the report-signing public key: `keys list|create|revoke`, `signing-key`."""

import argparse

from service.cli.exits import Exit
from service.cli.output import err, render_table, show, when, write
from service.client import Client
from service.config import get_settings
from service.db.enums import Role


def signing_key(client: Client, args: argparse.Namespace) -> int:
    return _write_pem(args, client.signing_key())


def local_signing_key(args: argparse.Namespace) -> int:
    """The report-signing key's public half, creating the key, and the checkpoint-signing key beside it,
    where they are missing: compose's one-shot `migrate` runs this so API and workers, which mount the
    keys read-only, find both."""
    from service.audit.model_keys import ensure_model_signing_key
    from service.audit.signing import Signer

    settings = get_settings()
    ensure_model_signing_key(settings.model_signing_key_file)
    return _write_pem(args, Signer.from_file(settings.signing_key_file, create=True).public_pem())


def _write_pem(args: argparse.Namespace, pem: str) -> int:
    if args.output:
        write(args.output, pem.encode())
        err(f"public key written to {args.output}")
    else:
        print(pem, end="")
    return Exit.OK


def keys(client: Client, args: argparse.Namespace) -> int:
    if args.keys_command == "list":
        keys = client.keys()
        rows = [(k["id"], k["name"], k["role"], k["prefix"], when(k["created_at"]), when(k["revoked_at"])) for k in keys]
        show(args, keys, lambda _: render_table(("ID", "NAME", "ROLE", "PREFIX", "CREATED", "REVOKED"), rows))
    elif args.keys_command == "create":
        _show_new_key(args, client.create_key(args.name, args.role))
    else:
        key = client.revoke_key(args.key_id)
        show(args, key, lambda k: f"revoked key {k['id']} ({k['name']}, {k['role']})")
    return Exit.OK


def create_key_directly(args: argparse.Namespace) -> int:
    from service.db.session import make_engine, make_sessionmaker
    from service.domain.auth import create_api_key

    with make_sessionmaker(make_engine(get_settings())).begin() as session:
        key, token = create_api_key(session, name=args.name, role=Role(args.role), actor="cli")
        created = {"id": key.id, "name": key.name, "role": key.role.value, "prefix": key.prefix, "key": token}
    _show_new_key(args, created)
    return Exit.OK


def _show_new_key(args: argparse.Namespace, created: dict) -> None:
    if not args.json:
        err(f"created key {created['id']} '{created['name']}' ({created['role']}); it is shown only this once")
    show(args, created, lambda k: k["key"])
