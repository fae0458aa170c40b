"""Canonical JSON: the byte string that digests and signatures are computed over.

Keys sorted, no insignificant whitespace, UTF-8, floats as Python's shortest repr. Non-finite
floats are refused (JSON has none), so a body has exactly one canonical form.
"""

import hashlib
import json
from typing import Any


def canonical_bytes(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def digest(value: Any) -> str:
    return hashlib.sha256(canonical_bytes(value)).hexdigest()
