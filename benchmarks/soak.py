"""Soak: N single-sample requests against real processes while workers are killed and Redis, Postgres
and the API restart.

    python benchmarks/soak.py [--requests 300] [--workers 2] [--kills 4] [--seconds 90]

Runs its own Redis and its own Postgres cluster (initdb in a temporary folder, private port; as
root through `runuser -u postgres`), so both can be restarted without touching the machine's.
Prints and writes benchmarks/results/soak.json:

- submitted, completed, failed, lost (accepted but not in the database), duplicated (a job with
  more than one version, or a request absorbed twice) and stuck (not terminal at the end). All of
  lost, duplicated and stuck must be 0. A submission refused while the API or Postgres is down is
  retried with the same Idempotency-Key (`submit_retries`).
- broker deliveries per job (each delivery logs `job <id> delivered`; a killed worker's log keeps
  its lines): mean and max over the jobs, with the busy-model bounces included.
- kill_to_running_s: for each worker SIGKILLed while it ran a job, the seconds until that job ran
  again on another worker (or ended); bounded by the lease (OBLIVIO_LEASE_SECONDS) plus one sweep.
- workers_exited_unasked (workers not killed by the soak that stopped, e.g. on a Redis restart)
  and postgres_deadlocks ("deadlock detected" in the cluster's log): both must be empty / 0.
"""

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from service.db.enums import JobStatus, Role
from service.db.models import Job, ModelVersion, UnlearnRequest
from tests.e2e.stack import free_port, launch, write_images
from tests.e2e.test_end_to_end import TINY_GATE, wait_until_ready
from tests.e2e.test_faults import FAST_RECOVERY
from tests.unlearn.tiny_models import TINY_CONFIGS
from worker.unlearn import checkpoint_to_bytes, create_adapter

RESULTS = Path(__file__).parent / "results"
TERMINAL = {"completed", "failed", "cancelled", "rejected"}
ENDED = {JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled}
DELIVERED = re.compile(r'"msg": "job ([0-9a-f-]{36}) delivered"')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kills", type=int, default=4, help="worker SIGKILLs spread over the submission phase")
    parser.add_argument("--seconds", type=float, default=90, help="length of the submission phase")
    parser.add_argument("--lease", type=int, default=15, help="OBLIVIO_LEASE_SECONDS of the workers")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, Postgres() as postgres:
        result = soak(Path(tmp), args, postgres)
        result["postgres_deadlocks"] = postgres.log().count("deadlock detected")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "soak.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    clean = result["lost"] == result["duplicated"] == result["stuck"] == result["postgres_deadlocks"] == 0
    raise SystemExit(0 if clean and not result["workers_exited_unasked"] else 1)


