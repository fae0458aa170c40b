"""claim → load → unlearn → evaluate → gate → publish → report, for one job.

Nothing is published unless every step succeeded and the gate passed. Publication, the request
state changes and the signed report commit in one transaction.
"""

import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass

import torch
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from service.audit.signing import Signer
from service.config import Settings
from service.db.enums import FailureReason
from service.db.models import Model
from service.db.session import make_engine, make_sessionmaker
from service.domain.hygiene import delete_forget_files, purge_superseded
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
from service.domain.reports import store_report
from service.domain.versions import publish
from service.storage import ArtifactStore, make_store
from worker.evaluation import check_gate, evaluate_sets
from worker.figures import retain_grid
from worker.inputs import JobInputs, ReadLog, gather_inputs
from worker.lease import LeaseKeeper
from worker.report import build_report, data_read_section, requests_section
from worker.teacher_targets import job_targets, warm_next
from worker.unlearn import StepInfo, checkpoint_from_bytes, checkpoint_to_bytes, run_unlearning
from worker.unlearn.data import SampleIntegrityError, SampleLoadError
from worker.unlearn.features import load_feature_net
from worker.unlearn.methods import params_to_dict, parse_method_config, run_method
from worker.unlearn.runtime import configure_cpu_threads

log = logging.getLogger("oblivio.pipeline")
HEARTBEAT_SECONDS = 1.0


class Stop(Exception):
    """The job must stop: its lease was lost or all its requests were cancelled."""


@dataclass
class WorkerContext:
    settings: Settings
    sessions: sessionmaker[Session]
    store: ArtifactStore
    signer: Signer
    owner: str

    @classmethod
    def from_settings(cls, settings: Settings) -> "WorkerContext":
        owner = f"{socket.gethostname()}:{os.getpid()}"
        configure_cpu_threads()
        signer = Signer.from_file(settings.signing_key_file, create=True)
        return cls(settings, make_sessionmaker(make_engine(settings)), make_store(settings), signer, owner)

    @property
    def actor(self) -> str:
        return f"worker:{self.owner}"


def run_job(ctx: WorkerContext, job_id: uuid.UUID) -> str:
    with ctx.sessions.begin() as session:
        claim = claim_job(session, job_id=job_id, owner=ctx.owner, lease_seconds=ctx.settings.lease_seconds)
    if claim is not Claim.claimed:
        log.info("job %s not run: %s", job_id, claim.value)
        return claim
    with LeaseKeeper(ctx.sessions, job_id=job_id, owner=ctx.owner, lease_seconds=ctx.settings.lease_seconds) as lease:
        return _run_claimed(ctx, job_id, lease)


def _run_claimed(ctx: WorkerContext, job_id: uuid.UUID, lease: LeaseKeeper) -> str:
    inputs = None
    try:
        with ctx.sessions.begin() as session:
            job = get_job(session, job_id=job_id)
            inputs = gather_inputs(session, job=job, retain_max=ctx.settings.retain_max_images,
                                   eval_max=ctx.settings.eval_max_images)
        return _run(ctx, inputs, lease)
    except Stop as stop:
        log.info("job %s stopped: %s", job_id, stop)
        return _settle_stopped(ctx, job_id)
    except OperationalError:
        raise  # the database is unreachable: nothing can be recorded; the task retries and re-claims
    except (SampleIntegrityError, SampleLoadError) as exc:
        _fail(ctx, job_id, inputs, FailureReason.invalid_samples, str(exc))
    except Exception as exc:
        log.exception("job %s failed", job_id)
        _fail(ctx, job_id, inputs, FailureReason.job_error, f"{type(exc).__name__}: {exc}")
    return "failed"


