"""``POST /unlearn-requests`` against its two ceilings, with CPU, open-loop latency, overload and a large request.

    python -m benchmarks.api [--seconds 8] [--workers N]

One run on this machine measures (issue 13's targets):

(a) bare: ``benchmarks.bare_app`` ``POST /bare``, a FastAPI handler parsing the same body;
(b) durable ceiling: ``POST /durable``, that plus one INSERT and COMMIT into the same Postgres
    through the same driver and pool settings;
(c) Oblivio, closed loop, 64 connections: throughput, its ratio to (b), errors, p50/p99;
(d) server CPU per accepted request (ms; the API processes' /proc counters over (c), divided by
    the requests committed meanwhile), beside the generator's CPU;
(e) open loop at 50 and 200 requests/s offered: p99 (from the scheduled send time);
(f) overload (3x the closed-loop throughput offered): 503 + Retry-After latency, and every
    accepted request found in the database;
(g) one request naming 10,000 samples: time to its 201.

Servers: ``oblivio serve --workers N`` (default: one per CPU) on a fresh Postgres database with
Redis as the broker, no worker (requests stay queued; a one-hour batching window coalesces them
100 to a job, as in production), and the ceilings under ``uvicorn --workers N``. Closed loops run
``wrk`` (C; ``benchmarks/wrk_post.lua`` gives every request a distinct body and Idempotency-Key);
open loops and overload run ``benchmarks.loadgen.open_loop`` (raw asyncio HTTP/1.1). Everything
shares this machine's CPUs (the JSON records how many and the load average): compare ratios
within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from benchmarks.common import device_info, write_result
from benchmarks.loadgen import open_loop, postgres_cpu_seconds, tree_cpu_seconds, wrk_closed
from benchmarks.registry_setup import register
from service.db.enums import Role
from tests.e2e.stack import free_port, launch

SAMPLES = 10_000
CLIENTS = 64
TODAY = {"closed_loop_rps_64": "27-52", "cpu_ms_per_request": "14-19", "p99_ms_64": "1400-2900",
         "samples_10k_s": "1.25-1.7", "open_loop_100_rps_latency_s": "22-27"}
TARGETS = {"ratio_to_durable_min": 0.6, "cpu_ms_per_request_max": 4, "open_50_p99_ms_max": 50,
           "open_200_p99_ms_max": 250, "refusal_ms_max": 100, "samples_10k_s_max": 0.5}


def wait_up(url: str, path: str = "/healthz") -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}{path}", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not start")


def count_requests(engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(text("SELECT count(*) FROM unlearn_requests"))


def closed_loop_with_cpu(url: str, pid: int, *, seconds: float, token: str | None, tag: str, engine=None) -> dict:
    """wrk at 64 connections; the server tree's CPU over the run, per request committed (or answered)."""
    before_rows = count_requests(engine) if engine is not None else 0
    cpu, pg = tree_cpu_seconds(pid), postgres_cpu_seconds()
    result = wrk_closed(url, connections=CLIENTS, seconds=seconds, token=token, keys=SAMPLES, tag=tag)
    time.sleep(0.5)  # requests wrk abandoned at its deadline finish (and commit) meanwhile
    cpu, pg = tree_cpu_seconds(pid) - cpu, postgres_cpu_seconds() - pg
    done = (count_requests(engine) - before_rows) if engine is not None else result["status_2xx"]
    result.update(server_cpu_s=round(cpu, 2), server_cpu_ms_per_request=round(1e3 * cpu / max(done, 1), 2),
                  postgres_cpu_ms_per_request=round(1e3 * pg / max(done, 1), 2), completed=done,
                  generator_cpu_ms_per_request=round(1e3 * result["generator_cpu_s"] / max(done, 1), 3))
    return result


def bodies(tag: str):
    def body(i: int) -> bytes:
        return json.dumps({"model": "bench", "samples": [f"s-{(i * 7) % SAMPLES}"]}).encode()

    def headers(i: int) -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKEN[0]}", "Idempotency-Key": f"{tag}-{i}"}

    return body, headers


TOKEN: list[str] = []


def found_in_database(engine, ids: list[str]) -> int:
    with engine.connect() as connection:
        return connection.scalar(text("SELECT count(*) FROM unlearn_requests WHERE id = ANY(CAST(:ids AS UUID[]))"),
                                 {"ids": ids})


def large_request(url: str, token: str, repeats: int = 3) -> dict:
    times, statuses = [], []
    keys = [f"s-{i}" for i in range(SAMPLES)]
    with httpx.Client(timeout=60, headers={"Authorization": f"Bearer {token}"}) as client:
        for i in range(repeats):
            started = time.perf_counter()
            response = client.post(f"{url}/unlearn-requests", json={"model": "bench", "samples": keys},
                                   headers={"Idempotency-Key": f"large-{i}"})
            times.append(time.perf_counter() - started)
            statuses.append(response.status_code)
    return {"samples": SAMPLES, "statuses": statuses, "seconds": [round(t, 3) for t in times],
            "median_s": round(statistics.median(times), 3)}


