"""Process-wide torch settings for a worker that runs one job at a time (Celery ``--pool=solo``)."""

from __future__ import annotations

import os

import torch


def configure_cpu_threads(threads: int | None = None) -> int:
    """Intra-op threads = ``threads``, else ``OMP_NUM_THREADS``, else the CPUs this process may run on; no inter-op pool.

    torch's default counts the host's physical cores, which oversubscribes a container or a
    ``taskset`` slice; one job at a time has no independent ops to overlap, so inter-op threads
    only spin. On a CPU shared with other busy processes, set ``OMP_NUM_THREADS=1``: threads that
    wait for each other at every op then stall (2 threads were ~6x slower than
    1 for the demo model on a loaded 2-core machine). Returns the thread count set.
    """
    n = threads or int(os.environ.get("OMP_NUM_THREADS") or 0) or len(os.sched_getaffinity(0))
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set, or parallel work already ran in this process: keep it
        pass
    return n
