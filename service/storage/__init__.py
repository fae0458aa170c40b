"""Artifact store: content-addressed blobs (checkpoints, reports)."""

from pathlib import Path
from typing import BinaryIO, Protocol

from service.config import Settings
from service.storage.local import LocalArtifactStore


class ArtifactStore(Protocol):
    def put(self, data: bytes) -> str: ...
    def put_stream(self, stream: BinaryIO) -> tuple[str, int]: ...
    def get(self, digest: str) -> bytes: ...
    def local_path(self, digest: str) -> Path: ...
    def exists(self, digest: str) -> bool: ...
    def delete(self, digest: str) -> None: ...


def make_store(settings: Settings) -> ArtifactStore:
    return LocalArtifactStore(settings.artifact_dir)


__all__ = ["ArtifactStore", "LocalArtifactStore", "make_store"]
