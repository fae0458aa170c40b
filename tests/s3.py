"""A real S3 endpoint for the tests: moto's server mode on a free port (in-process thread or a subprocess)."""

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import boto3
import httpx
from botocore.config import Config

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def threaded_server() -> Iterator[str]:
    """moto's S3 in a thread of this process, serving HTTP like any endpoint; yields its URL."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per S3 call otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@contextmanager
def server_process() -> Iterator[str]:
    """moto in its own process: its IAM enforcement can be switched on without touching the shared server."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "INITIAL_NO_AUTH_ACTION_COUNT"}
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/moto-api/", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def client(endpoint: str, service: str = "s3", **credentials: str):
    keys = {"aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            **credentials}
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", config=Config(s3={"addressing_style": "path"}),
                        **keys)


def new_bucket(endpoint: str, *, versioned: bool = False) -> str:
    name = f"oblivio-{uuid.uuid4().hex[:12]}"
    s3 = client(endpoint)
    s3.create_bucket(Bucket=name)
    if versioned:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def store_env(endpoint: str, bucket: str, prefix: str = "artifacts") -> dict[str, str]:
    """The environment that points API and workers at ``s3://bucket/prefix`` on the endpoint."""
    return {"OBLIVIO_ARTIFACT_URL": f"s3://{bucket}/{prefix}", "OBLIVIO_S3_ENDPOINT_URL": endpoint,
            "OBLIVIO_S3_ADDRESSING_STYLE": "path", **CREDENTIALS}


def all_versions(endpoint: str, bucket: str, prefix: str = "") -> list[str]:
    """Every object version and delete marker under ``prefix``, as 'key@version'."""
    listing = client(endpoint).list_object_versions(Bucket=bucket, Prefix=prefix)
    return [f"{e['Key']}@{e['VersionId']}" for e in listing.get("Versions", []) + listing.get("DeleteMarkers", [])]


class Requests:
    """The requests the threaded moto server answered for one bucket, as 'METHOD path?query', from its access log
    (werkzeug's log lines, captured with pytest's caplog): what a process sent, counted where it arrived."""

    def __init__(self, caplog, bucket: str):
        import logging

        caplog.set_level(logging.INFO, logger="werkzeug")
        self.caplog, self.bucket = caplog, bucket

    def __call__(self) -> list[str]:
        import re

        lines = [re.sub(r"\x1b\[[0-9;]*m", "", r.getMessage()) for r in self.caplog.records if r.name == "werkzeug"]
        return [line.split('"')[1].rsplit(" ", 1)[0] for line in lines if f"/{self.bucket}" in line]

    def probes(self) -> list[str]:
        """Requests about a purge-permission probe object (its write, its versions' listing, its deletion)."""
        return [r for r in self() if ".oblivio-probe/" in r]
