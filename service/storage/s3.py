"""S3-compatible artifact store (AWS, MinIO, Ceph): the local store's layout as object keys in one bucket.

A blob is ``<prefix>sha256/<2>/<digest>``, what is derived from it lives under
``<prefix>sha256/<2>/<digest>.derived/<name>``. Uploads carry their SHA-256 (S3 refuses a body that
does not match it) and every read hashes the bytes again, so a replaced or damaged object is refused
(:class:`ArtifactDamaged`), never served or loaded. Nothing is cached on local disk: a purge on one
host leaves no copy on another.

Purge on a versioned bucket: deleting a key there only hides it behind a delete marker, the old
bytes stay readable by version id. So on a bucket whose versioning is (or was) on, deleting removes
every version and delete marker of the key, and the store refuses to start unless its credentials
may do that (checked by writing, then deleting by version id, a probe object). The probe runs once
per start of a host's process tree: `oblivio serve` probes before it starts its API processes and
tells them so (`artifact_probed_url`); they only read the bucket's versioning state.
"""

import base64
import functools
import hashlib
import logging
import os
import tempfile
import uuid
from pathlib import Path
from typing import Any, BinaryIO

from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.exceptions import HTTPClientError

from service.config import Settings
from service.storage.errors import StoreRefused, StoreUnavailable
from service.storage.local import CHUNK, check_digest, check_name, verify, verify_file

log = logging.getLogger("oblivio.storage")
_MISSING = {"404", "NoSuchKey", "NotFound"}
_DENIED = {"403", "AccessDenied", "AllAccessDisabled", "Forbidden"}
_PROBE = ".oblivio-probe/"


def parse_url(url: str) -> tuple[str, str]:
    """(bucket, key prefix ending in '/' or empty) of ``s3://bucket/prefix``."""
    if not url.startswith("s3://"):
        raise ValueError(f"artifact URL must be s3://bucket/prefix, got {url!r}")
    bucket, _, prefix = url[len("s3://"):].partition("/")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


