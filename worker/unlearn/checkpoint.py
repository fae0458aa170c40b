"""Self-describing checkpoints: safetensors tensors plus a JSON header (ALGORITHM.md §6).

The header is a JSON object stored as a string in the safetensors metadata under key ``"oblivio"``:
``format``, ``family``, ``config`` (the family's architecture dict) and any extra keys the caller
adds (``parent_digest``, ``request_ids``, training recipe, ...), preserved as given. Pickle
checkpoints (``torch.save`` files) are refused: loading one can run arbitrary code.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Any

from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .adapters.base import Adapter
from .adapters.registry import create_adapter

FORMAT = "oblivio-checkpoint/1"
METADATA_KEY = "oblivio"
_MAX_HEADER_BYTES = 100 * 1024 * 1024


class CheckpointError(ValueError):
    """The bytes are not a valid Oblivio checkpoint (pickle, foreign file, broken header)."""


def checkpoint_to_bytes(adapter: Adapter, header: dict[str, Any] | None = None) -> bytes:
    """Serialise ``adapter``; ``header``'s keys are kept, ``format``/``family``/``config`` set from the adapter."""
    full = {**(header or {}), "format": FORMAT, "family": adapter.family, "config": adapter.config.to_dict()}
    tensors = {k: v.detach().cpu().contiguous() for k, v in adapter.state_dict().items()}
    return st_save(tensors, metadata={METADATA_KEY: json.dumps(full, sort_keys=True)})


Source = bytes | str | os.PathLike
"""A checkpoint: its bytes, or the path of its file."""


def read_header(source: Source) -> dict[str, Any]:
    """The Oblivio header of a checkpoint (bytes or a file path), without reading the tensors."""
    data = source if isinstance(source, bytes | bytearray | memoryview) else _read_head(Path(source))
    return _parse_header(bytes(data))


def _read_head(path: Path) -> bytes:
    """The first 8 bytes and the safetensors JSON header that follows them (no tensor bytes)."""
    with open(path, "rb") as f:
        prefix = f.read(8)
        n = int.from_bytes(prefix, "little") if len(prefix) == 8 else 0
        return prefix + f.read(min(n, _MAX_HEADER_BYTES))


def _parse_header(data: bytes) -> dict[str, Any]:
    n = int.from_bytes(data[:8], "little") if len(data) >= 8 else -1
    if not 0 <= n <= min(len(data) - 8, _MAX_HEADER_BYTES):
        if data[:2] == b"PK" or data[:1] == b"\x80":  # torch.save zip archive or bare pickle stream
            raise CheckpointError("pickle checkpoints (torch.save) are refused; convert the weights to safetensors")
        raise CheckpointError("not a safetensors file: header length out of range")
    try:
        st_header = json.loads(data[8 : 8 + n])
        header = json.loads(st_header["__metadata__"][METADATA_KEY])
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise CheckpointError(f"safetensors file without a readable {METADATA_KEY!r} header ({err!r})") from None
    found = header.get("format") if isinstance(header, dict) else header
    if found != FORMAT:
        raise CheckpointError(f"unsupported checkpoint format {found!r}; expected {FORMAT!r}")
    return header


def checkpoint_from_bytes(data: bytes) -> tuple[Adapter, dict[str, Any]]:
    """Rebuild the adapter (strict key and shape check) and return it with the full header."""
    header = _parse_header(data)
    adapter = create_adapter(header["family"], header["config"])
    adapter.load_state_dict(st_load(data), strict=True)
    return adapter, header


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save_checkpoint(adapter: Adapter, path: str | Path, header: dict[str, Any] | None = None) -> str:
    """Write the checkpoint atomically (temp file + rename); returns the file's sha256 hex digest."""
    data = checkpoint_to_bytes(adapter, header)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")  # same directory: rename is atomic
    try:
        with open(tmp, "xb") as f:  # default permissions (umask), unlike mkstemp's 0600
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return sha256_hex(data)


def load_checkpoint(source: Source) -> tuple[Adapter, dict[str, Any]]:
    """Load a checkpoint from its bytes or a file path; see :func:`checkpoint_from_bytes`."""
    data = source if isinstance(source, bytes | bytearray | memoryview) else Path(source).read_bytes()
    return checkpoint_from_bytes(bytes(data))
