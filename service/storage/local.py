"""Local-folder artifact store. Blobs are named by their sha256 and written atomically."""

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO

_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")
_CHUNK = 1 << 20


class LocalArtifactStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def local_path(self, digest: str) -> Path:
        if not _DIGEST.match(digest):
            raise ValueError(f"not a sha256 digest: {digest!r}")
        return self.root / "sha256" / digest[:2] / digest

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        if not self.exists(digest):
            self._publish(digest, lambda f: f.write(data))
        return digest

    def put_stream(self, stream: BinaryIO) -> tuple[str, int]:
        """Copy a stream in, hashing as it goes; returns (digest, size)."""
        self.root.mkdir(parents=True, exist_ok=True)
        hasher, size = hashlib.sha256(), 0
        with tempfile.NamedTemporaryFile(dir=self.root, delete=False) as tmp:
            while chunk := stream.read(_CHUNK):
                hasher.update(chunk)
                size += len(chunk)
                tmp.write(chunk)
            tmp.flush()
            os.fsync(tmp.fileno())
        digest = hasher.hexdigest()
        target = self.local_path(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp.name, target)
        return digest, size

    def get(self, digest: str) -> bytes:
        return self.local_path(digest).read_bytes()

    def exists(self, digest: str) -> bool:
        return self.local_path(digest).is_file()

    def delete(self, digest: str) -> None:
        self.local_path(digest).unlink(missing_ok=True)

    def derived_path(self, digest: str, name: str) -> Path:
        """Where an artifact derived from blob ``digest`` lives (e.g. a checkpoint's teacher cache)."""
        if not _NAME.match(name):
            raise ValueError(f"not a derived artifact name: {name!r}")
        return self.local_path(digest).with_name(f"{digest}.derived") / name

    def put_derived(self, digest: str, name: str, data: bytes) -> None:
        """Store ``data`` next to blob ``digest`` under ``name`` (atomic replace); gone with the blob's purge."""
        self._write(self.derived_path(digest, name), lambda f: f.write(data))

    def get_derived(self, digest: str, name: str) -> bytes | None:
        path = self.derived_path(digest, name)
        return path.read_bytes() if path.is_file() else None

    def delete_derived(self, digest: str) -> None:
        """Delete every artifact derived from blob ``digest``."""
        folder = self.local_path(digest).with_name(f"{digest}.derived")
        for path in folder.glob("*"):
            path.unlink(missing_ok=True)
        if folder.is_dir():
            folder.rmdir()

    def _publish(self, digest: str, write) -> None:
        self._write(self.local_path(digest), write)

    @staticmethod
    def _write(target: Path, write) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
            write(tmp)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp.name, target)
