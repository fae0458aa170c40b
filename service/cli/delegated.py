"""`oblivio worker` and `oblivio demo` run in the worker's code (torch): the CLI hands its process over."""

import os
import sys
from typing import NoReturn

_MODULES = {"worker": "worker", "demo": "worker.demo"}


def hand_over(command: str, extra: list[str]) -> NoReturn:
    """Replace this process by `python -m <module> EXTRA...` with the same interpreter."""
    os.execv(sys.executable, [sys.executable, "-m", _MODULES[command], *extra])
