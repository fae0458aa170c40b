"""Several workers on several hosts: API and two worker processes, each its own host (own home, own
store client, nothing shared on disk but the data and the signing keys), one S3 bucket (moto's server),
one Postgres and one Redis. Jobs of two models run in parallel on the two workers; each model's jobs
run one after the other, each on the version the previous one published; every checkpoint lives in
the bucket and downloads through the API with its digest."""

import hashlib
import json
import socket
import time

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from service.config import Settings
from service.db.enums import Role
from service.db.models import AuditEvent, Job, Model
from service.queue import make_producer
from tests.e2e.stack import launch
from tests.e2e.test_end_to_end import DEFAULTS, TINY_GATE, follow, register_demo_data, wait_until_ready
from tests.s3 import client, new_bucket, store_env
from tests.unlearn.tiny_models import TINY_CONFIGS
from worker.unlearn import checkpoint_to_bytes, create_adapter

pytestmark = pytest.mark.integration
MODELS = ("tiny", "other")


def test_two_workers_on_two_hosts_share_one_s3_store_and_keep_each_models_order(tmp_path, s3_endpoint):
    bucket = new_bucket(s3_endpoint, versioned=True)
    keys = tmp_path / "keys"  # the shared keys volume of compose
    keys.mkdir()
    env = {**store_env(s3_endpoint, bucket, "oblivio"), "OBLIVIO_WORKER_METRICS_PORT": "0",
           "OBLIVIO_REGISTER_WAIT_SECONDS": "0",  # 202 at once: both models are validated at the same time
           "OBLIVIO_SIGNING_KEY_FILE": str(keys / "signing-key.pem"),
           "OBLIVIO_MODEL_SIGNING_KEY_FILE": str(keys / "model-signing-key.pem")}
    stack = launch("postgres", tmp_path, env, workers=0)
    try:
        hosts = [tmp_path / "host-a", tmp_path / "host-b"]
        workers = [stack.start(f"worker-{h.name}", "-m", "worker", env={"OBLIVIO_HOME": str(h)}) for h in hosts]
        wait_for_workers(stack, len(workers))
        register_demo_data(stack, per_class=6, settle=register_other_model)  # both validated at once, one per worker
        wait_until_ready(stack.client(Role.admin), "other")
        officer, auditor = stack.client(Role.officer), stack.client(Role.auditor)
        created = {model: [] for model in MODELS}
        for sample in ("tr-circle-000", "tr-square-000"):  # two requests per model, the models interleaved
            for model in MODELS:
                response = officer.post("/unlearn-requests", json={"model": model, "samples": [sample], "config": {"steps": 30}})
                assert response.status_code == 201, response.text
                created[model].append(response.json()["id"])
        finals = {model: [follow(auditor, rid, timeout=300)[0] for rid in ids] for model, ids in created.items()}
        assert all(f["status"] == "completed" for fs in finals.values() for f in fs), (finals, stack.log_tail())

        engine = create_engine(stack.direct_url)
        with Session(engine) as session:
            jobs = {model: session.scalars(select(Job).join(Model).where(Model.name == model).order_by(Job.created_at)).all()
                    for model in MODELS}
            started = session.scalars(select(AuditEvent).where(AuditEvent.action == "job.started")).all()
        engine.dispose()
        for model in MODELS:  # one after the other, each on the version the previous one published
            first, second = jobs[model]
            assert [(j.base_version, j.result_version) for j in jobs[model]] == [(1, 2), (2, 3)], model
            assert second.started_at >= first.finished_at, model
        overlap = min(j.finished_at for js in jobs.values() for j in js) > max(js[0].started_at for js in jobs.values())
        assert overlap, "the two models' first jobs ran at the same time"
        owners = {f"worker:{socket.gethostname()}:{w.pid}" for w in workers}
        assert {e.actor for e in started} == owners, stack.log_tail()  # both workers ran jobs

        s3, admin = client(s3_endpoint), stack.client(Role.admin)  # v2 is superseded by v3: admins only
        for model in MODELS:
            versions = auditor.get(f"/models/{model}/versions").json()
            assert [v["version"] for v in versions] == [1, 2, 3]
            for v in versions[1:]:
                download = admin.get(f"/models/{model}/versions/{v['version']}/checkpoint")
                assert download.status_code == 200, download.text
                digest = hashlib.sha256(download.content).hexdigest()
                assert digest == v["checkpoint_digest"] == download.headers["x-checkpoint-sha256"]
                key = f"oblivio/sha256/{digest[:2]}/{digest}"
                assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == len(download.content)
        derived = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="oblivio/")["Contents"] if ".derived/" in o["Key"]]
        assert any("/teacher" in k for k in derived), derived  # teacher caches live in the bucket too
        for home in (*hosts, tmp_path / "home"):  # nothing stored on any host's disk
            assert not list(home.rglob("sha256")), home
    finally:
        stack.stop()


def wait_for_workers(stack, count: int, timeout: float = 120) -> None:
    """Until ``count`` workers answer a broker ping (both consume before any job is queued)."""
    producer = make_producer(Settings(broker_url=stack.env["OBLIVIO_BROKER_URL"], home=stack.env["OBLIVIO_HOME"]))
    deadline = time.monotonic() + timeout
    while len(producer.control.ping(timeout=1) or []) < count:
        assert time.monotonic() < deadline, stack.log_tail()
        assert all(p.poll() is None for p in stack.processes.values()), stack.log_tail()


def register_other_model(stack) -> None:
    config = {**TINY_CONFIGS["mae"], "pixel_mean": [0.4], "pixel_std": [0.4]}
    spec = {"name": "other", "training_dataset": "train", "proxy_dataset": "proxy", "unlearn_defaults": DEFAULTS,
            "gate_thresholds": TINY_GATE}
    base = checkpoint_to_bytes(create_adapter("mae", config, seed=1))
    admin = stack.client(Role.admin)
    registered = admin.post("/models", data={"spec": json.dumps(spec)}, files={"checkpoint": ("o.safetensors", base)})
    assert registered.status_code in (201, 202), registered.text
