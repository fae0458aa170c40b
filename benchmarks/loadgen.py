"""Load generation and CPU accounting for benchmarks/api.py.

- ``wrk_closed``: closed loop through ``wrk`` (C, a few threads) with ``wrk_post.lua`` for distinct
  bodies: the generator is never the bottleneck; its CPU is read from the child's rusage.
- ``open_loop``: requests sent on a fixed schedule (``rate`` per second) whatever the answers, over
  raw asyncio keep-alive connections (a minimal HTTP/1.1 client: ~0.1 ms of CPU per request, a
  tenth of httpx). Latency counts from the scheduled send time, so a slow server cannot hide its
  queue (no coordinated omission). Every answer's status, latency and (for a 201) request id is kept.
- ``tree_cpu_seconds``: user+system CPU of a process and its descendants, from /proc.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

LUA = Path(__file__).with_name("wrk_post.lua")
_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICKS  # ppid, utime + stime


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds used so far by `root` and every live descendant."""
    parents: dict[int, list[int]] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) is not None:
            parents.setdefault(stat[0], []).append(int(entry))
            cpu[int(entry)] = stat[1]
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += cpu.get(pid, 0.0)
        todo += parents.get(pid, [])
    return total


def postgres_cpu_seconds() -> float:
    """CPU seconds of every postgres process on this machine (shared: other clients count too)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/comm").read_text().strip() == "postgres":
                    total += (_stat(int(entry)) or (0, 0.0))[1]
            except OSError:
                pass
    return total


def wrk_closed(url: str, *, connections: int, seconds: float, token: str | None, keys: int, tag: str,
               threads: int = 2) -> dict:
    """One closed-loop wrk run; its JSON line plus throughput and the generator's CPU."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    threads = min(threads, connections)
    command = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(seconds))}s", "--timeout", "10s",
               "-s", str(LUA), url, "--", token or "-", str(keys), tag]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if done.returncode or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-2000:]} {done.stderr[-2000:]}")
    result = json.loads(line.removeprefix("WRKJSON "))
    wall = result["duration_us"] / 1e6
    result.update(connections=connections, wall_s=round(wall, 2),
                  throughput_rps=round(result["status_2xx"] / wall, 1),
                  generator_cpu_s=round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 2))
    return result


@dataclass
class Answer:
    status: int
    latency_s: float
    retry_after: str | None = None
    request_id: str | None = None


@dataclass
class _Pool:
    host: str
    port: int
    idle: list = field(default_factory=list)
    opened: int = 0

    async def take(self):
        if self.idle:
            return self.idle.pop()
        self.opened += 1
        return await asyncio.open_connection(self.host, self.port)


async def _exchange(conn, head: bytes, body: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = conn
    writer.write(head + body)
    status_line, *lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines if x)}
    payload = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(status_line.split()[1]), headers, payload


_ID = re.compile(rb'"id":"([0-9a-f-]{36})"')


async def _one(pool: _Pool, head: bytes, body: bytes, scheduled: float, answers: list[Answer]) -> None:
    conn = None
    try:
        conn = await pool.take()
        status, headers, payload = await _exchange(conn, head, body)
        found = _ID.search(payload) if status == 201 else None
        answers.append(Answer(status, time.perf_counter() - scheduled, headers.get("retry-after"),
                              found.group(1).decode() if found else None))
        if headers.get("connection", "").lower() == "close":
            conn[1].close()
        else:
            pool.idle.append(conn)
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        answers.append(Answer(-1, time.perf_counter() - scheduled, type(exc).__name__))
        if conn is not None:
            conn[1].close()


def request_bytes(url: str, body: bytes, headers: dict[str, str]) -> bytes:
    parts = urlsplit(url)
    lines = [f"POST {parts.path} HTTP/1.1", f"Host: {parts.netloc}", "Content-Type: application/json",
             f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _open_loop(url: str, rate: float, seconds: float, bodies, headers_of) -> tuple[list[Answer], float]:
    parts = urlsplit(url)
    pool = _Pool(parts.hostname, parts.port)
    answers: list[Answer] = []
    tasks = []
    total = int(rate * seconds)
    start = time.perf_counter() + 0.05
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        body = bodies(i)
        tasks.append(asyncio.create_task(_one(pool, request_bytes(url, body, headers_of(i)), body, scheduled, answers)))
    await asyncio.gather(*tasks)
    for _, writer in pool.idle:
        writer.close()
    return answers, time.perf_counter() - start


def open_loop(url: str, *, rate: float, seconds: float, bodies, headers_of) -> dict:
    """Offer `rate` requests per second for `seconds`; per-status latencies, the ids accepted, generator CPU."""
    cpu = time.process_time()
    answers, wall = asyncio.run(_open_loop(url, rate, seconds, bodies, headers_of))
    cpu = time.process_time() - cpu
    accepted = [a for a in answers if a.status == 201]
    refused = [a for a in answers if a.status == 503]
    result = {"offered_rps": rate, "seconds": seconds, "sent": len(answers), "wall_s": round(wall, 2),
              "statuses": _counts(a.status for a in answers), "accepted_rps": round(len(accepted) / wall, 1),
              "accepted": _percentiles([a.latency_s for a in accepted]), "generator_cpu_s": round(cpu, 2)}
    if refused:
        result["refused"] = _percentiles([a.latency_s for a in refused])
        result["refused_with_retry_after"] = sum(1 for a in refused if a.retry_after)
    result["accepted_ids"] = [a.request_id for a in accepted]
    return result


def _counts(values) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[str(v)] = out.get(str(v), 0) + 1
    return out


def _percentiles(latencies: list[float]) -> dict[str, float]:
    if not latencies:
        return {"count": 0}
    xs = sorted(latencies)

    def pct(p: float) -> float:
        return round(xs[min(len(xs) - 1, int(p * len(xs)))] * 1e3, 2)

    return {"count": len(xs), "p50_ms": pct(0.5), "p99_ms": pct(0.99), "max_ms": round(xs[-1] * 1e3, 2)}
