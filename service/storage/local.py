"""Local-folder artifact store. Blobs are named by their sha256 and written atomically."""

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO

_DIGEST = re.compile(r"^[0-9a-f]{64}$")
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

    def _publish(self, digest: str, write) -> None:
        target = self.local_path(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
            write(tmp)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp.name, target)
