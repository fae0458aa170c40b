"""ORM rows to response models."""

from service.db.models import Job, Model, ModelVersion, UnlearnRequest
from service.domain.unlearn_config import effective_config, model_settings, planned_steps
from service.schemas.registry import ModelStatus, ModelView, VersionView
from service.schemas.requests import ExtensionView, JobSummary, Progress, RequestView


def job_summary(job: Job) -> JobSummary:
    return JobSummary(
        id=job.id,
        status=job.status,
        base_version=job.base_version,
        result_version=job.result_version,
        attempts=job.attempts,
        planned_steps=planned_steps(config=job.config),
        progress=Progress(phase=job.progress_phase, step=job.progress_step, total=job.progress_total,
                          steps_per_second=job.progress_rate, losses=job.losses or {}),
    )


def request_view(
    request: UnlearnRequest, *, model: Model | None = None, sample_keys: list[str] | None = None, job: Job | None = None
) -> RequestView:
    """A stored request (relationships loaded), or one just inserted and not read back: then its
    `model`, `sample_keys` and `job` (None: pending approval) are given beside the row."""
    fresh = model is not None
    model = model if fresh else request.model
    job = job if fresh else request.job
    links = {"self": f"/unlearn-requests/{request.id}"}
    if request.job_id:
        links["job"] = f"/jobs/{request.job_id}"
    if request.result_version:
        links["checkpoint"] = f"/models/{model.name}/versions/{request.result_version}/checkpoint"
    effective = job.config if job else effective_config(model=model, method=request.method, overrides=request.config)
    return RequestView(
        id=request.id,
        external_id=request.external_id,
        model=model.name,
        status=request.status,
        reason=request.reason,
        reason_detail=request.reason_detail,
        mode=request.mode,
        method=request.method,
        samples=sample_keys if fresh else [rs.sample.sample_key for rs in request.samples],
        classes=request.classes,
        config=request.config,
        effective_config=effective,
        planned_steps=planned_steps(config=effective),
        received_at=request.received_at,
        updated_at=request.updated_at,
        due_at=request.due_at,
        finished_at=request.finished_at,
        result_version=request.result_version,
        job=job_summary(job) if job else None,
        links=links,
        extension=extension_view(request),
    )


def extension_view(request: UnlearnRequest) -> ExtensionView | None:
    if request.extended_at is None:
        return None
    return ExtensionView(original_due_at=request.original_due_at, extended_at=request.extended_at,
                         extended_by=request.extended_by, reason=request.extension_reason)


def model_view(model: Model, *, status: ModelStatus) -> ModelView:
    return ModelView(
        name=model.name,
        family=model.family,
        adapter_config=model.adapter_config,
        training_dataset=model.training_dataset.name,
        proxy_dataset=model.proxy_dataset.name if model.proxy_dataset else None,
        unlearn_defaults=model_settings(model=model),
        gate_thresholds=model.gate_thresholds,
        current_version=model.current_version,
        status=status,
        created_at=model.created_at,
    )


def version_view(version: ModelVersion, *, current: int | None) -> VersionView:
    return VersionView(
        version=version.version,
        parent_version=version.parent_version,
        status=version.status,
        checkpoint_digest=version.checkpoint_digest,
        size_bytes=version.size_bytes,
        created_by_job=str(version.created_by_job_id) if version.created_by_job_id else None,
        absorbed_request_ids=version.absorbed_request_ids,
        metrics=version.metrics,
        problems=version.problems,
        created_at=version.created_at,
        is_current=version.version == current,
    )
