"""The worker's teacher cache in the artifact store: built on a miss, reused on a hit, per version."""

import hashlib
import uuid
from pathlib import Path

import torch
from PIL import Image

from service.db.enums import Mode
from service.storage import LocalArtifactStore
from tests.unlearn.tiny_models import make_images, make_tiny
from worker.inputs import JobInputs, Part, ReadLog
from worker.teacher_targets import BANK, cache_key, job_targets, warm_next
from worker.unlearn import checkpoint_to_bytes
from worker.unlearn.data import SampleRecord


def write_part(root: Path, name: str, images: torch.Tensor) -> Part:
    root.mkdir(parents=True, exist_ok=True)
    records = []
    for i, img in enumerate(images):
        path = root / f"{name}-{i:03d}.png"
        Image.fromarray((img[0] * 255).round().to(torch.uint8).numpy(), mode="L").save(path)
        records.append(SampleRecord(f"{name}-{i:03d}", f"c{i % 3}", str(path), hashlib.sha256(path.read_bytes()).hexdigest()))
    return Part(name, records)


def job_inputs(proxy: Part, retain: Part, digest: str, mode: Mode = Mode.retain_free) -> JobInputs:
    empty = Part("train", [])
    return JobInputs(
        job_id=uuid.uuid4(), model="m", family="mae", attempt=1, base_version=1, base_digest=digest,
        feature_net_digest=None, gate_overrides={}, mode=mode, method="encoder_l2", config={}, training_dataset="train",
        forget=empty,
        forget_requests={}, forget_classes=[], forget_owners={}, retain=retain, holdout=empty, reference=None,
        retain_manifest_digest="manifest-" + proxy.digest, request_ids=[], proxy=proxy,
    )  # fmt: skip


def test_a_miss_builds_and_stores_a_hit_reuses_and_a_new_version_gets_its_own(tmp_path):
    store = LocalArtifactStore(tmp_path / "store")
    base = make_tiny("mae")
    digest = store.put(checkpoint_to_bytes(base))
    proxy = write_part(tmp_path / "data", "px", make_images(base, 12, 1))
    retain = Part("px", [proxy.records[i] for i in (7, 2, 9)])  # a job's subset, in its own order
    inputs = job_inputs(proxy, retain, digest)

    reads = ReadLog([tmp_path / "data"])
    first = job_targets(store, inputs, base, reads)
    assert reads.count("px") == 12  # the miss read the whole proxy set once
    assert store.get_derived(digest, cache_key(inputs, digest).name) is not None
    assert first.keys == ["px-007", "px-002", "px-009"] and first.targets.shape[:2] == (3, BANK.draws_per_image)

    reads = ReadLog([tmp_path / "data"])
    second = job_targets(store, inputs, base, reads)
    assert reads.count("px") == 0  # the hit read no image
    assert torch.equal(second.targets, first.targets) and torch.equal(second.masks, first.masks)

    v2 = make_tiny("mae", seed=1)
    digest_v2 = store.put(checkpoint_to_bytes(v2))
    assert store.get_derived(digest_v2, cache_key(inputs, digest_v2).name) is None  # v1's cache is not v2's
    warm_next(store, inputs, v2, digest_v2, [tmp_path / "data"])  # what the worker does right after publishing v2
    reads = ReadLog([tmp_path / "data"])
    third = job_targets(store, job_inputs(proxy, retain, digest_v2), v2, reads)
    assert reads.count("px") == 0 and not torch.allclose(third.targets.float(), first.targets.float(), atol=1e-3)

    store.delete_derived(digest)  # purging v1 drops its cache, not v2's
    assert store.get_derived(digest, cache_key(inputs, digest).name) is None
    assert store.get_derived(digest_v2, cache_key(inputs, digest_v2).name) is not None


def test_with_retain_jobs_keep_the_uncached_path(tmp_path):
    store = LocalArtifactStore(tmp_path / "store")
    base = make_tiny("mae")
    proxy = write_part(tmp_path / "data", "px", make_images(base, 4, 1))
    inputs = job_inputs(proxy, proxy, store.put(checkpoint_to_bytes(base)), mode=Mode.with_retain)
    assert job_targets(store, inputs, base, ReadLog([tmp_path / "data"])) is None
