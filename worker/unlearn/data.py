"""Sample manifests (JSON Lines) and image loading with sha256 verification.

A manifest line is one JSON object with exactly the fields of :class:`SampleRecord`::

    {"sample_key": "fmnist-test-00000", "class_label": "ankle_boot",
     "uri": "test/00000.png", "sha256": "<64 hex digits>"}

A relative ``uri`` is resolved against the manifest's directory when read; ``file://`` URIs
and absolute paths are taken as they are.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import torch
from PIL import Image


@dataclasses.dataclass(frozen=True)
class SampleRecord:
    """One sample of a dataset: its key, class, where its file is and the file's sha256."""

    sample_key: str
    class_label: str
    uri: str
    sha256: str


Reader = Callable[[SampleRecord], bytes]
_FIELDS = tuple(f.name for f in dataclasses.fields(SampleRecord))


class ManifestError(ValueError):
    """A manifest line is malformed, or a sample key repeats."""


class SampleLoadError(ValueError):
    """A sample cannot be used: its file is missing or refused, it is not an image of the expected shape,
    or its bytes differ from the recorded sha256.

    The message names the sample (and its dataset, once the caller sets ``dataset``) and a generic
    cause: never a path, a digest of what was read, or an object's repr.
    """

    def __init__(self, sample_key: str, cause: str) -> None:
        super().__init__(sample_key, cause)
        self.sample_key, self.cause = sample_key, cause
        self.dataset: str | None = None

    def __str__(self) -> str:
        where = f"sample {self.sample_key!r}" + (f" of dataset {self.dataset!r}" if self.dataset else "")
        return f"{where}: {self.cause}"


class SampleIntegrityError(SampleLoadError):
    """A sample file's bytes do not have the sha256 the manifest records."""

    def __init__(self, sample_key: str, cause: str = "content does not match its registered sha256") -> None:
        super().__init__(sample_key, cause)


_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def _resolve_uri(uri: str, base: str) -> str:
    """Absolute path string for a manifest ``uri`` (relative ones against the directory ``base``)."""
    if uri.startswith("file://"):
        return uri
    return os.path.normpath(os.path.join(base, uri))  # join keeps an absolute uri as it is


def _parse_line(line: str, lineno: int, base: str) -> SampleRecord:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as err:
        raise ManifestError(f"line {lineno}: not valid JSON ({err.msg})") from None
    if not isinstance(obj, dict):
        raise ManifestError(f"line {lineno}: expected a JSON object, got {type(obj).__name__}")
    missing = [f for f in _FIELDS if f not in obj]
    extra = sorted(set(obj) - set(_FIELDS))
    if missing or extra:
        raise ManifestError(f"line {lineno}: missing fields {missing}, unexpected fields {extra}")
    for field in _FIELDS:
        if not isinstance(obj[field], str) or not obj[field]:
            raise ManifestError(f"line {lineno}: {field!r} must be a non-empty string")
    if not _SHA256_HEX.fullmatch(obj["sha256"]):
        raise ManifestError(f"line {lineno}: 'sha256' must be 64 lowercase hex digits")
    return SampleRecord(**{**obj, "uri": _resolve_uri(obj["uri"], base)})


def read_manifest(path: str | os.PathLike) -> list[SampleRecord]:
    """Read a JSON Lines manifest; blank lines are skipped, relative uris made absolute.

    Raises :class:`ManifestError` naming the (1-based) line of the first problem.
    """
    path = Path(path)
    base = str(path.resolve().parent)
    records: list[SampleRecord] = []
    first_line: dict[str, int] = {}
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            record = _parse_line(line, lineno, base)
            if record.sample_key in first_line:
                raise ManifestError(
                    f"line {lineno}: duplicate sample_key {record.sample_key!r} "
                    f"(first on line {first_line[record.sample_key]})"
                )
            first_line[record.sample_key] = lineno
            records.append(record)
    return records


