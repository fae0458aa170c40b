"""Artifact store: content-addressed blobs (checkpoints, feature nets) and what is derived from them.

Two backends behind one interface: a local folder (``OBLIVIO_ARTIFACT_DIR``, the default) and any
S3-compatible bucket (``OBLIVIO_ARTIFACT_URL=s3://bucket/prefix``: AWS, MinIO, Ceph), which API and
workers on several hosts share. A blob is named by its sha256; every read checks the bytes against
that name and refuses a blob that does not match (:class:`ArtifactDamaged`).
"""

from typing import BinaryIO, Protocol

from service.config import Settings
from service.storage.errors import ArtifactDamaged, StoreRefused, StoreUnavailable
from service.storage.local import LocalArtifactStore


class ArtifactStore(Protocol):
    def put(self, data: bytes) -> str: ...
    def put_stream(self, stream: BinaryIO) -> tuple[str, int]: ...
    def get(self, digest: str) -> bytes: ...
    def open_verified(self, digest: str) -> BinaryIO: ...
    def location(self, digest: str) -> str: ...
    def exists(self, digest: str) -> bool: ...
    def delete(self, digest: str) -> None: ...
    def put_derived(self, digest: str, name: str, data: bytes) -> None: ...
    def get_derived(self, digest: str, name: str) -> bytes | None: ...
    def delete_derived(self, digest: str) -> None: ...


def make_store(settings: Settings, *, probe: bool = True) -> ArtifactStore:
    """The store the settings name; an S3 bucket is checked first: reachable, its versioning read, and (`probe`)
    on a versioned one that a purge may delete every version."""
    if settings.artifact_url:
        from service.storage.s3 import S3ArtifactStore  # boto3 is loaded only when S3 is configured

        return S3ArtifactStore.from_settings(settings, probe=probe)
    return LocalArtifactStore(settings.artifact_dir)


__all__ = ["ArtifactDamaged", "ArtifactStore", "LocalArtifactStore", "StoreRefused", "StoreUnavailable", "make_store"]
