"""Jobs: one unlearning run over one or more requests."""

import uuid
from typing import Any

from fastapi import APIRouter
from pydantic import Field

from service.api.deps import Reader, SessionDep
from service.api.responses import errors
from service.api.routing import GuardedRoute
from service.api.views import job_summary
from service.domain.jobs import get_job
from service.domain.reports import attestation_for_job
from service.schemas.requests import JobSummary

router = APIRouter(prefix="/jobs", tags=["jobs"], responses=errors(), route_class=GuardedRoute)


class JobView(JobSummary):
    model: str
    mode: str
    method: str
    config: dict[str, Any] = Field(description="The effective configuration the job runs with (see `planned_steps`).")
    request_ids: list[uuid.UUID]
    loss_history: list[dict[str, float]]
    error: str | None


@router.get("/{job_id}", response_model=JobView)
def show(job_id: uuid.UUID, _: Reader, session: SessionDep) -> JobView:
    job = get_job(session, job_id=job_id)
    return JobView(
        **job_summary(job).model_dump(),
        model=job.model.name,
        mode=job.mode.value,
        method=job.method.value,
        config=job.config,
        request_ids=[r.id for r in job.requests],
        loss_history=job.loss_history,
        error=job.error,
    )


@router.get("/{job_id}/attestations", response_model=list[dict[str, Any]])
def attestations(job_id: uuid.UUID, _: Reader, session: SessionDep) -> list[dict[str, Any]]:
    """The job report as in-toto Statements (SLSA Provenance v1, Oblivio verdict), each in a DSSE envelope."""
    get_job(session, job_id=job_id)
    return attestation_for_job(session, job_id=job_id)
