"""Transparency-log costs on Postgres: appending (no lock), sealing throughput, proof sizes and times, verification.

    python -m benchmarks.translog [--events 100000] [--writers 8]

Creates its own database (dropped at the end), appends events from several threads in small
transactions as requests do (one multi-row INSERT each, no lock), seals them with `seal_pending`
(the sealer's one pass: number, hash, store nodes, sign a checkpoint) in batches, then measures
inclusion and consistency proofs served from the stored nodes and a full re-derivation of the tree.
Writes benchmarks/results/translog.json.
"""

import argparse
import multiprocessing
import os
import platform
import statistics
import threading
import time
from datetime import UTC, datetime

from sqlalchemy import create_engine, text
from sqlalchemy.orm import sessionmaker

from benchmarks.common import _cpu_model, write_result
from service.audit import logstore
from service.audit.chain import record
from service.audit.sealer import Sealer, seal_pending
from service.audit.signing import Signer
from service.config import Settings
from service.db.migrate import upgrade

ADMIN = os.environ.get("OBLIVIO_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres").replace(
    "postgresql://", "postgresql+psycopg://")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--per-transaction", type=int, default=3, help="events per request transaction")
    parser.add_argument("--batch", type=int, default=5000, help="events per sealing pass")
    parser.add_argument("--lag-seconds", type=float, default=10.0, help="how long writers load the sealer loop")
    args = parser.parse_args()
    name = f"oblivio_bench_translog_{os.getpid()}"
    admin = create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    url = ADMIN.rsplit("/", 1)[0] + f"/{name}"
    engine = create_engine(url, pool_size=args.writers + 2)
    try:
        result = run(url, engine, args)
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    path = write_result("translog", result)
    print(path.read_text())


