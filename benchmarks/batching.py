"""Total job time for 1, 10 and 100 coalesced single-sample requests.

    python -m benchmarks.batching [--sizes 1 10 100] [--steps 60] [--per-class 300]

The real path, in one process: the API app (``create_app``, TestClient) on a fresh Postgres
database takes N single-sample requests within one batching window, so they coalesce into one job;
the window is then closed and the worker pipeline (``worker.pipeline.run_job``: claim, inputs,
load, unlearn, evaluate, gate, publish, report, then warming the next version's teacher cache)
runs it. Data: the demo MAE and a Fashion-MNIST export of ``--per-class`` images per class and split
(proxy = the test part). Each job is capped at ``--steps`` steps (a job config override) to keep
the run short; the step count does not depend on N (it follows the larger retain side), so N only
changes what is loaded, evaluated and recorded. Gate thresholds are relaxed (this measures time; the
quality gate is checked in tests/unlearn). A first job builds the base version's teacher cache
(a miss) and is reported apart as ``cold``.

``job_s``: claim to publication (the job row's started_at to finished_at), what an officer waits
for; ``warm_next_s``: the teacher cache built after publication for the next job.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from benchmarks.common import DEMO, device_info, write_result
from service.config import Settings
from service.db.enums import Role
from service.db.migrate import upgrade
from service.db.models import Job, Model, ModelVersion
from service.db.session import make_engine, make_sessionmaker
from service.domain.auth import create_api_key
from service.main import create_app
from service.queue import make_producer
from tests.conftest import fresh_database
from worker.fashion_mnist import export
from worker.unlearn.data import read_manifest
from worker.pipeline import WorkerContext, run_job
from worker.validation import validate_version
from worker.unlearn.runtime import configure_cpu_threads

GATE_OFF = {"retain_max_psnr_drop": None, "retain_max_cosine_drop": None, "forget_min_cosine_drop": None,
            "forget_min_psnr_drop": None, "forget_max_cosine_over_reference": None}  # fmt: skip


def setup(tmp: Path, per_class: int) -> tuple[Settings, TestClient, dict[Role, str], list[str]]:
    settings = Settings(home=tmp / "home", database_url=fresh_database("oblivio_bench_batching"),
                        data_roots=[tmp / "data"], batch_window_seconds=3600, batch_max_requests=100,
                        register_wait_seconds=0)  # fmt: skip
    upgrade(settings)
    with make_sessionmaker(make_engine(settings)).begin() as session:
        keys = {role: create_api_key(session, name=role.value, role=role)[1] for role in (Role.admin, Role.officer)}
    manifests = export(tmp / "data", limit_per_class=per_class)
    client = TestClient(create_app(settings))
    admin = {"Authorization": f"Bearer {keys[Role.admin]}"}
    for name, kind, split in (("train", "training", "train"), ("proxy", "proxy", "test")):
        rows = [dict(r.__dict__, uri=str(tmp / "data" / r.uri)) for r in read_manifest(manifests[split])]
        client.post("/datasets", json={"name": name, "kind": kind}, headers=admin).raise_for_status()
        client.post(f"/datasets/{name}/samples", json={"samples": rows}, headers=admin).raise_for_status()
    spec = {"name": "bench", "training_dataset": "train", "proxy_dataset": "proxy", "gate_thresholds": GATE_OFF}
    with open(DEMO / "mae.safetensors", "rb") as checkpoint, open(DEMO / "classifier.safetensors", "rb") as features:
        client.post("/models", data={"spec": json.dumps(spec)}, files={"checkpoint": checkpoint, "features": features},
                    headers=admin).raise_for_status()  # fmt: skip
    with make_sessionmaker(make_engine(settings)).begin() as session:  # no worker process here: validate in-process
        version_id = session.scalar(select(ModelVersion.id).join(Model).where(Model.name == "bench"))
    if validate_version(WorkerContext.from_settings(settings, producer=make_producer(settings)), version_id) != "published":
        raise RuntimeError("the demo checkpoint was not validated")
    train_keys = [r.sample_key for r in read_manifest(manifests["train"])]
    return settings, client, keys, train_keys


def coalesced_job(client: TestClient, token: str, samples: list[str], steps: int) -> tuple[uuid.UUID, str]:
    """Submit one request per sample; returns the one job they share and one request id."""
    jobs, request_id = set(), ""
    for key in samples:
        body = {"model": "bench", "samples": [key], "config": {"steps": steps}}
        response = client.post("/unlearn-requests", json=body, headers={"Authorization": f"Bearer {token}"})
        response.raise_for_status()
        jobs.add(response.json()["job"]["id"])
        request_id = response.json()["id"]
    if len(jobs) != 1:
        raise RuntimeError(f"{len(samples)} requests made {len(jobs)} jobs; expected one")
    return uuid.UUID(jobs.pop()), request_id


def run(ctx: WorkerContext, job_id: uuid.UUID) -> dict:
    with ctx.sessions.begin() as session:  # close the batching window
        session.execute(update(Job).where(Job.id == job_id).values(not_before=None))
    started = time.perf_counter()
    outcome = run_job(ctx, job_id)
    wall = time.perf_counter() - started
    with ctx.sessions() as session:
        job = session.get(Job, job_id)
        job_s = (job.finished_at - job.started_at).total_seconds()
        steps, status = job.progress_total, job.status.value
    if outcome != "published":
        raise RuntimeError(f"job {job_id} ended {outcome} ({status})")
    return {"job_s": round(job_s, 2), "run_job_wall_s": round(wall, 2), "warm_next_s": round(wall - job_s, 2),
            "steps": steps}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.batching", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--steps", type=int, default=60, help="optimiser steps of each job")
    parser.add_argument("--per-class", type=int, default=300, help="Fashion-MNIST images per class and split")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0 = CPUs available)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="oblivio-bench-batching-") as tmp:
        settings, client, keys, train_keys = setup(Path(tmp), args.per_class)
        ctx = WorkerContext.from_settings(settings, producer=make_producer(settings))
        threads = configure_cpu_threads(args.threads or None)  # after the context, which sets the worker default
        offset = 0

        def job_of(n: int) -> dict:
            nonlocal offset
            samples, offset = train_keys[offset : offset + n], offset + n
            job_id, request_id = coalesced_job(client, keys[Role.officer], samples, args.steps)
            timed = run(ctx, job_id)
            report = client.get(f"/unlearn-requests/{request_id}/report", headers={"Authorization": f"Bearer {keys[Role.admin]}"})
            report.raise_for_status()
            timings = report.json()["body"]["timings"]  # inside the job: load, unlearn (incl. a cache miss), evaluate
            return {**timed, **{k: round(v, 2) for k, v in timings.items()}}

        cold = job_of(1)
        print(f"cold (teacher cache miss): {cold}")
        sizes = {}
        for n in args.sizes:
            sizes[str(n)] = job_of(n)
            print(f"{n:>3} coalesced requests: {sizes[str(n)]}")
        client.close()
    one, most = sizes[str(min(args.sizes))]["job_s"], sizes[str(max(args.sizes))]["job_s"]
    result = {
        "device": device_info("cpu"),
        "threads": threads,
        "steps_per_job": args.steps,
        "proxy_images": 10 * args.per_class,
        "cold_job": cold,
        "jobs": sizes,
        "ratios": {f"{max(args.sizes)}_over_{min(args.sizes)}": round(most / one, 3)},
        "targets": {"100_over_1_max": 2.0},
    }
    print(f"wrote {write_result('batching', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
