"""SQLAlchemy models of the domain (DESIGN.md §3). Postgres is the system of record."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON, BigInteger, Enum, Float, ForeignKey, Index, Integer, SmallInteger, String, Text, UniqueConstraint, text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from service.db.base import Base, UTCDateTime, utcnow
from service.db.enums import DatasetKind, DeliveryStatus, JobPhase, JobStatus, Method, Mode, RequestStatus, Role, VersionStatus


def _enum(cls: type, name: str) -> Enum:
    return Enum(cls, name=name, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e])


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[DatasetKind] = mapped_column(_enum(DatasetKind, "dataset_kind"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Sample(Base):
    __tablename__ = "samples"
    __table_args__ = (
        UniqueConstraint("dataset_id", "sample_key"),
        Index("ix_samples_dataset_class", "dataset_id", "class_label"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    sample_key: Mapped[str] = mapped_column(String(256))
    class_label: Mapped[str] = mapped_column(String(128))
    uri: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))


class Model(Base):
    __tablename__ = "models"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    family: Mapped[str] = mapped_column(String(64))
    adapter_config: Mapped[dict[str, Any]] = mapped_column(JSON)
    training_dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    proxy_dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id"), default=None)
    unlearn_defaults: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    gate_thresholds: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    feature_net_digest: Mapped[str | None] = mapped_column(String(64), default=None)
    current_version: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    training_dataset: Mapped[Dataset] = relationship(foreign_keys=[training_dataset_id], lazy="raise")
    proxy_dataset: Mapped[Dataset | None] = relationship(foreign_keys=[proxy_dataset_id], lazy="raise")


class ModelVersion(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version"), UniqueConstraint("created_by_job_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    parent_version: Mapped[int | None] = mapped_column(Integer, default=None)
    checkpoint_digest: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_by_job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id"), default=None)
    absorbed_request_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[VersionStatus] = mapped_column(_enum(VersionStatus, "version_status"), default=VersionStatus.published)
    problems: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")  # why a worker rejected it
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_model_status", "model_id", "status"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    status: Mapped[JobStatus] = mapped_column(_enum(JobStatus, "job_status"), default=JobStatus.queued)
    mode: Mapped[Mode] = mapped_column(_enum(Mode, "job_mode"))
    method: Mapped[Method] = mapped_column(_enum(Method, "job_method"))
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    base_version: Mapped[int | None] = mapped_column(Integer, default=None)
    result_version: Mapped[int | None] = mapped_column(Integer, default=None)
    progress_step: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int] = mapped_column(Integer, default=0)
    progress_phase: Mapped[JobPhase | None] = mapped_column(_enum(JobPhase, "job_phase"), default=None)
    progress_rate: Mapped[float | None] = mapped_column(Float, default=None)  # unlearning steps per second so far
    losses: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)
    loss_history: Mapped[list[dict[str, float]]] = mapped_column(JSON, default=list)
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    lease_owner: Mapped[str | None] = mapped_column(String(256), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    model: Mapped[Model] = relationship(lazy="raise")
    requests: Mapped[list["UnlearnRequest"]] = relationship(back_populates="job", lazy="raise")


class UnlearnRequest(Base):
    __tablename__ = "unlearn_requests"
    __table_args__ = (
        UniqueConstraint("api_key_id", "external_id"),
        UniqueConstraint("api_key_id", "idempotency_key"),
        Index("ix_unlearn_requests_received", "received_at", "id"),
        Index("ix_unlearn_requests_status_due", "status", "due_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"))
    external_id: Mapped[str | None] = mapped_column(String(256), default=None)
    idempotency_key: Mapped[str | None] = mapped_column(String(256), default=None)
    body_digest: Mapped[str] = mapped_column(String(64))
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    mode: Mapped[Mode] = mapped_column(_enum(Mode, "request_mode"))
    method: Mapped[Method] = mapped_column(_enum(Method, "request_method"))
    classes: Mapped[list[str]] = mapped_column(JSON, default=list)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[RequestStatus] = mapped_column(_enum(RequestStatus, "request_status"))
    reason: Mapped[str | None] = mapped_column(String(64), default=None)
    reason_detail: Mapped[str | None] = mapped_column(Text, default=None)
    job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id"), default=None)
    reviewed_by: Mapped[str | None] = mapped_column(String(256), default=None)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    result_version: Mapped[int | None] = mapped_column(Integer, default=None)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The one extension Art. 12(3) allows (service.domain.deadlines): the due date before it, when, who, why.
    original_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    extended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    extended_by: Mapped[str | None] = mapped_column(String(256), default=None)
    extension_reason: Mapped[str | None] = mapped_column(Text, default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    model: Mapped[Model] = relationship(lazy="raise")
    job: Mapped[Job | None] = relationship(back_populates="requests", lazy="raise")
    samples: Mapped[list["RequestSample"]] = relationship(lazy="raise", order_by="RequestSample.position")


class RequestSample(Base):
    """A sample named explicitly by a request; class requests resolve their samples when the job runs."""

    __tablename__ = "request_samples"
    __table_args__ = (UniqueConstraint("request_id", "sample_id"),)

    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("unlearn_requests.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    sample_id: Mapped[int] = mapped_column(ForeignKey("samples.id"))
    sample: Mapped[Sample] = relationship(lazy="raise")


class Erasure(Base):
    """A sample forgotten by one model's lineage: the version that absorbed it and the request that asked.

    Erasure belongs to a model, not to the dataset: another model trained on the same samples can
    still be asked to forget them. `request_id` is null only for marks migrated from before 0004
    whose request could not be traced.
    """

    __tablename__ = "erasures"

    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), primary_key=True)
    sample_id: Mapped[int] = mapped_column(ForeignKey("samples.id", ondelete="CASCADE"), primary_key=True)
    request_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("unlearn_requests.id", ondelete="SET NULL"), default=None
    )
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OutboxMessage(Base):
    """A task to send to the broker, committed with the rows it refers to; at most one unsent row per job."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("uq_outbox_unsent_job", "job_id", unique=True,
              postgresql_where=text("sent_at IS NULL AND job_id IS NOT NULL"),
              sqlite_where=text("sent_at IS NULL AND job_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    task_name: Mapped[str] = mapped_column(String(128))
    job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), default=None)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    role: Mapped[Role] = mapped_column(_enum(Role, "api_key_role"))
    prefix: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class AuditEvent(Base):
    """Append-only. A request's transaction inserts its events unsealed (leaf_index NULL, no lock);
    the sealer (service.audit.sealer) gives each a leaf index of the Merkle tree, once. Events from
    before the tree kept their hash chain (prev_hash, hash) and are the tree's first leaves."""

    __tablename__ = "audit_events"
    __table_args__ = (  # the sealer's queue: only unsealed rows, so a pass never scans the sealed log
        Index("ix_audit_events_unsealed", "id", postgresql_where=text("leaf_index IS NULL"),
              sqlite_where=text("leaf_index IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    leaf_index: Mapped[int | None] = mapped_column(BigInteger, unique=True, default=None)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(256))
    action: Mapped[str] = mapped_column(String(64), index=True)
    subject: Mapped[str] = mapped_column(String(256), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    hash: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)


class AuditTreeNode(Base):
    """The Merkle tree's perfect subtrees: level 0 are the leaf hashes; (level, idx) covers leaves
    [idx * 2^level, (idx + 1) * 2^level). Every proof is read from here in one query."""

    __tablename__ = "audit_tree_nodes"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(64))


class AuditCheckpoint(Base):
    """A signed checkpoint (C2SP signed note) of the tree at one size."""

    __tablename__ = "audit_checkpoints"

    size: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False)
    root_hash: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditReport(Base):
    """The signed report of one job: canonical JSON body, its digest and Ed25519 signature."""

    __tablename__ = "audit_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), unique=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    digest: Mapped[str] = mapped_column(String(64))
    signature: Mapped[dict[str, str]] = mapped_column(JSON)
    attestations: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # DSSE envelopes (in-toto)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CheckpointDownload(Base):
    """Who downloaded which version: the holders told to delete their copy when it is superseded (GDPR Art. 19)."""

    __tablename__ = "checkpoint_downloads"
    __table_args__ = (Index("ix_checkpoint_downloads_version", "model_version_id", "api_key_id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"))
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"))
    downloaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Webhook(Base):
    """An endpoint an API key registered for some event types; the secret signs every delivery (Standard Webhooks)."""

    __tablename__ = "webhooks"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"), index=True)
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(JSON)
    description: Mapped[str] = mapped_column(Text, default="")
    secret: Mapped[str] = mapped_column(String(128))  # needed in clear to sign; shown to its owner once
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class WebhookDelivery(Base):
    """One event for one webhook: the body is fixed when the event happens; every attempt sends the same bytes."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_webhook", "webhook_id", "created_at"),
        Index("ix_webhook_deliveries_status_next", "status", "next_attempt_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    webhook_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[DeliveryStatus] = mapped_column(_enum(DeliveryStatus, "delivery_status"), default=DeliveryStatus.pending)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # in the current round (a replay starts a new one)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    attempt_log: Mapped[list["WebhookAttempt"]] = relationship(lazy="raise", order_by="WebhookAttempt.number")


class WebhookAttempt(Base):
    """One HTTP attempt of a delivery: the receiver's status (none when it could not be reached) and the time taken."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (UniqueConstraint("delivery_id", "number"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    delivery_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    duration_ms: Mapped[float] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text, default=None)
