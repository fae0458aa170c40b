"""What every benchmark records: where it ran, and how it writes its JSON."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
DEMO = Path(__file__).resolve().parents[1] / "worker" / "assets" / "demo"
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def device_info(device: str = "cpu") -> dict[str, Any]:
    """The machine a number was measured on (CPU model, cores this process may use, torch threads, GPU)."""
    import torch

    info: dict[str, Any] = {
        "device": device,
        "cpu": _cpu_model(),
        "cpus_available": len(os.sched_getaffinity(0)),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name()
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def write_result(name: str, result: dict[str, Any]) -> Path:
    """Write ``results/<name>.json`` (with a UTC timestamp) and return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    body = {"benchmark": name, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **result}
    path.write_text(json.dumps(body, indent=2) + "\n")
    return path
