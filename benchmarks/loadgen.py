"""Load generator process for benchmarks/api.py: ``concurrency`` async clients, one request in flight each.

    python -m benchmarks.loadgen URL --concurrency 16 --requests 400 [--token T] [--key-prefix K] [--offset N]

Request i's body names sample ``<key-prefix><offset + i>`` (distinct per request; one more warms up). Prints one JSON
line: wall seconds, throughput, latency percentiles (ms), and the status codes seen.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter

import httpx


async def run(url: str, concurrency: int, total: int, headers: dict, keys: list[str]) -> dict:
    latencies: list[float] = []
    statuses: Counter = Counter()
    queue = iter(range(total))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=20) as client:
        async def worker() -> None:
            for i in queue:
                body = {"model": "bench", "samples": [keys[i]], "classes": []}
                started = time.perf_counter()
                try:
                    statuses[(await client.post(url, json=body)).status_code] += 1
                except httpx.HTTPError as exc:  # counted, and its time counts as latency
                    statuses[type(exc).__name__] += 1
                latencies.append(time.perf_counter() - started)

        await client.post(url, json={"model": "bench", "samples": [keys[total]], "classes": []})  # connect, warm up
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1e3, 2)

    return {"concurrency": concurrency, "requests": total, "wall_s": round(wall, 3),
            "throughput_rps": round(total / wall, 1), "p50_ms": pct(0.50), "p99_ms": pct(0.99),
            "max_ms": round(latencies[-1] * 1e3, 2), "statuses": dict(statuses)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loadgen")
    parser.add_argument("url")
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--requests", type=int, required=True)
    parser.add_argument("--token", default=None)
    parser.add_argument("--key-prefix", default="s-")
    parser.add_argument("--offset", type=int, default=0)
    args = parser.parse_args(argv)
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    keys = [f"{args.key_prefix}{args.offset + i}" for i in range(args.requests + 1)]  # the last one warms up
    result = asyncio.run(run(args.url, args.concurrency, args.requests, headers, keys))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
