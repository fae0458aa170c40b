"""The model registry over HTTP: `models list|versions|promote`."""

import argparse

from service.cli.exits import Exit
from service.cli.output import render_table, show, version_label, when
from service.client import Client


def models(client: Client, args: argparse.Namespace) -> int:
    if args.models_command == "list":
        models = client.models()
        rows = [(m["name"], m["family"], version_label(m["current_version"]), m["training_dataset"], m["proxy_dataset"] or "-")
                for m in models]
        show(args, models, lambda _: render_table(("NAME", "FAMILY", "CURRENT", "TRAINING", "PROXY"), rows))
    elif args.models_command == "versions":
        versions = client.versions(args.name)
        rows = [(version_label(v["version"]), version_label(v["parent_version"]), v["status"], "yes" if v["is_current"] else "no",
                 v["checkpoint_digest"][:16], when(v["created_at"]), len(v["absorbed_request_ids"])) for v in versions]
        headers = ("VERSION", "PARENT", "STATUS", "CURRENT", "SHA256", "CREATED", "REQUESTS")
        show(args, versions, lambda _: render_table(headers, rows))
    else:
        version = client.promote(args.name, args.version)
        show(args, version, lambda v: f"{args.name}: current is now v{v['version']}")
    return Exit.OK
