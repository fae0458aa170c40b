"""Export Fashion-MNIST from the Debian package ``dataset-fashion-mnist`` to PNG files + manifests.

    python -m worker.fashion_mnist export --out DIR [--source DIR] [--limit-per-class N]

writes ``DIR/train/00000.png ...`` and ``DIR/test/00000.png ...`` (grey 28x28 PNG) and the
manifests ``DIR/train.jsonl`` (the training dataset) and ``DIR/test.jsonl`` (the public proxy
dataset) with uris relative to DIR. Sample keys keep the index in the original split
(``fmnist-train-00042``), also when ``--limit-per-class`` keeps only the first N of each class.
The manifests are written last, so a present manifest with all expected rows means the split
is complete and a second export does nothing.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from worker.unlearn.data import ManifestError, SampleRecord, read_manifest, write_manifest

DEFAULT_SOURCE = Path("/usr/share/datasets/fashion-mnist")
SPLITS = ("train", "test")
CLASS_NAMES = (
    "t_shirt_top", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle_boot",
)  # fmt: skip
_FILE_PREFIX = {"train": "train", "test": "t10k"}
_IDX_MAGIC = {"images": 0x00000803, "labels": 0x00000801}  # uint8 data, 3 dims / 1 dim
_CHUNK = 2000  # images per process-pool task


def _read_idx(path: Path, kind: str) -> np.ndarray:
    """Parse one gzipped IDX file (big-endian header: magic, then one uint32 per dimension)."""
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    magic = int.from_bytes(data[:4], "big")
    if magic != _IDX_MAGIC[kind]:
        raise ValueError(f"{path}: not an IDX {kind} file (magic {magic:#010x})")
    ndim = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def read_idx_split(
    source_dir: str | os.PathLike = DEFAULT_SOURCE, split: str = "train"
) -> tuple[np.ndarray, np.ndarray]:
    """Read one split of the packaged Fashion-MNIST.

    Returns: images uint8 (N, 28, 28) and labels uint8 (N,) (indices into CLASS_NAMES);
    N = 60000 for "train", 10000 for "test".
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    source_dir = Path(source_dir)
    prefix = _FILE_PREFIX[split]
    images_path = source_dir / f"{prefix}-images-idx3-ubyte.gz"
    labels_path = source_dir / f"{prefix}-labels-idx1-ubyte.gz"
    for path in (images_path, labels_path):
        if not path.is_file():
            raise FileNotFoundError(
                f"Fashion-MNIST file {path} not found; install the Debian package with "
                "`apt-get install dataset-fashion-mnist` or pass --source"
            )
    images, labels = _read_idx(images_path, "images"), _read_idx(labels_path, "labels")
    if len(images) != len(labels):
        raise ValueError(f"{split}: {len(images)} images but {len(labels)} labels")
    return images, labels


def _select(labels: np.ndarray, limit_per_class: int | None) -> np.ndarray:
    """Indices kept: all, or the first ``limit_per_class`` of each class in index order."""
    if limit_per_class is None:
        return np.arange(len(labels))
    keep = [np.flatnonzero(labels == c)[:limit_per_class] for c in range(len(CLASS_NAMES))]
    return np.sort(np.concatenate(keep))


def _write_pngs(out_dir: Path, indices: np.ndarray, images: np.ndarray) -> list[str]:
    """Encode and write ``images`` (n, 28, 28) as ``out_dir/{index:05d}.png``; return sha256s."""
    digests = []
    for index, pixels in zip(indices, images):
        buf = io.BytesIO()
        Image.fromarray(pixels, mode="L").save(buf, format="PNG", compress_level=1)
        data = buf.getvalue()
        (out_dir / f"{index:05d}.png").write_bytes(data)
        digests.append(hashlib.sha256(data).hexdigest())
    return digests


def _is_complete(manifest: Path, keys: list[str]) -> bool:
    if not manifest.is_file():
        return False
    try:
        return [r.sample_key for r in read_manifest(manifest)] == keys
    except ManifestError:
        return False


def export(
    out_dir: str | os.PathLike,
    source: str | os.PathLike = DEFAULT_SOURCE,
    limit_per_class: int | None = None,
    workers: int | None = None,
) -> dict[str, Path]:
    """Export both splits (skipping a split already complete); return {split: manifest path}."""
    out_dir = Path(out_dir)
    manifests = {}
    for split in SPLITS:
        images, labels = read_idx_split(source, split)
        indices = _select(labels, limit_per_class)
        keys = [f"fmnist-{split}-{i:05d}" for i in indices]
        manifest = manifests[split] = out_dir / f"{split}.jsonl"
        if _is_complete(manifest, keys):
            continue  # written last, so every PNG it lists is there
        (out_dir / split).mkdir(parents=True, exist_ok=True)
        chunks = [indices[i : i + _CHUNK] for i in range(0, len(indices), _CHUNK)]
        n_workers = min(workers or os.cpu_count() or 1, len(chunks))
        if n_workers == 1:  # a small export: a process pool would cost more than it saves
            digests = _write_pngs(out_dir / split, indices, images[indices])
        else:
            with ProcessPoolExecutor(max_workers=n_workers) as pool:
                jobs = [pool.submit(_write_pngs, out_dir / split, c, images[c]) for c in chunks]
                digests = [d for job in jobs for d in job.result()]
        write_manifest(manifest, [
            SampleRecord(key, CLASS_NAMES[labels[i]], f"{split}/{i:05d}.png", digest)
            for key, i, digest in zip(keys, indices, digests)
        ])  # fmt: skip
    return manifests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker.fashion_mnist", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    cmd = commands.add_parser("export", help="write PNG files and train/test manifests")
    cmd.add_argument("--out", type=Path, required=True, help="output directory")
    cmd.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="directory of the .gz files")
    cmd.add_argument("--limit-per-class", type=int, default=None, help="keep the first N of each class")
    args = parser.parse_args(argv)
    if args.limit_per_class is not None and args.limit_per_class < 1:
        parser.error("--limit-per-class must be at least 1")
    start = time.perf_counter()
    try:
        manifests = export(args.out, args.source, args.limit_per_class)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for split, path in manifests.items():
        print(f"{split}: {path}")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
