"""Typed settings, read from `OBLIVIO_*` environment variables.

With nothing set, everything lives under `home` (default `./.oblivio`): a SQLite database, a
filesystem Celery broker and a local artifact folder. Setting `OBLIVIO_DATABASE_URL` and
`OBLIVIO_BROKER_URL` moves the same code to Postgres and Redis.
"""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OBLIVIO_", env_file=".env", extra="ignore")

    home: Path = Field(Path(".oblivio"), description="Folder for embedded-mode state: database, broker, artifacts.")
    database_url: str = Field("", description="SQLAlchemy URL; empty means SQLite at HOME/oblivio.db.")
    broker_url: str = Field("", description="Celery broker URL; empty means the filesystem broker under HOME/broker.")
    artifact_dir: Path | None = Field(
        None, description="Local artifact store root; empty means HOME/artifacts. With an S3 store: scratch space only."
    )
    artifact_url: str = Field(
        "", description="s3://bucket/prefix puts artifacts in an S3-compatible bucket (AWS, MinIO, Ceph) that API and "
        "workers on several hosts share; empty means the local folder ARTIFACT_DIR. Credentials: the standard AWS_* "
        "variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ...) or an instance role.",
        pattern=r"^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^?#\\]*)?)?$",
    )
    artifact_probed_url: str = Field(
        "", description="Set by `oblivio serve` for its API processes: the ARTIFACT_URL whose start-up probe (may a purge "
        "delete every version?) passed there, so each API process only reads the bucket's versioning. Set by hand, "
        "missing grants of the API's credentials show at its first purge instead of at start-up (workers always probe).",
    )
    s3_endpoint_url: str = Field("", description="Endpoint of an S3-compatible service (MinIO, Ceph); empty means AWS.")
    s3_region: str = Field("", description="Region of the bucket; empty means AWS_DEFAULT_REGION or us-east-1.")
    s3_addressing_style: Literal["auto", "path", "virtual"] = Field(
        "auto", description="Bucket addressing: 'path' for most MinIO/Ceph set-ups, 'auto' for AWS."
    )
    data_roots: list[Path] = Field(
        default_factory=list,
        description="Folders sample files may live in; sample URIs outside them are refused. Empty means HOME/data.",
    )
    due_days: int | None = Field(
        None, ge=1, description="Days between receipt and the default due date of a request; empty means one calendar "
        "month (GDPR Art. 12(3)), which is also the latest a caller's `due_at` may be.",
    )
    web_session_seconds: int = Field(
        8 * 3600, ge=60, description="How long a dashboard sign-in lasts (the session cookie's lifetime)."
    )
    max_samples_per_request: int = Field(10_000, ge=1, description="Upper bound on sample keys in one request.")
    api_db_concurrency: int = Field(
        16, ge=1, le=30,
        description="Most HTTP requests holding a database transaction at once; the rest wait without holding "
        "a thread (keep it below the thread pool's 40 and the connection pool's 30).",
    )
    key_cache_seconds: float = Field(
        2.0, ge=0, le=60, description="How long a verified API key, and the set of live webhooks, are cached in each "
        "API process (0 = no cache); a key revoked, or a webhook created or deleted, through another process takes "
        "effect there at the latest this long after.",
    )
    api_workers: int = Field(
        0, ge=0, le=64, description="API processes `oblivio serve` runs; 0 means one per CPU on Postgres, 1 on SQLite.",
    )
    admission_max_in_flight: int = Field(
        24, ge=1, description="Most HTTP requests one API process works on at once; the next ones wait in its queue.",
    )
    admission_max_queue: int = Field(
        64, ge=0, description="Most HTTP requests waiting for admission in one API process; beyond that, or when "
        "the wait would outlast `admission_wait_seconds` at the recent pace, the answer is 503 with Retry-After at once.",
    )
    admission_wait_seconds: float = Field(
        4.0, gt=0, description="Longest a request waits in the admission queue before it is answered 503.",
    )
    max_body_bytes: int = Field(
        16 * 1024 * 1024, ge=1, description="Largest request body accepted (checkpoint uploads excepted); larger is a 413."
    )
    max_upload_bytes: int = Field(
        4 * 1024**3, ge=1, description="Largest POST /models upload (checkpoint, features and spec together)."
    )
    lease_seconds: int = Field(
        15, ge=5, description="How long a worker holds a job without renewing it; a killed worker's job runs again soon after."
    )
    lease_renew_seconds: float = Field(
        2.0, gt=0, description="How often a running job's lease is renewed (at most a third of the lease is used)."
    )
    register_wait_seconds: float = Field(
        25.0, ge=0, description="How long POST /models waits for a worker's verdict on the checkpoint before answering "
        "202 (still validating); below the CLI's 30 s HTTP timeout.",
    )
    batch_window_seconds: float = Field(
        5.0, ge=0, description="Requests for one model queued within this window share one job (0 = no coalescing)."
    )
    batch_max_requests: int = Field(100, ge=1, description="Most requests coalesced into one job.")
    redispatch_seconds: float = Field(
        60.0, gt=0, description="A queued job not claimed this long after its last dispatch is sent again."
    )
    outbox_poll_seconds: float = Field(2.0, gt=0, description="How often the API re-sends undelivered outbox rows.")
    audit_seal_seconds: float = Field(
        1.0, gt=0, description="How often the API seals committed audit events into the transparency log and signs a checkpoint."
    )
    audit_seal_batch: int = Field(5000, ge=1, description="Most audit events one sealing pass numbers before it signs a checkpoint.")
    audit_log_origin: str = Field(
        "oblivio.local/audit-log", pattern=r"^[^\s+]+$",
        description="The transparency log's name: first line of every checkpoint and the name of its signature.",
    )
    worker_device: str = Field("auto", description="Torch device for unlearning jobs: auto, cpu, cuda, cuda:N.")
    retain_max_images: int = Field(10_000, ge=16, description="Most retain-side images one job reads.")
    require_approval: bool = Field(False, description="Requests wait in pending_approval until a reviewer approves them.")
    signing_key_file: Path | None = Field(
        None, description="Ed25519 private key (PEM) that signs reports; empty means HOME/signing-key.pem, created on first use."
    )
    model_signing_key_file: Path | None = Field(
        None,
        description="EC P-256 private key (PEM) that signs published checkpoints in the OpenSSF model-signing "
        "format; empty means HOME/model-signing-key.pem, created on first use.",
    )
    purge_grace_seconds: int = Field(
        7 * 24 * 3600, ge=0, description="How long a superseded checkpoint is kept before its file is purged."
    )
    delete_forget_files: bool = Field(False, description="Delete forget-set source files after a successful job.")
    eval_max_images: int = Field(256, ge=8, description="Images per evaluation set (forget, retain hold-out, reference).")
    log_level: str = Field("INFO", description="Log level of API and worker (logs are JSON lines on stderr).")
    webhook_allow_http: bool = Field(
        False, description="Webhook URLs may use plain http (otherwise https only)."
    )
    webhook_allow_private: bool = Field(
        False, description="Webhook URLs may resolve to loopback, private, link-local or reserved addresses "
        "(otherwise refused: a webhook must not reach into the service's own network).",
    )
    webhook_max_attempts: int = Field(8, ge=1, le=50, description="Attempts of one webhook delivery before it is failed.")
    webhook_backoff_seconds: float = Field(
        10.0, gt=0, description="Wait before a webhook delivery's first retry; it doubles with each further attempt."
    )
    webhook_backoff_max_seconds: float = Field(3600.0, gt=0, description="Longest wait between two webhook attempts.")
    webhook_timeout_seconds: float = Field(10.0, gt=0, description="Time a webhook receiver has to answer one attempt.")
    worker_metrics_port: int = Field(
        9808, ge=0, le=65535, description="Port of each worker process's Prometheus /metrics endpoint; 0 disables it."
    )

    @model_validator(mode="after")
    def _embedded_defaults(self) -> "Settings":
        self.home = self.home.resolve()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.home / 'oblivio.db'}"
        if not self.broker_url:
            self.broker_url = "filesystem://"
        if self.artifact_dir is None:
            self.artifact_dir = self.home / "artifacts"
        if self.signing_key_file is None:
            self.signing_key_file = self.home / "signing-key.pem"
        if self.model_signing_key_file is None:
            self.model_signing_key_file = self.home / "model-signing-key.pem"
        if not self.data_roots:
            self.data_roots = [self.home / "data"]
        self.data_roots = [p.resolve() for p in self.data_roots]
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def broker_folder(self) -> Path:
        return self.home / "broker"


@lru_cache
def get_settings() -> Settings:
    return Settings()