class Postgres:
    """A private cluster on a free port, restartable as a crash would (immediate stop, then start)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="oblivio-soak-pg-"))
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.admin_url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def __enter__(self) -> "Postgres":
        if self._as:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run("initdb", "-D", str(self.folder / "data"), "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._run("pg_ctl", "-D", str(self.folder / "data"), "stop", "-m", "immediate", check=False)
        shutil.rmtree(self.folder, ignore_errors=True)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.folder / "data"), "-o", options, "-l", str(self.folder / "log"), "-w", "start")

    def log(self) -> str:
        return (self.folder / "log").read_text(errors="replace")

    def restart(self, down_seconds: float) -> None:
        self._run("pg_ctl", "-D", str(self.folder / "data"), "stop", "-m", "immediate")
        time.sleep(down_seconds)
        self.start()

    def _run(self, *command: str, check: bool = True) -> None:
        subprocess.run([*self._as, *command], check=check, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def soak(tmp: Path, args, postgres: Postgres) -> dict:
    port = free_port()
    redis_cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(tmp)]
    redis = subprocess.Popen(redis_cmd, stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    env = {**FAST_RECOVERY, "OBLIVIO_LEASE_SECONDS": str(args.lease), "OBLIVIO_BROKER_URL": f"redis://127.0.0.1:{port}/0",
           "OBLIVIO_BATCH_WINDOW_SECONDS": "2", "OBLIVIO_EVAL_MAX_IMAGES": "16", "OBLIVIO_WORKER_METRICS_PORT": "0"}
    stack = launch("postgres", tmp, env, workers=args.workers, pg_admin=postgres.admin_url)
    started = time.monotonic()
    timers: list[tuple[threading.Thread, list, str]] = []
    try:
        keys = _register(stack, per_class=args.requests // 3 + 1)
        officer = stack.client(Role.officer)
        rng = random.Random(0)
        rng.shuffle(keys)
        accepted, refused, retries = [], Counter(), 0
        events = _schedule(args)
        pause = args.seconds / args.requests
        for i, key in enumerate(keys[: args.requests]):
            request_id, tries = _submit(officer, key, f"soak-{i}")
            retries += tries
            if request_id:
                accepted.append(request_id)
            else:
                refused["gave_up"] += 1
            event = events.get(i)
            if event == "kill":
                timers.append(_kill_worker(stack, rng))
            elif event == "redis":
                redis.send_signal(signal.SIGKILL)
                redis.wait()
                time.sleep(2)
                redis = subprocess.Popen(redis_cmd, stdout=subprocess.DEVNULL)
            elif event == "postgres":
                postgres.restart(down_seconds=2)
            elif event == "api":
                stack.processes["api"].send_signal(signal.SIGTERM)
                stack.processes["api"].wait()
                time.sleep(1)
                stack.start_api()
            time.sleep(pause)
        statuses = _drain(stack, accepted, deadline=time.monotonic() + 1200)
        recovery_times = [round(t, 1) for t in _join(timers)]
        result = _count(stack, accepted, refused, retries, statuses, time.monotonic() - started, args, recovery_times)
        killed = {name for _, _, name in timers}
        result["workers_exited_unasked"] = sorted(
            n for n, p in stack.processes.items() if n.startswith("worker") and n not in killed and p.poll() is not None
        )
        return result
    finally:
        stack.stop()
        redis.send_signal(signal.SIGKILL)


def _schedule(args) -> dict[int, str]:
    """Faults spread over the submission phase: kills evenly, then Redis, Postgres and the API restarts."""
    n = args.requests
    events = {int(n * (k + 1) / (args.kills + 1)): "kill" for k in range(args.kills)}
    for fraction, name in ((0.35, "redis"), (0.55, "postgres"), (0.75, "api")):
        at = int(n * fraction)
        while at in events:
            at += 1
        events[at] = name
    return events


def _submit(client: httpx.Client, key: str, idempotency_key: str) -> tuple[str | None, int]:
    """Submit until accepted (the API or Postgres may be restarting); returns (request id, retries)."""
    for attempt in range(60):
        try:
            response = client.post("/unlearn-requests", json={"model": "tiny", "samples": [key]},
                                   headers={"Idempotency-Key": idempotency_key})
        except httpx.TransportError:
            response = None
        if response is not None and response.status_code in (200, 201):
            return response.json()["id"], attempt
        if response is not None and response.status_code not in (502, 503):
            return None, attempt
        time.sleep(0.5)
    return None, 60


def _kill_worker(stack, rng: random.Random) -> tuple[threading.Thread, list, str]:
    """SIGKILL a worker (one that runs a job if any does) and start a fresh one; a thread times recovery."""
    alive = {n: p for n, p in stack.processes.items() if n.startswith("worker") and p.poll() is None}
    engine = create_engine(stack.direct_url)
    owners = {f"{socket.gethostname()}:{p.pid}": n for n, p in alive.items()}
    with Session(engine) as session:
        running = session.execute(select(Job.id, Job.lease_owner).where(Job.status == JobStatus.running)).all()
    busy = [(job_id, owners[owner]) for job_id, owner in running if owner in owners]
    job_id, victim = busy[0] if busy else (None, rng.choice(sorted(alive)))
    stack.processes[victim].send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    stack.processes[victim].wait()
    stack.start(f"worker-{len(stack.processes)}", "-m", "worker")
    result: list[float | None] = [None]
    thread = threading.Thread(target=_time_recovery, args=(engine, job_id, killed_at, result), daemon=True)
    thread.start()
    return thread, result, victim


def _time_recovery(engine, job_id, killed_at: float, result: list) -> None:
    if job_id is None:
        return
    with Session(engine) as session:
        attempts = session.scalar(select(Job.attempts).where(Job.id == job_id))
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            with Session(engine) as session:
                status, now_attempts = session.execute(select(Job.status, Job.attempts).where(Job.id == job_id)).one()
        except Exception:  # Postgres restarting: keep timing
            time.sleep(0.5)
            continue
        if (status is JobStatus.running and now_attempts > attempts) or status in ENDED:
            result[0] = time.monotonic() - killed_at
            return
        time.sleep(0.2)


def _join(timers: list[tuple[threading.Thread, list, str]]) -> list[float]:
    for thread, _, _ in timers:
        thread.join(timeout=600)
    return [result[0] for _, result, _ in timers if result[0] is not None]


def _register(stack, per_class: int) -> list[str]:
    admin = stack.client(Role.admin)
    train = write_images(stack.data_root / "train", "tr", per_class, seed=1)
    proxy = write_images(stack.data_root / "proxy", "px", 8, seed=2)
    for name, kind, rows in (("train", "training", train), ("proxy", "proxy", proxy)):
        admin.post("/datasets", json={"name": name, "kind": kind}).raise_for_status()
        admin.post(f"/datasets/{name}/samples", json={"samples": rows}).raise_for_status()
    config = {**TINY_CONFIGS["mae"], "pixel_mean": [0.4], "pixel_std": [0.4]}
    spec = {"name": "tiny", "training_dataset": "train", "proxy_dataset": "proxy",
            "unlearn_defaults": {"lr": 1e-3, "batch_size": 8, "steps": 2, "seed": 0},
            "gate_thresholds": dict.fromkeys(TINY_GATE)}
    base = checkpoint_to_bytes(create_adapter("mae", config, seed=0))
    admin.post("/models", data={"spec": json.dumps(spec)}, files={"checkpoint": ("b.safetensors", base)}).raise_for_status()
    wait_until_ready(admin, "tiny")
    return [row["sample_key"] for row in train]


def _drain(stack, ids: list[str], deadline: float) -> dict[str, str]:
    auditor = stack.client(Role.auditor)
    statuses: dict[str, str] = {}
    while time.monotonic() < deadline:
        pending = [i for i in ids if statuses.get(i) not in TERMINAL]
        if not pending:
            break
        for request_id in pending:
            try:
                response = auditor.get(f"/unlearn-requests/{request_id}")
            except httpx.TransportError:
                break
            statuses[request_id] = response.json()["status"] if response.status_code == 200 else "missing"
        time.sleep(2)
    return statuses


def _deliveries(stack) -> Counter:
    per_job: Counter = Counter()
    for log in stack.logs.glob("worker*.log"):
        per_job.update(DELIVERED.findall(log.read_text(errors="replace")))
    return per_job


def _count(stack, accepted, refused, retries, statuses, seconds, args, recovery_times) -> dict:
    engine = create_engine(stack.direct_url)
    with Session(engine) as session:
        in_db = set(map(str, session.scalars(select(UnlearnRequest.id))))
        versions_per_job = session.execute(
            select(ModelVersion.created_by_job_id, func.count()).where(ModelVersion.created_by_job_id.is_not(None))
            .group_by(ModelVersion.created_by_job_id)
        ).all()
        absorbed = Counter(r for (ids,) in session.execute(select(ModelVersion.absorbed_request_ids)) for r in ids)
        jobs = session.scalar(select(func.count()).select_from(Job))
    engine.dispose()
    outcome = Counter(statuses.values())
    verify = stack.client(Role.auditor).get("/audit-events/verify").json()
    deliveries = _deliveries(stack)
    return {
        "requests": args.requests, "workers": args.workers, "worker_kills": args.kills, "redis_restarts": 1,
        "postgres_restarts": 1, "api_restarts": 1, "lease_seconds": args.lease,
        "submitted": len(accepted), "refused": dict(refused), "submit_retries": retries,
        "completed": outcome["completed"], "failed": outcome["failed"],
        "lost": len(set(accepted) - in_db) + outcome["missing"],
        "duplicated": sum(n - 1 for _, n in versions_per_job if n > 1) + sum(n - 1 for n in absorbed.values() if n > 1),
        "stuck": sum(1 for i in accepted if statuses.get(i) not in TERMINAL),
        "jobs": jobs,
        "versions_published": len(versions_per_job),
        "broker_deliveries": sum(deliveries.values()),
        "deliveries_per_job_mean": round(sum(deliveries.values()) / max(1, jobs), 2),
        "deliveries_per_job_max": max(deliveries.values(), default=0),
        "kill_to_running_s": recovery_times,
        "audit_chain_ok": verify["ok"],
        "seconds": round(seconds, 1),
    }


if __name__ == "__main__":
    main()
