"""Read a checkpoint's safetensors header without torch (the API image has none).

A safetensors file is an 8-byte little-endian header length, a JSON header, then raw tensor bytes.
Oblivio keeps its own JSON header as a string under the metadata key "oblivio".
"""

import json
import struct
from typing import Any, BinaryIO

_MAX_HEADER = 100 * 1024 * 1024


class CheckpointFormatError(ValueError):
    pass


def read_checkpoint_header(stream: BinaryIO, *, require_family: bool = True) -> dict[str, Any]:
    """Return the Oblivio header of a safetensors checkpoint; refuse pickles and other formats."""
    prefix = stream.read(8)
    if len(prefix) < 8:
        raise CheckpointFormatError("file too short to be a safetensors checkpoint")
    if prefix[:2] == b"PK" or prefix[:1] == b"\x80":
        raise CheckpointFormatError("pickle/zip checkpoints are refused; convert to safetensors")
    (length,) = struct.unpack("<Q", prefix)
    if not 0 < length <= _MAX_HEADER:
        raise CheckpointFormatError("not a safetensors file (bad header length)")
    try:
        header = json.loads(stream.read(length))
        metadata = header.get("__metadata__") or {}
        oblivio = json.loads(metadata["oblivio"])
    except (ValueError, KeyError, AttributeError) as exc:
        raise CheckpointFormatError("safetensors file without an Oblivio header (metadata key 'oblivio')") from exc
    if not isinstance(oblivio, dict):
        raise CheckpointFormatError("Oblivio header must be a JSON object")
    if require_family and ("family" not in oblivio or "config" not in oblivio):
        raise CheckpointFormatError("Oblivio header must name 'family' and 'config'")
    return oblivio