def _run(ctx: WorkerContext, inputs: JobInputs, lease: LeaseKeeper) -> str:
    started = time.perf_counter()
    device = _device(ctx.settings.worker_device)
    base, _header = checkpoint_from_bytes(ctx.store.get(inputs.base_digest))
    base = base.to(device)
    features = load_feature_net(ctx.store.get(inputs.feature_net_digest)).to(device) if inputs.feature_net_digest else None
    reads, shape = ReadLog(), base.image_shape
    forget, retain = reads.load(inputs.forget, shape), reads.load(inputs.retain, shape)
    holdout = reads.load(inputs.holdout, shape)
    reference = reads.load(inputs.reference, shape) if inputs.reference else None
    loaded = time.perf_counter()

    config, params = parse_method_config(inputs.method, inputs.config)
    on_step = _progress_reporter(ctx, inputs.job_id, lease)
    targets = job_targets(ctx.store, inputs, base, reads) if inputs.method == "encoder_l2" else None
    if targets is not None:  # encoder-L2 on the version's cached teacher targets
        result = run_unlearning(base, forget, retain, config, on_step, targets=targets, retain_is_proxy=True)
    else:
        result = run_method(inputs.method, base, forget, retain, config, on_step, params=params)
    unlearned = time.perf_counter()

    candidate = result.adapter
    sets = {"forget": _subset(forget, ctx.settings.eval_max_images, config.seed), "retain": holdout, "reference": reference}
    metrics = evaluate_sets(base, candidate, sets, features, seed=config.seed)
    gate = check_gate(metrics, inputs.gate_overrides)
    keys = [r.sample_key for r in inputs.holdout.records]
    figures = [retain_grid(base, candidate, holdout, keys)] if len(holdout) else []
    evaluated = time.perf_counter()
    timings = {"load_s": loaded - started, "unlearn_s": unlearned - loaded, "evaluate_s": evaluated - unlearned}
    history = [{"step": h.step, **h.losses} for h in result.history]
    used = {**result.config.to_dict(), "params": params_to_dict(params)}
    report_args = dict(inputs=inputs, data_read=data_read_section(inputs, reads), config=used,
                       metrics=metrics, gate=gate.to_dict(), history=history, figures=figures, device=str(device))
    if not gate.passed:
        failed = ", ".join(f"{c['name']} (value {c['value']}, threshold {c['threshold']})" for c in gate.failures)
        _fail(ctx, inputs.job_id, inputs, FailureReason.gate_failed, f"gate failed: {failed}",
              report=dict(report_args, outcome="gate_failed", new_checkpoint=None,
                          timings={**timings, "total_s": time.perf_counter() - started}))
        return "gate_failed"

    data = checkpoint_to_bytes(candidate.to("cpu"), _header_for(inputs, used))
    digest = ctx.store.put(data)
    timings["total_s"] = time.perf_counter() - started
    summary = {"steps": result.steps, "seconds": round(result.seconds, 3), "gate_passed": True,
               "final_losses": result.history[-1].losses if result.history else {}}
    outcome = _publish(ctx, inputs, digest=digest, size=len(data), summary=summary,
                       report=dict(report_args, outcome="published", timings=timings))
    warm_next(ctx.store, inputs, candidate.to(device), digest)
    return outcome


def _publish(ctx: WorkerContext, inputs: JobInputs, *, digest: str, size: int, summary: dict, report: dict) -> str:
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
            request_ids=inputs.request_ids, metrics=summary, actor=ctx.actor,
        )
        complete_job(session, job=job, version=version, sample_ids=inputs.forget_sample_ids, actor=ctx.actor)
        body = build_report(**report, requests=requests_section(session, inputs),
                            new_checkpoint={"version": version.version, "digest": digest})
        store_report(session, job_id=job.id, body=body, signer=ctx.signer, actor=ctx.actor)
    log.info("job %s published version %s", inputs.job_id, version.version)
    _after_publication(ctx, inputs)
    return "published"


def _after_publication(ctx: WorkerContext, inputs: JobInputs) -> None:
    with ctx.sessions.begin() as session:
        purge_superseded(session, store=ctx.store, grace_seconds=ctx.settings.purge_grace_seconds, actor=ctx.actor)
        if ctx.settings.delete_forget_files:
            delete_forget_files(session, sample_ids=inputs.forget_sample_ids, roots=ctx.settings.data_roots,
                                actor=ctx.actor, job_id=str(inputs.job_id))


def _progress_reporter(ctx: WorkerContext, job_id: uuid.UUID, lease: LeaseKeeper):
    last = [0.0]

    def on_step(info: StepInfo) -> None:
        if lease.lost.is_set():
            raise Stop("lease lost")
        now = time.monotonic()
        if now - last[0] < HEARTBEAT_SECONDS and info.step not in (1, info.total):
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
        cancel_job(session, job=job, actor=ctx.actor)
    return "cancelled"


def _fail(ctx: WorkerContext, job_id: uuid.UUID, inputs: JobInputs | None, reason: FailureReason, detail: str,
          report: dict | None = None) -> None:
    with ctx.sessions.begin() as session:
        if owns_running_job(session, job_id=job_id, owner=ctx.owner) is None:
            return
        fail_job(session, job_id=job_id, reason=reason, detail=detail, actor=ctx.actor)
        if inputs is not None:
            args = report or dict(inputs=inputs, outcome=reason.value, data_read=None, config=inputs.config,
                                  new_checkpoint=None)
            body = build_report(**args, requests=requests_section(session, inputs), error=detail)
            store_report(session, job_id=job_id, body=body, signer=ctx.signer, actor=ctx.actor)


def _header_for(inputs: JobInputs, config: dict) -> dict:
    return {
        "parent_digest": inputs.base_digest,
        "parent_version": inputs.base_version,
        "job_id": str(inputs.job_id),
        "request_ids": inputs.request_ids,
        "method": inputs.method,
        "mode": inputs.mode.value,
        "unlearn_config": config,
    }


def _subset(images: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    if len(images) <= n:
        return images
    return images[torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:n]]


def _device(setting: str) -> torch.device:
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(setting)
