"""Check a whole safetensors checkpoint without torch (the API image has none).

A safetensors file is an 8-byte little-endian header length, a JSON header, then raw tensor bytes.
Every tensor entry names a dtype, a shape and the [begin, end) byte range of its data; the ranges
tile the data area exactly, in some order. Oblivio keeps its own JSON header as a string under the
metadata key "oblivio". Whether the tensors fit the family's layout is the worker's check (it has
torch): this one makes sure the file is complete and self-consistent.
"""

import json
import math
import os
import struct
from collections import Counter
from typing import Any, BinaryIO

FORMAT = "oblivio-checkpoint/1"
METADATA_KEY = "oblivio"
_MAX_HEADER = 100 * 1024 * 1024
_MAX_PROBLEMS = 20  # a file with 10,000 broken tensors is told about the first ones and the count
DTYPE_SIZES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1,
    "U16": 2, "I16": 2, "F16": 2, "BF16": 2,
    "U32": 4, "I32": 4, "F32": 4,
    "U64": 8, "I64": 8, "F64": 8,
}


def inspect_checkpoint(stream: BinaryIO) -> tuple[dict[str, Any] | None, list[str]]:
    """(the Oblivio header or None, every problem found); no problems means a complete, consistent file.

    Refuses pickles and other formats; checks each tensor's dtype, shape and byte range, that the
    ranges tile the data area with no gap or overlap, and that the file ends where the last tensor does.
    """
    size = stream.seek(0, os.SEEK_END)
    stream.seek(0)
    prefix = stream.read(8)
    length = struct.unpack("<Q", prefix)[0] if len(prefix) == 8 else -1
    if not 0 < length <= min(_MAX_HEADER, size - 8):
        if prefix[:2] == b"PK" or prefix[:1] == b"\x80":  # a torch.save zip archive or a bare pickle stream
            return None, ["pickle/zip checkpoints are refused; convert to safetensors"]
        if length < 0:
            return None, [f"file of {size} bytes is too short to be a safetensors checkpoint"]
        return None, [f"not a safetensors file: header length {length} does not fit a file of {size} bytes"]
    try:
        header = json.loads(stream.read(length), object_pairs_hook=_refuse_duplicates)
    except ValueError as exc:
        return None, [f"safetensors header is not valid JSON: {exc}"]
    if not isinstance(header, dict):
        return None, ["safetensors header must be a JSON object"]
    metadata = header.pop("__metadata__", None)
    problems = _tensor_problems(header, data_length=size - 8 - length)
    oblivio, metadata_problems = _oblivio_header(metadata)
    return oblivio, _capped(problems + metadata_problems)


def oblivio_problems(header: dict[str, Any], *, families: frozenset[str]) -> list[str]:
    """What a model's base checkpoint header lacks: the format, a known family, a non-empty config."""
    problems = []
    if header.get("format") != FORMAT:
        problems.append(f"Oblivio header 'format' is {header.get('format')!r}; expected {FORMAT!r}")
    family = header.get("family")
    if family not in families:
        problems.append(f"unknown model family {family!r}; known families: {sorted(families)}")
    config = header.get("config")
    if not isinstance(config, dict) or not config:
        problems.append("Oblivio header 'config' must be a non-empty JSON object (the family's architecture)")
    return problems


def _tensor_problems(tensors: dict[str, Any], *, data_length: int) -> list[str]:
    if not tensors:
        return ["the checkpoint holds no tensors"]
    problems, ranges = [], []
    for name, entry in tensors.items():
        nbytes, entry_problems = _entry(name, entry)
        problems += entry_problems
        if entry_problems:
            continue
        begin, end = entry["data_offsets"]
        if end > data_length:
            problems.append(f"tensor {name!r}: data_offsets end {end} is past the end of the data ({data_length} bytes): "
                            "the file is truncated or its offsets are wrong")
        if end - begin != nbytes:
            problems.append(f"tensor {name!r}: shape {entry['shape']} of {entry['dtype']} needs {nbytes} bytes, "
                            f"data_offsets give {end - begin}")
        ranges.append((begin, end, name))
    if problems:
        return problems
    position = 0
    for begin, end, name in sorted(ranges):
        if begin < position:
            problems.append(f"tensor {name!r}: data_offsets [{begin}, {end}] overlap the previous tensor's data")
        elif begin > position:
            problems.append(f"tensor {name!r}: data_offsets start at {begin}, leaving bytes {position}-{begin} unused")
        position = max(position, end)
    if position != data_length:
        problems.append(f"file is {data_length - position} bytes longer than its tensors' data"
                        if position < data_length else f"tensor data is truncated: {position} bytes declared")
    return problems


def _entry(name: str, entry: Any) -> tuple[int, list[str]]:
    """(byte size the dtype and shape need, problems of the entry's fields)."""
    if not name:
        return 0, ["a tensor has an empty name"]
    if not isinstance(entry, dict):
        return 0, [f"tensor {name!r}: entry must be an object with dtype, shape and data_offsets"]
    problems = []
    if entry.get("dtype") not in DTYPE_SIZES:
        problems.append(f"tensor {name!r}: unknown dtype {entry.get('dtype')!r}")
    shape = entry.get("shape")
    if not isinstance(shape, list) or not all(_natural(d) for d in shape):
        problems.append(f"tensor {name!r}: shape must be a list of non-negative integers, got {shape!r}")
    offsets = entry.get("data_offsets")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_natural(o) for o in offsets)):
        problems.append(f"tensor {name!r}: data_offsets must be two non-negative integers, got {offsets!r}")
    elif offsets[0] > offsets[1]:
        problems.append(f"tensor {name!r}: data_offsets begin {offsets[0]} is after end {offsets[1]}")
    if problems:
        return 0, problems
    return math.prod(shape) * DTYPE_SIZES[entry["dtype"]], []


def _oblivio_header(metadata: Any) -> tuple[dict[str, Any] | None, list[str]]:
    missing = f"safetensors file without an Oblivio header (metadata key {METADATA_KEY!r})"
    if not isinstance(metadata, dict) or METADATA_KEY not in metadata:
        return None, [missing]
    try:
        oblivio = json.loads(metadata[METADATA_KEY])
    except (TypeError, ValueError):
        return None, [f"{missing}: its value is not JSON"]
    if not isinstance(oblivio, dict):
        return None, ["Oblivio header must be a JSON object"]
    return oblivio, []


def _natural(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        repeated = sorted(k for k, n in Counter(k for k, _ in pairs).items() if n > 1)
        raise ValueError(f"duplicate keys {repeated[:5]}")
    return result


def _capped(problems: list[str]) -> list[str]:
    if len(problems) <= _MAX_PROBLEMS:
        return problems
    return [*problems[:_MAX_PROBLEMS], f"… and {len(problems) - _MAX_PROBLEMS} more problems"]
