"""Process-wide torch settings for a worker that runs one job at a time (Celery ``--pool=solo``)."""

from __future__ import annotations

import os

import torch


def configure_cpu_threads(threads: int | None = None) -> int:
    """Intra-op threads = the CPUs this process may run on (affinity, not the host's count); no inter-op pool.

    torch's default counts the host's physical cores, which oversubscribes a container or a
    ``taskset`` slice; one job at a time has no independent ops to overlap, so inter-op threads
    only spin. Returns the thread count set.
    """
    n = threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set, or parallel work already ran in this process: keep it
        pass
    return n
