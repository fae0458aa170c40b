"""The registry benchmarks/api.py submits against: a training dataset of N samples and a model 'bench'."""

from __future__ import annotations

import hashlib
import json

from service.db.enums import Role
from tests.e2e.test_end_to_end import wait_until_ready
from tests.unlearn.tiny_models import TINY_CONFIGS
from worker.unlearn import checkpoint_to_bytes, create_adapter


def register(stack, n_samples: int) -> None:
    """A training dataset of ``n_samples`` files (keys s-0 … s-N), a small proxy set, and a model 'bench'.

    No worker runs: the base checkpoint's verdict is recorded as a worker would record it."""
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
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from tests.builders import validate_model

    engine = create_engine(stack.direct_url)
    with Session(engine) as session:
        validate_model(session, "bench")
        session.commit()
    engine.dispose()
    wait_until_ready(admin, "bench")
