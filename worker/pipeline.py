"""claim → load → unlearn → publish, for one job. Publishes nothing unless every step succeeded."""

import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass

import torch
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.db.enums import FailureReason
from service.db.models import Model
from service.db.session import make_engine, make_sessionmaker
from service.domain.jobs import (
    Claim,
    cancel_job,
    claim_job,
    complete_job,
    fail_job,
    get_job,
    has_live_requests,
    heartbeat,
    owns_running_job,
)
from service.domain.versions import publish
from service.storage import ArtifactStore, make_store
from worker.inputs import JobInputs, gather_inputs
from worker.unlearn import EncoderL2Config, StepInfo, checkpoint_from_bytes, checkpoint_to_bytes, run_unlearning
from worker.unlearn.data import SampleIntegrityError, SampleLoadError, load_images

log = logging.getLogger("oblivio.pipeline")
HEARTBEAT_SECONDS = 1.0


class Stop(Exception):
    """The job must stop: its lease was lost or all its requests were cancelled."""


@dataclass
class WorkerContext:
    settings: Settings
    sessions: sessionmaker[Session]
    store: ArtifactStore
    owner: str

    @classmethod
    def from_settings(cls, settings: Settings) -> "WorkerContext":
        owner = f"{socket.gethostname()}:{os.getpid()}"
        return cls(settings, make_sessionmaker(make_engine(settings)), make_store(settings), owner)


def run_job(ctx: WorkerContext, job_id: uuid.UUID) -> str:
    with ctx.sessions.begin() as session:
        claim = claim_job(session, job_id=job_id, owner=ctx.owner, lease_seconds=ctx.settings.lease_seconds)
    if claim is not Claim.claimed:
        log.info("job %s not run: %s", job_id, claim.value)
        return claim
    try:
        return _run_claimed(ctx, job_id)
    except Stop as stop:
        log.info("job %s stopped: %s", job_id, stop)
        return _settle_stopped(ctx, job_id)
    except (SampleIntegrityError, SampleLoadError) as exc:
        _fail(ctx, job_id, FailureReason.invalid_samples, str(exc))
    except Exception as exc:
        log.exception("job %s failed", job_id)
        _fail(ctx, job_id, FailureReason.job_error, f"{type(exc).__name__}: {exc}")
    return "failed"


def _run_claimed(ctx: WorkerContext, job_id: uuid.UUID) -> str:
    with ctx.sessions.begin() as session:
        inputs = gather_inputs(session, job=get_job(session, job_id=job_id), retain_max=ctx.settings.retain_max_images)
    base, _header = checkpoint_from_bytes(ctx.store.get(inputs.base_digest))
    base = base.to(_device(ctx.settings.worker_device))
    shape = base.image_shape
    forget = load_images(inputs.forget, image_shape=shape)
    retain = load_images(inputs.retain, image_shape=shape)
    config = EncoderL2Config.from_dict(inputs.config)
    result = run_unlearning(base, forget, retain, config, on_step=_progress_reporter(ctx, job_id))
    data = checkpoint_to_bytes(result.adapter.to("cpu"), _header_for(inputs, result.config.to_dict()))
    digest = ctx.store.put(data)
    metrics = {
        "steps": result.steps,
        "seconds": round(result.seconds, 3),
        "final_losses": result.history[-1].losses if result.history else {},
        "read": {"forget": len(inputs.forget), "retain": len(inputs.retain), "retain_source": inputs.retain_source},
    }
    return _publish(ctx, inputs, digest=digest, size=len(data), metrics=metrics)


def _publish(ctx: WorkerContext, inputs: JobInputs, *, digest: str, size: int, metrics: dict) -> str:
    with ctx.sessions.begin() as session:
        job = owns_running_job(session, job_id=inputs.job_id, owner=ctx.owner)
        if job is None:
            raise Stop("lease lost before publication")
        model = session.get(Model, job.model_id, with_for_update=True)
        if model.current_version != inputs.base_version:
            raise RuntimeError(f"current moved from v{inputs.base_version} to v{model.current_version} during the job")
        if not has_live_requests(session, job_id=job.id):
            raise Stop("every request was cancelled before publication")
        version = publish(
            session, model=model, parent_version=inputs.base_version, job_id=job.id, digest=digest, size=size,
            request_ids=inputs.request_ids, metrics=metrics,
        )
        complete_job(session, job=job, version=version, sample_ids=inputs.forget_sample_ids)
    log.info("job %s published version %s", inputs.job_id, version.version)
    return "published"


def _progress_reporter(ctx: WorkerContext, job_id: uuid.UUID):
    last = [0.0]

    def on_step(info: StepInfo) -> None:
        now = time.monotonic()
        if now - last[0] < HEARTBEAT_SECONDS and info.step != info.total and info.step != 1:
            return
        last[0] = now
        with ctx.sessions.begin() as session:
            alive = heartbeat(session, job_id=job_id, owner=ctx.owner, lease_seconds=ctx.settings.lease_seconds,
                              step=info.step, total=info.total, losses=info.losses)
        if not alive:
            raise Stop("lease lost or every request cancelled")

    return on_step


def _settle_stopped(ctx: WorkerContext, job_id: uuid.UUID) -> str:
    with ctx.sessions.begin() as session:
        job = owns_running_job(session, job_id=job_id, owner=ctx.owner)
        if job is None:
            return "lease_lost"
        cancel_job(session, job=job)
    return "cancelled"


def _fail(ctx: WorkerContext, job_id: uuid.UUID, reason: FailureReason, detail: str) -> None:
    with ctx.sessions.begin() as session:
        if owns_running_job(session, job_id=job_id, owner=ctx.owner) is not None:
            fail_job(session, job_id=job_id, reason=reason, detail=detail)


def _header_for(inputs: JobInputs, config: dict) -> dict:
    return {
        "parent_digest": inputs.base_digest,
        "parent_version": inputs.base_version,
        "job_id": str(inputs.job_id),
        "request_ids": inputs.request_ids,
        "method": "encoder_l2",
        "mode": inputs.mode.value,
        "unlearn_config": config,
    }


def _device(setting: str) -> torch.device:
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(setting)