def python_speed() -> float:
    """CPU seconds of a fixed pure-Python loop: how fast this (shared) machine runs Python right now."""
    started = time.process_time()
    total = 0
    for i in range(5_000_000):
        total += i
    return round(time.process_time() - started, 3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.api", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8, help="length of each closed- and open-loop phase")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)), help="API processes")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    load_at_start = device_info("cpu")
    calibration = python_speed()
    with tempfile.TemporaryDirectory(prefix="oblivio-bench-api-") as tmp:
        stack = launch("postgres", Path(tmp), {"OBLIVIO_BATCH_WINDOW_SECONDS": "3600", "OBLIVIO_LOG_LEVEL": "WARNING"},
                       workers=0)
        engine = create_engine(stack.direct_url)
        try:
            register(stack, n_samples=SAMPLES)
            stack.processes.pop("api").terminate()  # registered; now the multi-process server
            port = free_port()
            api = stack.start("api", "-m", "service.cli", "serve", "--port", str(port), "--workers", str(args.workers))
            url = f"http://127.0.0.1:{port}"
            from benchmarks.bare_app import create_table

            create_table(stack.direct_url)
            ceiling_port = free_port()
            stack.env["BENCH_DATABASE_URL"] = stack.direct_url
            bare = stack.start("bare", "-m", "uvicorn", "benchmarks.bare_app:app", "--port", str(ceiling_port),
                               "--workers", str(args.workers), "--log-level", "warning")
            ceiling = f"http://127.0.0.1:{ceiling_port}"
            wait_up(url), wait_up(ceiling, "/docs")
            token = TOKEN.append(stack.keys[Role.officer]) or stack.keys[Role.officer]
            for target, tok in ((f"{ceiling}/bare", None), (f"{ceiling}/durable", None), (f"{url}/unlearn-requests", token)):
                wrk_closed(target, connections=CLIENTS, seconds=2, token=tok, keys=SAMPLES, tag="warm")
            s = args.seconds
            results: dict = {}
            results["a_bare"] = closed_loop_with_cpu(f"{ceiling}/bare", bare.pid, seconds=s, token=None, tag="a")
            results["b_durable"] = closed_loop_with_cpu(f"{ceiling}/durable", bare.pid, seconds=s, token=None, tag="b")
            results["c_oblivio"] = closed_loop_with_cpu(f"{url}/unlearn-requests", api.pid, seconds=s, token=token,
                                                        tag="c", engine=engine)
            stack.processes.pop("bare").terminate()
            results["ratio_to_durable"] = round(results["c_oblivio"]["throughput_rps"] / results["b_durable"]["throughput_rps"], 3)
            results["ratio_to_bare"] = round(results["c_oblivio"]["throughput_rps"] / results["a_bare"]["throughput_rps"], 3)
            results["d_cpu_ms_per_request"] = results["c_oblivio"]["server_cpu_ms_per_request"]
            for rate in (50, 200):
                body, headers = bodies(f"open{rate}")
                run = open_loop(f"{url}/unlearn-requests", rate=rate, seconds=s, bodies=body, headers_of=headers)
                run["accepted_in_database"] = found_in_database(engine, run.pop("accepted_ids"))
                results[f"e_open_{rate}"] = run
            offered = max(300.0, 3 * results["c_oblivio"]["throughput_rps"])
            body, headers = bodies("overload")
            run = open_loop(f"{url}/unlearn-requests", rate=offered, seconds=min(s, 6), bodies=body, headers_of=headers)
            ids = run.pop("accepted_ids")
            run["accepted_in_database"] = found_in_database(engine, ids)
            run["accepted_lost"] = len(ids) - run["accepted_in_database"]
            results["f_overload"] = run
            results["g_10k_samples"] = large_request(url, token)
        except Exception:
            print(stack.log_tail()[-3000:], file=sys.stderr)
            raise
        finally:
            engine.dispose()
            stack.stop()
    summary = _summary(results)
    result = {
        "workers": args.workers,
        "python_loop_cpu_s": calibration,
        "device": load_at_start,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "server": f"oblivio serve --workers {args.workers} (uvicorn, uvloop, httptools) on Postgres 127.0.0.1:5432, "
                  "Redis broker, no worker, batching window 3600 s; ceilings: benchmarks.bare_app under uvicorn "
                  f"--workers {args.workers}",
        "load_generator": "closed loop: wrk -t2 -c64 with benchmarks/wrk_post.lua (distinct bodies); open loop and "
                          "overload: benchmarks.loadgen.open_loop (raw asyncio HTTP/1.1, latency from scheduled send)",
        "summary": summary,
        "today_before_issue_13": TODAY,
        "targets": TARGETS,
        **results,
    }
    print(json.dumps(summary, indent=2))
    print(f"wrote {write_result('api', result)}")
    return 0


def _summary(r: dict) -> dict:
    c, over = r["c_oblivio"], r["f_overload"]
    return {
        "bare_rps": r["a_bare"]["throughput_rps"], "durable_ceiling_rps": r["b_durable"]["throughput_rps"],
        "oblivio_rps_64": c["throughput_rps"], "ratio_to_durable": r["ratio_to_durable"],
        "errors_64": c["status_503"] + c["status_other"] + c["socket_errors"],
        "p50_ms_64": c["p50_ms"], "p99_ms_64": c["p99_ms"],
        "server_cpu_ms_per_request": c["server_cpu_ms_per_request"],
        "generator_cpu_ms_per_request": c["generator_cpu_ms_per_request"],
        "postgres_cpu_ms_per_request": c["postgres_cpu_ms_per_request"],
        "open_50_p99_ms": r["e_open_50"]["accepted"].get("p99_ms"), "open_200_p99_ms": r["e_open_200"]["accepted"].get("p99_ms"),
        "overload_offered_rps": over["offered_rps"], "overload_accepted_rps": over["accepted_rps"],
        "overload_refused": over.get("refused", {}).get("count", 0),
        "overload_refusal_p99_ms": over.get("refused", {}).get("p99_ms"),
        "overload_refused_with_retry_after": over.get("refused_with_retry_after", 0),
        "overload_accepted_p99_ms": over["accepted"].get("p99_ms"), "overload_accepted_lost": over["accepted_lost"],
        "samples_10k_s": r["g_10k_samples"]["median_s"],
    }


if __name__ == "__main__":
    sys.exit(main())
