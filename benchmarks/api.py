"""Throughput and latency of ``POST /unlearn-requests`` next to a bare FastAPI endpoint (the ceiling).

    python -m benchmarks.api [--levels 1 16 64] [--per-client 3]

The real stack (tests/e2e/stack.py): uvicorn serving ``service.asgi:app`` on Postgres (a fresh
database) with Redis as the broker, one process, no worker (requests stay queued; a one-hour
batching window coalesces them 100 to a job, as in production). Each request names a distinct
training sample and is a durable write: the request, its job link and the outbox row commit in one
transaction before the 201. The ceiling is ``benchmarks.bare_app``: a sync FastAPI handler that
parses the same JSON and returns a body, served by the same uvicorn command. The load generator is
a separate process (``benchmarks.loadgen``: httpx async clients, one request in flight per client).
Everything shares this machine's CPUs; the JSON records how many.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.common import device_info, write_result
from service.db.enums import Role
from tests.e2e.stack import free_port, launch
from tests.e2e.test_end_to_end import wait_until_ready
from tests.unlearn.tiny_models import TINY_CONFIGS
from worker.unlearn import checkpoint_to_bytes, create_adapter


def register(stack, n_samples: int) -> None:
    """A training dataset of ``n_samples`` files (keys s-0 … s-N), a small proxy set, and a model 'bench'."""
    admin = stack.client(Role.admin)
    for name, kind, prefix, n in (("train", "training", "s-", n_samples), ("proxy", "proxy", "p-", 20)):
        root = stack.data_root / name
        root.mkdir(parents=True, exist_ok=True)
        rows = []
        for i in range(n):
            key = f"{prefix}{i}"
            (root / key).write_bytes(key.encode())
            rows.append({"sample_key": key, "class_label": f"c{i % 10}", "uri": str(root / key),
                         "sha256": hashlib.sha256(key.encode()).hexdigest()})
        admin.post("/datasets", json={"name": name, "kind": kind}).raise_for_status()
        for start in range(0, len(rows), 1000):
            admin.post(f"/datasets/{name}/samples", json={"samples": rows[start : start + 1000]}).raise_for_status()
    base = checkpoint_to_bytes(create_adapter("mae", TINY_CONFIGS["mae"], seed=0))
    spec = {"name": "bench", "training_dataset": "train", "proxy_dataset": "proxy"}
    admin.post("/models", data={"spec": json.dumps(spec)}, files={"checkpoint": ("b.safetensors", base)}).raise_for_status()
    wait_until_ready(admin, "bench")


def load(url: str, concurrency: int, requests: int, token: str | None, offset: int) -> dict:
    command = [sys.executable, "-m", "benchmarks.loadgen", url, "--concurrency", str(concurrency),
               "--requests", str(requests), "--offset", str(offset), "--key-prefix", "s-"]
    if token:
        command += ["--token", token]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"load generator failed: {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def wait_up(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.post(f"{url}/unlearn-requests", json={"model": "x"}, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not start")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.api", description=__doc__.split("\n")[0])
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--per-client", type=int, default=3, help="requests per client (at least 150 per level)")
    args = parser.parse_args(argv)
    plan = {c: max(150, c * args.per_client) for c in args.levels}
    with tempfile.TemporaryDirectory(prefix="oblivio-bench-api-") as tmp:
        stack = launch("postgres", Path(tmp), {"OBLIVIO_BATCH_WINDOW_SECONDS": "3600", "OBLIVIO_LOG_LEVEL": "WARNING"},
                       workers=0)
        try:
            register(stack, n_samples=sum(plan.values()) + len(plan) + 10)
            bare_url = f"http://127.0.0.1:{free_port()}"
            stack.start("bare", "-m", "uvicorn", "benchmarks.bare_app:app", "--port", bare_url.rsplit(":", 1)[1],
                        "--log-level", "warning")
            wait_up(bare_url)
            token = stack.keys[Role.officer]
            levels, offset = [], 0
            for concurrency, requests in plan.items():
                time.sleep(1)  # let the previous level's connections close
                ours = load(f"{stack.url}/unlearn-requests", concurrency, requests, token, offset)
                offset += requests + 1
                bare = load(f"{bare_url}/unlearn-requests", concurrency, requests, None, 0)
                ratio = round(ours["throughput_rps"] / bare["throughput_rps"], 3)
                levels.append({"concurrency": concurrency, "oblivio": ours, "ceiling": bare, "throughput_ratio": ratio})
                print(f"{concurrency:>3} clients: oblivio {ours['throughput_rps']} req/s p50 {ours['p50_ms']} ms "
                      f"p99 {ours['p99_ms']} ms {ours['statuses']} | bare {bare['throughput_rps']} req/s "
                      f"p50 {bare['p50_ms']} ms p99 {bare['p99_ms']} ms | ratio {ratio}")
        except Exception:
            print(stack.log_tail()[-3000:], file=sys.stderr)
            raise
        finally:
            stack.stop()
    result = {
        "device": device_info("cpu"),
        "server": "uvicorn, 1 process, service.asgi:app on Postgres 127.0.0.1:5432, Redis broker; ceiling: benchmarks.bare_app",
        "load_generator": "benchmarks.loadgen: httpx.AsyncClient in a separate process, one request in flight per client",
        "levels": levels,
        "targets": {"throughput_ratio_min": 0.6, "p99_ms_max_at_64": 50},
    }
    print(f"wrote {write_result('api', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
