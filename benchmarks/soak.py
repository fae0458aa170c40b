"""Soak: N single-sample requests against real processes while workers are killed and Redis restarts.

    python benchmarks/soak.py [--requests 300] [--workers 2] [--kills 4]

Prints and writes benchmarks/results/soak.json: submitted, completed, failed, lost (accepted but not
in the database), duplicated (a job with more than one version, or a request absorbed twice) and
stuck (not terminal at the end). All of lost, duplicated and stuck must be 0.
"""

import argparse
import json
import random
import signal
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from service.db.enums import Role
from service.db.models import ModelVersion, UnlearnRequest
from tests.e2e.stack import free_port, launch, write_images
from tests.e2e.test_end_to_end import TINY_GATE, wait_until_ready
from tests.e2e.test_faults import FAST_RECOVERY
from tests.unlearn.tiny_models import TINY_CONFIGS
from worker.unlearn import checkpoint_to_bytes, create_adapter

RESULTS = Path(__file__).parent / "results"
TERMINAL = {"completed", "failed", "cancelled", "rejected"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kills", type=int, default=4, help="worker SIGKILLs spread over the submission phase")
    parser.add_argument("--seconds", type=float, default=90, help="length of the submission phase")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = soak(Path(tmp), args)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "soak.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    raise SystemExit(0 if result["lost"] == result["duplicated"] == result["stuck"] == 0 else 1)


def soak(tmp: Path, args) -> dict:
    port = free_port()
    redis_cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(tmp)]
    redis = subprocess.Popen(redis_cmd, stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    env = {**FAST_RECOVERY, "OBLIVIO_BROKER_URL": f"redis://127.0.0.1:{port}/0", "OBLIVIO_BATCH_WINDOW_SECONDS": "2",
           "OBLIVIO_EVAL_MAX_IMAGES": "16"}
    stack = launch("postgres", tmp, env, workers=args.workers)
    started = time.monotonic()
    try:
        keys = _register(stack, per_class=args.requests // 3 + 1)
        officer = stack.client(Role.officer)
        rng = random.Random(0)
        rng.shuffle(keys)
        accepted, refused = [], Counter()
        kill_at = {int(args.requests * (i + 1) / (args.kills + 1)) for i in range(args.kills)}
        redis_restart_at = args.requests // 2
        pause = args.seconds / args.requests
        for i, key in enumerate(keys[: args.requests]):
            response = officer.post("/unlearn-requests", json={"model": "tiny", "samples": [key]},
                                    headers={"Idempotency-Key": f"soak-{i}"})
            if response.status_code == 201:
                accepted.append(response.json()["id"])
            else:
                refused[response.status_code] += 1
            if i in kill_at:
                victim = rng.choice([n for n, p in stack.processes.items() if n.startswith("worker") and p.poll() is None])
                stack.processes[victim].send_signal(signal.SIGKILL)
                stack.start(f"worker-{i}", "-m", "worker")
            if i == redis_restart_at:
                redis.send_signal(signal.SIGKILL)
                redis.wait()
                time.sleep(2)
                redis = subprocess.Popen(redis_cmd, stdout=subprocess.DEVNULL)
            time.sleep(pause)
        statuses = _drain(stack, accepted, deadline=time.monotonic() + 1200)
        return _count(stack, accepted, refused, statuses, time.monotonic() - started, args)
    finally:
        stack.stop()
        redis.send_signal(signal.SIGKILL)


def _register(stack, per_class: int) -> list[str]:
    admin = stack.client(Role.admin)
    train = write_images(stack.data_root / "train", "tr", per_class, seed=1)
    proxy = write_images(stack.data_root / "proxy", "px", 8, seed=2)
    for name, kind, rows in (("train", "training", train), ("proxy", "proxy", proxy)):
        admin.post("/datasets", json={"name": name, "kind": kind}).raise_for_status()
        admin.post(f"/datasets/{name}/samples", json={"samples": rows}).raise_for_status()
    config = {**TINY_CONFIGS["mae"], "pixel_mean": [0.4], "pixel_std": [0.4]}
    spec = {"name": "tiny", "training_dataset": "train", "proxy_dataset": "proxy",
            "unlearn_defaults": {"lr": 1e-3, "batch_size": 8, "epochs": 1, "max_steps": 20, "seed": 0},
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
            response = auditor.get(f"/unlearn-requests/{request_id}")
            statuses[request_id] = response.json()["status"] if response.status_code == 200 else "missing"
        time.sleep(2)
    return statuses


def _count(stack, accepted, refused, statuses, seconds, args) -> dict:
    engine = create_engine(stack.direct_url)
    with Session(engine) as session:
        in_db = set(map(str, session.scalars(select(UnlearnRequest.id))))
        versions_per_job = session.execute(
            select(ModelVersion.created_by_job_id, func.count()).where(ModelVersion.created_by_job_id.is_not(None))
            .group_by(ModelVersion.created_by_job_id)
        ).all()
        absorbed = Counter(r for (ids,) in session.execute(select(ModelVersion.absorbed_request_ids)) for r in ids)
        jobs = len(versions_per_job)
    engine.dispose()
    outcome = Counter(statuses.values())
    verify = stack.client(Role.auditor).get("/audit-events/verify").json()
    return {
        "requests": args.requests, "workers": args.workers, "worker_kills": args.kills, "redis_restarts": 1,
        "submitted": len(accepted), "refused": dict(refused), "completed": outcome["completed"],
        "failed": outcome["failed"],
        "lost": len(set(accepted) - in_db) + outcome["missing"],
        "duplicated": sum(n - 1 for _, n in versions_per_job if n > 1) + sum(n - 1 for n in absorbed.values() if n > 1),
        "stuck": sum(1 for i in accepted if statuses.get(i) not in TERMINAL),
        "versions_published": jobs,
        "audit_chain_ok": verify["ok"],
        "seconds": round(seconds, 1),
    }


if __name__ == "__main__":
    main()
