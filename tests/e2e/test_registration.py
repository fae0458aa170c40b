"""Registration waits for a real worker's verdict: it loads the checkpoint strictly and runs it once."""

import hashlib
import json

import httpx
import pytest
from safetensors.torch import save as st_save

from service.db.enums import Role
from tests.e2e.stack import launch, write_images
from tests.unlearn.tiny_models import TINY_CONFIGS
from worker.unlearn import checkpoint_to_bytes, create_adapter

pytestmark = pytest.mark.integration
SPEC = json.dumps({"name": "tiny", "training_dataset": "train", "proxy_dataset": "proxy"})


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = launch("postgres", tmp_path_factory.mktemp("registration"), extra_env={"OBLIVIO_REGISTER_WAIT_SECONDS": "150"})
    admin = stack.client(Role.admin)
    for name, kind in (("train", "training"), ("proxy", "proxy")):
        admin.post("/datasets", json={"name": name, "kind": kind}).raise_for_status()
        rows = write_images(stack.data_root / name, name, 2, seed=1)
        admin.post(f"/datasets/{name}/samples", json={"samples": rows}).raise_for_status()
    yield stack
    stack.stop()


def _admin(stack) -> httpx.Client:
    """An admin client that waits as long as the API does (a worker starting on a busy machine takes a while)."""
    return httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {stack.keys[Role.admin]}"}, timeout=180)


def _file(tensors: dict, config: dict) -> bytes:
    header = {"format": "oblivio-checkpoint/1", "family": "mae", "config": config}
    return st_save(tensors, metadata={"oblivio": json.dumps(header)})


def test_checkpoints_that_do_not_fit_their_family_are_refused_after_the_workers_verdict(stack):
    admin = _admin(stack)
    tensors = create_adapter("mae", TINY_CONFIGS["mae"]).state_dict()
    renamed = {("encoder." + k if k == "norm.weight" else k): v for k, v in tensors.items()}
    wider = {**TINY_CONFIGS["mae"], "decoder_embed_dim": 64}
    for data, problem in ((_file(renamed, TINY_CONFIGS["mae"]), "missing tensor names for family 'mae': ['norm.weight']"),
                          (_file(tensors, wider), "the config needs")):
        response = admin.post("/models", data={"spec": SPEC}, files={"checkpoint": ("b.safetensors", data)})
        assert response.status_code == 422, response.text + stack.log_tail()
        assert any(problem in i["problem"] for i in response.json()["detail"]["items"]), response.json()
        assert admin.get("/models/tiny").status_code == 404  # nothing stays half-registered
        assert not list(stack.settings().artifact_dir.rglob(hashlib.sha256(data).hexdigest()))  # nor its file
    actions = [e["action"] for e in stack.client(Role.auditor).get("/audit-events", params={"limit": 1000}).json()["items"]
               if e["subject"] == "model:tiny"]
    assert actions.count("version.rejected") == 2 and actions.count("model.discarded") == 2


def test_a_good_checkpoint_is_validated_and_current(stack):
    admin = _admin(stack)
    base = checkpoint_to_bytes(create_adapter("mae", TINY_CONFIGS["mae"], seed=0))
    response = admin.post("/models", data={"spec": SPEC}, files={"checkpoint": ("b.safetensors", base)})
    assert response.status_code == 201, response.text + stack.log_tail()
    assert (response.json()["current_version"], response.json()["status"]) == (1, "ready")
    [version] = admin.get("/models/tiny/versions").json()
    assert (version["status"], version["is_current"], version["problems"]) == ("published", True, [])
    assert admin.get("/models/tiny/versions/current/checkpoint").content == base