def write_manifest(path: str | os.PathLike, records: Iterable[SampleRecord]) -> None:
    """Write records as JSON Lines (uris written as given), atomically via a temp file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(dataclasses.asdict(record), separators=(",", ":")) + "\n")
    tmp.replace(path)


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def load_uri(uri: str) -> bytes:
    """Bytes behind a plain path or a ``file://`` URI of a local, trusted manifest (benchmarks, tests).

    The worker reads registered samples through its own reader instead, confined to the data roots.
    """
    if uri.startswith("file://"):
        parsed = urlparse(uri)
        if parsed.netloc not in ("", "localhost"):
            raise ValueError(f"file URI with a remote host is not supported: {uri!r}")
        uri = unquote(parsed.path)
    elif "://" in uri:
        raise ValueError(f"unsupported URI scheme: {uri!r}")
    return Path(uri).read_bytes()


def read_local(record: SampleRecord) -> bytes:
    """The default reader of :func:`load_images`: :func:`load_uri` with errors that name the sample only."""
    try:
        return load_uri(record.uri)
    except FileNotFoundError:
        raise SampleLoadError(record.sample_key, "file missing") from None
    except (OSError, ValueError):
        raise SampleLoadError(record.sample_key, "file unreadable") from None


_PIL_MODE = {1: "L", 3: "RGB"}  # channels -> Pillow mode we convert to
_GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")  # source modes read as one channel


def _load_one(
    record: SampleRecord, image_shape: tuple[int, int, int] | None, verify: bool, read: Reader
) -> np.ndarray:
    """Read, verify and decode one sample; returns uint8 (C, H, W)."""
    data = read(record)  # read the bytes once: hash and decode the same bytes
    if verify and hashlib.sha256(data).hexdigest() != record.sha256:
        raise SampleIntegrityError(record.sample_key)
    try:
        with Image.open(io.BytesIO(data), formats=("PNG", "JPEG")) as img:
            channels = image_shape[0] if image_shape else (1 if img.mode in _GREY_MODES else 3)
            mode = _PIL_MODE[channels]
            pixels = np.asarray(img if img.mode == mode else img.convert(mode))  # (H, W[, 3])
    except Exception as err:  # Pillow raises many kinds on malformed bytes, and their texts hold object reprs
        raise SampleLoadError(record.sample_key, "not a readable PNG or JPEG image") from err
    pixels = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)  # (C, H, W)
    if image_shape is not None and pixels.shape != tuple(image_shape):
        raise SampleLoadError(record.sample_key, f"image shape {pixels.shape} != expected {tuple(image_shape)}")
    return pixels


def load_images(
    records: Sequence[SampleRecord],
    *,
    image_shape: tuple[int, int, int] | None = None,
    verify: bool = True,
    read: Reader = read_local,
) -> torch.Tensor:
    """Load sample images as one float32 tensor in [0, 1].

    records: N records; image_shape: expected (C, H, W) with C in {1, 3}; every image is
    converted to grey (C = 1) or RGB (C = 3). When None, the first image fixes it (grey modes
    give C = 1, others C = 3) and all images must then have that shape.
    verify: check each file's sha256 against the record (:class:`SampleIntegrityError`).
    read: a record's bytes, or :class:`SampleLoadError`; the default reads local manifests' paths.
    Returns: (N, C, H, W) float32. Images are never resized: a shape mismatch is an error.
    """
    if not records:
        if image_shape is None:
            raise ValueError("cannot infer the image shape of an empty record list")
        return torch.empty((0, *image_shape))
    if image_shape is None:  # fix the shape from the first sample so all agree
        image_shape = tuple(_load_one(records[0], None, verify, read).shape)
    elif image_shape[0] not in _PIL_MODE:
        raise ValueError(f"image_shape channels must be 1 or 3, got {image_shape[0]}")
    # A plain loop: for small images Pillow's per-file Python overhead dominates, so a thread
    # pool is slower (GIL), and a process pool is not allowed inside a daemonic Celery worker.
    arrays = [_load_one(record, image_shape, verify, read) for record in records]  # N x (C, H, W)
    batch = torch.from_numpy(np.stack(arrays))  # (N, C, H, W) uint8
    return batch.float().div_(255.0)  # (N, C, H, W) float32 in [0, 1]