def run(url: str, engine, args) -> dict:
    home = f"/tmp/oblivio-bench-translog-{os.getpid()}"
    upgrade(Settings(database_url=url, home=home))
    signer = Signer.from_file(Settings(home=home).home / "bench-key.pem", create=True)
    sessions = sessionmaker(engine, expire_on_commit=False)
    per_writer = args.events // args.writers // args.per_transaction

    def writer(w: int) -> None:
        for t in range(per_writer):
            with sessions() as session:
                for e in range(args.per_transaction):
                    record(session, actor=f"key:{w}:officer", action="request.received", subject=f"request:{w}-{t}",
                           data={"samples": 3, "classes": [], "n": e})  # fmt: skip
                session.commit()

    started = time.perf_counter()
    threads = [threading.Thread(target=writer, args=(w,)) for w in range(args.writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    append_seconds = time.perf_counter() - started
    appended = per_writer * args.writers * args.per_transaction

    passes, started = [], time.perf_counter()
    with sessions() as session:
        while True:
            t0 = time.perf_counter()
            sealed = seal_pending(session, signer, batch=args.batch)
            session.commit()
            passes.append(time.perf_counter() - t0)
            if sealed.sealed < args.batch:
                break
    seal_seconds = time.perf_counter() - started
    size = sealed.size

    with sessions() as session:
        checkpoints = [c for c in session.execute(text("SELECT size FROM audit_checkpoints ORDER BY size")).scalars()]
        inclusion_times, inclusion_lengths = [], []
        for index in range(0, size, max(1, size // 200)):
            t0 = time.perf_counter()
            proof = logstore.inclusion_proof(session, index, size)
            inclusion_times.append(time.perf_counter() - t0)
            inclusion_lengths.append(len(proof))
        consistency_times, consistency_lengths = [], []
        for first in checkpoints[:-1]:
            t0 = time.perf_counter()
            proof = logstore.consistency_proof(session, first, size)
            consistency_times.append(time.perf_counter() - t0)
            consistency_lengths.append(len(proof))
        t0 = time.perf_counter()
        check = logstore.verify_tree(session, signer.public_key)
        verify_seconds = time.perf_counter() - t0
    assert check.ok and check.size == size, check
    lag = seal_lag(url, engine, sessions, signer, args)
    return {
        "machine": {"cpu": _cpu_model(), "cpus_available": len(os.sched_getaffinity(0)), "python": platform.python_version(),
                    "load_average_at_start": [round(x, 2) for x in os.getloadavg()]},  # fmt: skip
        "database": "PostgreSQL on 127.0.0.1, one fresh database",
        "events": size,
        "append": {"writers": args.writers, "events_per_transaction": args.per_transaction, "events": appended,
                   "seconds": round(append_seconds, 2), "events_per_second": round(appended / append_seconds),
                   "transactions_per_second": round(appended / args.per_transaction / append_seconds)},  # fmt: skip
        "seal": {"batch": args.batch, "passes": len(passes), "seconds": round(seal_seconds, 2),
                 "events_per_second": round(size / seal_seconds),
                 "median_pass_seconds": round(statistics.median(passes), 3), "checkpoints": len(checkpoints)},  # fmt: skip
        "inclusion_proof": {"tree_size": size, "proofs": len(inclusion_lengths), "hashes_max": max(inclusion_lengths),
                            "bytes_max": 32 * max(inclusion_lengths),
                            "median_ms": round(1000 * statistics.median(inclusion_times), 2),
                            "p99_ms": round(1000 * sorted(inclusion_times)[int(0.99 * (len(inclusion_times) - 1))], 2)},
        "consistency_proof": {"proofs": len(consistency_lengths), "hashes_max": max(consistency_lengths, default=0),
                              "bytes_max": 32 * max(consistency_lengths, default=0),
                              "median_ms": round(1000 * statistics.median(consistency_times), 2) if consistency_times else None},
        "verify_tree": {"seconds": round(verify_seconds, 2), "events_per_second": round(size / verify_seconds)},
        "seal_lag_under_load": lag,
        "measured_at_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _lag_writer(url: str, w: int, seconds: float, per_transaction: int, out) -> None:
    """One writer process (as an API worker process would be): small transactions at full speed."""
    engine = create_engine(url, pool_size=1)
    sessions = sessionmaker(engine, expire_on_commit=False)
    commits, t, deadline = {}, 0, time.time() + seconds
    while time.time() < deadline:
        subject = f"lag:{w}-{t}"
        with sessions() as session:
            for e in range(per_transaction):
                record(session, actor="bench", action="request.received", subject=subject, data={"n": e})
            session.commit()
        commits[subject] = time.time()
        t += 1
    engine.dispose()
    out.put(commits)


def seal_lag(url: str, engine, sessions, signer, args) -> dict:
    """Writer processes append at full speed for `--lag-seconds` while the API's Sealer loop runs in this
    process with its 1 s cadence: how long after its commit is each event in a signed checkpoint?"""
    sealer = Sealer(engine, signer, origin="bench/log", interval=1.0, batch=args.batch)
    sealed_at: list[tuple[float, int | None]] = []
    stop = threading.Event()
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    writers = [context.Process(target=_lag_writer, args=(url, w, args.lag_seconds, args.per_transaction, out))
               for w in range(args.writers)]  # fmt: skip

    def seal_loop() -> None:
        next_pass = time.monotonic() + sealer.interval
        while not stop.wait(max(0.0, next_pass - time.monotonic())):
            next_pass = time.monotonic() + sealer.interval
            sealer.run_once()
            with sessions() as session:
                sealed_at.append((time.time(), session.scalar(text("SELECT max(size) FROM audit_checkpoints"))))

    for process in writers:
        process.start()
    looper = threading.Thread(target=seal_loop)
    looper.start()
    commits: dict[str, float] = {}
    for _ in writers:
        commits.update(out.get())
    for process in writers:
        process.join()
    stop.set()
    looper.join()
    sealer.run_once()
    sealed_at.append((time.time(), None))
    sealer.release()
    with sessions() as session:
        rows = session.execute(text("SELECT subject, max(leaf_index) FROM audit_events WHERE subject LIKE 'lag:%' "
                                    "GROUP BY subject")).all()  # fmt: skip
    lags = sorted(next(t for t, size in sealed_at if size is None or size > index) - commits[subject]
                  for subject, index in rows)  # fmt: skip
    return {"seconds": args.lag_seconds, "writer_processes": args.writers, "seal_interval_seconds": 1.0,
            "transactions": len(lags), "events_per_second": round(len(lags) * args.per_transaction / args.lag_seconds),
            "lag_p50_s": round(lags[len(lags) // 2], 2), "lag_p99_s": round(lags[int(0.99 * (len(lags) - 1))], 2),
            "lag_max_s": round(lags[-1], 2)}  # fmt: skip


if __name__ == "__main__":
    main()
