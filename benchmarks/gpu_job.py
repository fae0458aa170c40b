"""One retain-free job end to end through the API and a worker process on a chosen device.

    python -m benchmarks.gpu_job [--device cuda] [--fashion-mnist DIR] [--per-class 300] [--steps N] [--dry-run]

The embedded shape (SQLite, filesystem broker, local artifacts) in a fresh folder: the API and a
worker (`OBLIVIO_WORKER_DEVICE=<device>`) start as processes, the demo generator and its data are
registered (Fashion-MNIST when its files are there, else synthetic 28 px images of the same ten
classes), one retain-free request for a class is filed and followed to its end. Records the
times (start-up, checkpoint validation, the job), the job's steps and rate, and the device the
worker's signed report names. Writes benchmarks/results/gpu-job.json; exits 1 unless the request
ended and the report names the requested device.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.common import FASHION_MNIST, device_info, write_result

CLASS = "trouser"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_job", description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda", help="the worker's OBLIVIO_WORKER_DEVICE (cuda, cuda:N, cpu)")
    parser.add_argument("--fashion-mnist", type=Path, default=FASHION_MNIST, help="folder of the Fashion-MNIST .gz files")
    parser.add_argument("--per-class", type=int, default=300, help="images per class and split registered")
    parser.add_argument("--steps", type=int, default=None, help="the job's step budget (default: the model's)")
    parser.add_argument("--timeout", type=float, default=360, help="seconds the job may take before this gives up")
    parser.add_argument("--dry-run", action="store_true", help="check the arguments and say what would run; run nothing")
    args = parser.parse_args(argv)
    if args.per_class < 8 or (args.steps is not None and args.steps < 1):
        parser.error("--per-class must be at least 8, --steps at least 1")
    if not (args.device == "cpu" or args.device == "cuda" or args.device.startswith("cuda:")):
        parser.error(f"--device must be cpu, cuda or cuda:N, not {args.device!r}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    real = (args.fashion_mnist / "train-images-idx3-ubyte.gz").is_file()
    data = f"Fashion-MNIST from {args.fashion_mnist}" if real else "synthetic 28 px images"
    if args.dry_run:
        print(f"would run one retain-free job on {args.device}, data: {data}, {args.per_class} images per class")
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `timeout` stops it: API and worker are stopped too
    home = Path(tempfile.mkdtemp(prefix="oblivio-gpu-job-"))
    os.environ.update({"OBLIVIO_HOME": str(home), "OBLIVIO_WORKER_DEVICE": args.device,
                       "OBLIVIO_BATCH_WINDOW_SECONDS": "0", "OBLIVIO_REGISTER_WAIT_SECONDS": "0"})
    from service.config import Settings
    from service.db.migrate import upgrade
    from worker import demo

    settings = Settings()
    manifests = _data(settings.data_roots[0] / "fashion-mnist", args.fashion_mnist if real else None, args.per_class)
    upgrade(settings)
    admin_key, port = demo._admin_key(settings), demo._free_port()
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    procs = demo._start(settings, port)
    try:
        demo._wait_ready(url, procs)
        up_s = time.monotonic() - started
        admin = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=120)
        demo._register(admin, manifests)
        registered_s = time.monotonic() - started - up_s
        config = {"config": {"steps": args.steps}} if args.steps else {}
        created = admin.post("/unlearn-requests", json={"model": demo.MODEL, "classes": [CLASS], **config})
        created.raise_for_status()
        final, job_s, running_at = _follow(admin, created.json()["id"], args.timeout)
        report = admin.get(f"/unlearn-requests/{final['id']}/report")
        body = report.json()["body"] if report.status_code == 200 else {}
        job = admin.get(f"/jobs/{final['job']['id']}").json() if final.get("job") else {}
    finally:
        demo._stop(procs)
    ran_on = body.get("worker", {}).get("device")
    result = {
        "device": device_info(args.device),
        "data": data,
        "images_per_class": args.per_class,
        "request": {"mode": final["mode"], "classes": final["classes"], "status": final["status"],
                    "reason": final.get("reason"), "result_version": final.get("result_version")},
        "worker_device_in_report": ran_on,
        "seconds": {"api_and_worker_up": round(up_s, 1), "register_and_validate": round(registered_s, 1),
                    "queued_to_running": running_at, "job_end_to_end": round(job_s, 1)},
        "job": {"steps": job.get("progress", {}).get("step"), "planned_steps": job.get("planned_steps"),
                "steps_per_second": job.get("progress", {}).get("steps_per_second")},
        "gate": body.get("gate", {}).get("verdict"),
    }
    path = write_result("gpu-job", result)
    print(f"request {final['status']} on {ran_on} in {job_s:.1f} s ({result['job']['steps']} steps); wrote {path}")
    ok = final["status"] in ("completed", "failed") and ran_on is not None and ran_on.startswith(args.device.split(":")[0])
    return 0 if ok else 1


def _follow(client: httpx.Client, request_id: str, timeout: float) -> tuple[dict, float, float | None]:
    """(final view, seconds from filing to the end, seconds from filing to running)."""
    started, running_at = time.monotonic(), None
    while time.monotonic() - started < timeout:
        body = client.get(f"/unlearn-requests/{request_id}").json()
        if body["status"] == "running" and running_at is None:
            running_at = round(time.monotonic() - started, 1)
        if body["status"] in ("completed", "failed", "cancelled", "rejected"):
            return body, time.monotonic() - started, running_at
        time.sleep(0.25)
    raise SystemExit(f"request {request_id} still {body['status']} after {timeout:.0f} s")


def _data(out: Path, source: Path | None, per_class: int) -> dict[str, Path]:
    """Manifests {split: path} of PNG files: exported from Fashion-MNIST, or drawn (same classes, 28 px, grey)."""
    from worker.fashion_mnist import CLASS_NAMES, export
    from worker.unlearn.data import SampleRecord, write_manifest

    if source is not None:
        return export(out, source, limit_per_class=per_class)
    import torch
    from PIL import Image

    gen = torch.Generator().manual_seed(0)
    manifests = {}
    for split in ("train", "test"):
        (out / split).mkdir(parents=True, exist_ok=True)
        records = []
        for c, label in enumerate(CLASS_NAMES):
            pattern = torch.rand(7, 7, generator=gen)  # one coarse pattern per class, then per-image noise
            for i in range(per_class):
                image = (pattern + 0.3 * torch.rand(7, 7, generator=gen)).clamp(0, 1)
                image = torch.nn.functional.interpolate(image[None, None], size=28, mode="bilinear")[0, 0]  # (28, 28)
                path = out / split / f"{c}-{i:05d}.png"
                Image.fromarray((image * 255).round().byte().numpy(), mode="L").save(path)
                records.append(SampleRecord(f"synthetic-{split}-{c}-{i:05d}", label, f"{split}/{path.name}",
                                            hashlib.sha256(path.read_bytes()).hexdigest()))
        manifests[split] = out / f"{split}.jsonl"
        write_manifest(manifests[split], records)
    return manifests


if __name__ == "__main__":
    sys.exit(main())
