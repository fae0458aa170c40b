"""The closed vocabularies of the domain, stored as short strings (validated by the API and the ORM)."""

from enum import StrEnum


class DatasetKind(StrEnum):
    training = "training"
    proxy = "proxy"


class Role(StrEnum):
    officer = "officer"
    reviewer = "reviewer"
    auditor = "auditor"
    admin = "admin"


class RequestStatus(StrEnum):
    received = "received"
    pending_approval = "pending_approval"
    queued = "queued"
    running = "running"
    completed = "completed"
    failed = "failed"
    rejected = "rejected"
    cancelled = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_REQUEST_STATUSES


TERMINAL_REQUEST_STATUSES = frozenset(
    {RequestStatus.completed, RequestStatus.failed, RequestStatus.rejected, RequestStatus.cancelled}
)


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


class JobPhase(StrEnum):
    """What a running job is doing; only `unlearning` advances its steps."""

    loading = "loading"
    building_teacher_targets = "building teacher targets"
    unlearning = "unlearning"
    evaluating = "evaluating"
    publishing = "publishing"


class Mode(StrEnum):
    retain_free = "retain_free"
    with_retain = "with_retain"


class Method(StrEnum):
    """Unlearning methods (ALGORITHM.md §2–§4); the worker's registry has one entry per member."""

    encoder_l2 = "encoder_l2"
    max_loss = "max_loss"
    noisy_label = "noisy_label"
    retain_label = "retain_label"
    random_encoder = "random_encoder"
    gradient_surgery = "gradient_surgery"
    gan_cascade = "gan_cascade"


class VersionStatus(StrEnum):
    """A base checkpoint is `validating` until a worker loads it and runs it: then `published` or `rejected`."""

    validating = "validating"
    rejected = "rejected"
    published = "published"
    superseded = "superseded"
    purged = "purged"


class FailureReason(StrEnum):
    gate_failed = "gate_failed"
    invalid_samples = "invalid_samples"
    job_error = "job_error"


class DeliveryStatus(StrEnum):
    """A webhook delivery is `pending` until the receiver answers 2xx (`succeeded`) or its attempts run out (`failed`)."""

    pending = "pending"
    succeeded = "succeeded"
    failed = "failed"
