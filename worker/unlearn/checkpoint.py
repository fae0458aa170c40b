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

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .adapters.base import Adapter
from .adapters.registry import create_adapter
from .adapters.sampler import is_sampler

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


def checkpoint_problems(data: bytes, *, batch: int = 2) -> list[str]:
    """Everything that stops ``data`` from serving as a base generator; an empty list means it can.

    The family's layout is first built on the meta device (no memory, whatever the config asks
    for) and compared with the file's tensors: names, shapes, finite values. Only a matching file
    is loaded strictly and run once on a dummy batch, whose outputs must have the input's shape
    and be finite.
    """
    try:
        header = read_header(data)
        with torch.device("meta"):
            layout = create_adapter(header["family"], header["config"]).state_dict()
    except Exception as err:  # a bad header or config fails in many ways; each is a verdict, not a crash
        return [f"checkpoint does not describe a known model: {err}"]
    try:
        tensors = st_load(data)
    except Exception as err:  # safetensors raises its own error type for every malformed file
        return [f"tensors cannot be read: {err}"]
    problems = _layout_problems(header["family"], layout, tensors)
    return problems or _forward_problems(header, tensors, batch)


def _layout_problems(family: str, layout: dict[str, torch.Tensor], tensors: dict[str, torch.Tensor]) -> list[str]:
    missing, unexpected = sorted(set(layout) - set(tensors)), sorted(set(tensors) - set(layout))
    problems = [f"{len(names)} {kind} tensor names for family {family!r}: {names[:10]}{' …' if len(names) > 10 else ''}"
                for kind, names in (("missing", missing), ("unexpected", unexpected)) if names]
    for name in sorted(set(layout) & set(tensors)):
        if tuple(tensors[name].shape) != tuple(layout[name].shape):
            problems.append(f"tensor {name!r} has shape {tuple(tensors[name].shape)}, the config needs {tuple(layout[name].shape)}")
        elif tensors[name].is_floating_point() and not bool(torch.isfinite(tensors[name]).all()):
            problems.append(f"tensor {name!r} holds NaN or infinite values")
    return problems


def _forward_problems(header: dict[str, Any], tensors: dict[str, torch.Tensor], batch: int) -> list[str]:
    try:
        adapter = create_adapter(header["family"], header["config"])
        adapter.load_state_dict(tensors, strict=True)
        adapter.model.eval()
        generator = torch.Generator().manual_seed(0)
        images = torch.rand(batch, *adapter.image_shape, generator=generator)
        with torch.no_grad():
            if is_sampler(adapter):  # latent codes -> images (-> the discriminator's logits, if it has one)
                output = adapter.sample_raw(adapter.latent(batch, generator))
                outputs = [("generator output", output)]
                if adapter.has_discriminator:
                    outputs.append(("discriminator output", adapter.discriminate(output.clamp(0, 1))))
            else:
                mask = adapter.random_mask(batch, generator)
                latent, output = adapter.encode(images, mask), adapter.reconstruct(images, mask)
                outputs = [("encoder output", latent), ("generator output", output)]
    except Exception as err:  # whatever the model raises, the verdict names it
        return [f"forward pass on a dummy batch failed: {type(err).__name__}: {err}"]
    problems = []
    if tuple(output.shape) != tuple(images.shape):
        problems.append(f"forward pass returned shape {tuple(output.shape)} for input {tuple(images.shape)}")
    for name, value in outputs:
        if not bool(torch.isfinite(value).all()):
            problems.append(f"forward pass on a dummy batch: the {name} holds NaN or infinite values")
    return problems


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