def _reachable(method):
    """Connection failures and 5xx answers, once the client's retries are spent, become StoreUnavailable."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (BotoConnectionError, HTTPClientError) as exc:
            raise StoreUnavailable(f"artifact store s3://{self.bucket} unreachable: {exc}") from exc
        except Exception as exc:
            response = getattr(exc, "response", None)
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) if isinstance(response, dict) else 0
            if isinstance(status, int) and status >= 500:
                raise StoreUnavailable(f"artifact store s3://{self.bucket} unavailable: {exc}") from exc
            raise

    return wrapper


class S3ArtifactStore:
    def __init__(self, client: Any, bucket: str, prefix: str = "", *, scratch: Path | None = None, check: bool = True,
                 probe: bool = True):
        """`check`: read the bucket's versioning now; `probe`: and, if versioned, prove a purge may delete versions."""
        self.client, self.bucket, self.prefix = client, bucket, prefix
        self.scratch = scratch
        self.versioned = False
        if check:
            self.versioned = self._check_bucket(probe=probe)

    @classmethod
    def from_settings(cls, settings: Settings, *, probe: bool = True) -> "S3ArtifactStore":
        import boto3
        from botocore.config import Config

        bucket, prefix = parse_url(settings.artifact_url)
        config = Config(retries={"mode": "standard", "max_attempts": 5}, s3={"addressing_style": settings.s3_addressing_style},
                        request_checksum_calculation="when_required", response_checksum_validation="when_required")
        client = boto3.session.Session().client(
            "s3", endpoint_url=settings.s3_endpoint_url or None, region_name=settings.s3_region or None, config=config)
        return cls(client, bucket, prefix, scratch=settings.artifact_dir, probe=probe)

    # keys

    def key(self, digest: str) -> str:
        return f"{self.prefix}sha256/{digest[:2]}/{check_digest(digest)}"

    def derived_prefix(self, digest: str) -> str:
        return f"{self.key(digest)}.derived/"

    def location(self, digest: str) -> str:
        return f"s3://{self.bucket}/{self.key(digest)}"

    # blobs

    @_reachable
    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        if not self.exists(digest):
            self.client.put_object(Bucket=self.bucket, Key=self.key(digest), Body=data,
                                   ChecksumSHA256=base64.b64encode(bytes.fromhex(digest)).decode())
        return digest

    @_reachable
    def put_stream(self, stream: BinaryIO) -> tuple[str, int]:
        """Spool the stream to scratch space, hashing as it goes, then upload it under its digest."""
        hasher, size = hashlib.sha256(), 0
        with self._tempfile() as tmp:
            while chunk := stream.read(CHUNK):
                hasher.update(chunk)
                size += len(chunk)
                tmp.write(chunk)
            digest = hasher.hexdigest()
            if not self.exists(digest):
                tmp.seek(0)
                self.client.upload_fileobj(tmp, self.bucket, self.key(digest))  # multipart past 8 MiB
        return digest, size

    @_reachable
    def get(self, digest: str) -> bytes:
        """The blob's bytes, checked against its digest; FileNotFoundError when it is not stored."""
        body = self._get_object(self.key(digest))
        if body is None:
            raise FileNotFoundError(self.location(digest))
        return verify(body, digest, self.location(digest))

    @_reachable
    def open_verified(self, digest: str) -> BinaryIO:
        """The blob in an anonymous scratch file (gone when closed), checked against its digest before it is returned."""
        tmp = self._tempfile()
        try:
            self.client.download_fileobj(self.bucket, self.key(digest), tmp)
        except Exception as exc:
            tmp.close()
            if _code(exc) in _MISSING:
                raise FileNotFoundError(self.location(digest)) from None
            raise
        return verify_file(tmp, digest, self.location(digest))

    @_reachable
    def exists(self, digest: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.key(digest))
        except Exception as exc:
            if _code(exc) in _MISSING:
                return False
            raise
        return True

    @_reachable
    def delete(self, digest: str) -> None:
        """Delete the blob; on a versioned bucket every version and delete marker of it."""
        key = self.key(digest)
        self._delete_keys(lambda k: k == key, prefix=key)

    # derived artifacts

    @_reachable
    def put_derived(self, digest: str, name: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.derived_prefix(digest) + check_name(name), Body=data)

    @_reachable
    def get_derived(self, digest: str, name: str) -> bytes | None:
        return self._get_object(self.derived_prefix(digest) + check_name(name))

    @_reachable
    def delete_derived(self, digest: str) -> None:
        self._delete_keys(lambda _: True, prefix=self.derived_prefix(digest))

    # internals

    def _get_object(self, key: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except Exception as exc:
            if _code(exc) in _MISSING:
                return None
            raise

    def _delete_keys(self, wanted, *, prefix: str) -> None:
        """Delete the objects under ``prefix`` whose key ``wanted`` accepts: all their versions on a versioned bucket.

        One DeleteObject call per object version (a purge touches a handful): each is authorised on its own
        key, as s3:DeleteObjectVersion where it names a version, and fails loudly on its own.
        """
        for entry in [e for e in self._listing(prefix) if wanted(e["Key"])]:
            self.client.delete_object(Bucket=self.bucket, **entry)

    def _listing(self, prefix: str):
        if self.versioned:
            for page in self.client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=prefix):
                for entry in page.get("Versions", []) + page.get("DeleteMarkers", []):
                    yield {"Key": entry["Key"], "VersionId": entry["VersionId"]}
        else:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                for entry in page.get("Contents", []):
                    yield {"Key": entry["Key"]}

    def _tempfile(self):
        if self.scratch is not None:
            Path(self.scratch).mkdir(parents=True, exist_ok=True)
        return tempfile.TemporaryFile(dir=self.scratch)

    def _check_bucket(self, *, probe: bool) -> bool:
        """Whether the bucket is versioned; refuses a bucket it cannot reach, or (`probe`) a versioned one it cannot purge."""
        where = f"s3://{self.bucket}/{self.prefix}"
        try:
            status = self.client.get_bucket_versioning(Bucket=self.bucket).get("Status")
        except Exception as exc:
            if _code(exc) in _DENIED:
                raise StoreRefused(
                    f"artifact store {where}: may not read the bucket's versioning state (s3:GetBucketVersioning): "
                    "without it a purge cannot know whether old versions of a checkpoint stay readable; grant it"
                ) from None
            raise StoreRefused(f"artifact store {where} is not reachable or does not exist: {exc}") from None
        if status not in ("Enabled", "Suspended"):
            return False
        if probe:
            self._probe_purge(where, status)
        log.info("artifact store %s is versioned (%s): purges delete every version", where, status)
        return True

    def _probe_purge(self, where: str, status: str) -> None:
        """Write a probe object, then delete it by version id: what a purge on a versioned bucket needs."""
        probe = f"{self.prefix}{_PROBE}{os.getpid()}-{uuid.uuid4().hex}"
        try:
            version = self.client.put_object(Bucket=self.bucket, Key=probe, Body=b"purge permission probe")["VersionId"]
            self.client.list_object_versions(Bucket=self.bucket, Prefix=probe, MaxKeys=1)
            self.client.delete_object(Bucket=self.bucket, Key=probe, VersionId=version)
        except Exception as exc:
            raise StoreRefused(
                f"artifact store {where}: the bucket is versioned (versioning {status}), so purging a checkpoint must "
                "delete every version of it, and these credentials may not "
                f"({_code(exc) or type(exc).__name__} on the probe object {probe}): grant s3:ListBucketVersions and "
                "s3:DeleteObjectVersion on the bucket, or use a bucket without versioning"
            ) from None


def _code(exc: Exception) -> str:
    """The S3 error code of a botocore ClientError ('' for anything else)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return ""
    return str(response.get("Error", {}).get("Code", "")) or str(response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
