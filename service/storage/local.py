"""Local-folder artifact store. Blobs are named by their sha256, written atomically and checked on read."""

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO

from service.storage.errors import ArtifactDamaged

_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")
CHUNK = 1 << 20


def check_digest(digest: str) -> str:
    if not _DIGEST.match(digest):
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return digest


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"not a derived artifact name: {name!r}")
    return name


def verify(data: bytes, digest: str, where: str) -> bytes:
    """``data`` if it hashes to ``digest``; :class:`ArtifactDamaged` otherwise."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != digest:
        raise ArtifactDamaged(digest, actual, where)
    return data


def verify_file(fh: BinaryIO, digest: str, where: str) -> BinaryIO:
    """Hash an open file from its start; rewound and returned if it matches ``digest``, else closed and refused."""
    hasher = hashlib.sha256()
    fh.seek(0)
    while chunk := fh.read(CHUNK):
        hasher.update(chunk)
    if hasher.hexdigest() != digest:
        fh.close()
        raise ArtifactDamaged(digest, hasher.hexdigest(), where)
    fh.seek(0)
    return fh


class LocalArtifactStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def local_path(self, digest: str) -> Path:
        return self.root / "sha256" / digest[:2] / check_digest(digest)

    def location(self, digest: str) -> str:
        return str(self.local_path(digest))

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
            while chunk := stream.read(CHUNK):
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
        """The blob's bytes, checked against its digest; FileNotFoundError when it is not stored."""
        path = self.local_path(digest)
        return verify(path.read_bytes(), digest, str(path))

    def open_verified(self, digest: str) -> BinaryIO:
        """The blob opened for reading, its whole content checked against its digest first (the caller closes it).

        The check reads the same open file that is then served, so a file replaced after the check is not.
        """
        path = self.local_path(digest)
        return verify_file(path.open("rb"), digest, str(path))

    def exists(self, digest: str) -> bool:
        return self.local_path(digest).is_file()

    def delete(self, digest: str) -> None:
        self.local_path(digest).unlink(missing_ok=True)

    def derived_path(self, digest: str, name: str) -> Path:
        """Where an artifact derived from blob ``digest`` lives (e.g. a checkpoint's teacher cache)."""
        return self.local_path(digest).with_name(f"{digest}.derived") / check_name(name)

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
