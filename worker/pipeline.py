"""claim → load → unlearn (probed, stopped when done) → evaluate → gate (→ retry once) → publish → report.

Nothing is published unless every step succeeded and the gate did not fail (worker/gate.py). Publication, the request
state changes and the signed report commit in one transaction.
"""

import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass

import torch
from celery import Celery
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from service.audit.checkpoint_signing import sign_checkpoint
from service.audit.model_keys import SIGNATURE_NAME
from service.audit.signing import Signer
from service.config import Settings
from service.db.enums import FailureReason, JobPhase
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
    keeps_history_point,
    owns_running_job,
)
from service.domain.reports import store_report
from service.domain.versions import publish
from service.queue import Dispatcher
from service.storage import ArtifactStore, StoreUnavailable, make_store
from worker.figures import retain_grid
from worker.inputs import JobInputs, ReadLog, gather_inputs
from worker.lease import LeaseKeeper
from worker.probe import split_sets
from worker.report import build_report, data_read_section, requests_section
from worker.report import verification_section
from worker.retry import Attempts, gate_failure_message
from worker.teacher_targets import job_targets, warm_next
from worker.unlearn import StepInfo, checkpoint_from_bytes, checkpoint_to_bytes
from worker.unlearn.adapters.sampler import is_sampler
from worker.unlearn.config import recommended_config
from worker.unlearn.data import SampleIntegrityError, SampleLoadError
from worker.unlearn.features import load_feature_net
from worker.unlearn.methods import params_to_dict, parse_method_config
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
    dispatcher: Dispatcher

    @classmethod
    def from_settings(cls, settings: Settings, *, producer: Celery, store: ArtifactStore | None = None) -> "WorkerContext":
        """`store`: one already checked at the process's start (`python -m worker`); else built and checked here."""
        owner = f"{socket.gethostname()}:{os.getpid()}"
        configure_cpu_threads()
        signer = Signer.from_file(settings.signing_key_file, create=True)
        sessions = make_sessionmaker(make_engine(settings))
        return cls(settings, sessions, store if store is not None else make_store(settings), signer, owner, Dispatcher(producer, sessions))

    @property
    def actor(self) -> str:
        return f"worker:{self.owner}"


def run_job(ctx: WorkerContext, job_id: uuid.UUID) -> str:
    with ctx.sessions.begin() as session:
        claim = claim_job(session, job_id=job_id, owner=ctx.owner, lease_seconds=ctx.settings.lease_seconds)
    if claim is not Claim.claimed:
        log.info("job %s not run: %s", job_id, claim.value)
        return claim
    with LeaseKeeper(ctx.sessions, job_id=job_id, owner=ctx.owner, lease_seconds=ctx.settings.lease_seconds,
                     renew_seconds=ctx.settings.lease_renew_seconds) as lease:
        outcome = _run_claimed(ctx, job_id, lease)
    _send_next(ctx)
    return outcome


def _send_next(ctx: WorkerContext) -> None:
    """Hand the model's next job (queued in the ending transaction) to the broker now, not at the API's next poll."""
    try:
        ctx.dispatcher.dispatch_pending()
    except SQLAlchemyError as exc:  # the API's dispatcher sends it later
        log.warning("outbox not sent from the worker: %s", exc)


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
    except (OperationalError, StoreUnavailable):
        raise  # the database or the artifact store is unreachable: the task retries and re-claims
    except (SampleIntegrityError, SampleLoadError) as exc:
        _fail(ctx, job_id, inputs, FailureReason.invalid_samples, str(exc))
    except Exception as exc:
        log.exception("job %s failed", job_id)  # the text stays in the log: it can hold paths and object reprs
        _fail(ctx, job_id, inputs, FailureReason.job_error, f"{type(exc).__name__} in the worker (see its log)")
    return "failed"


def _run(ctx: WorkerContext, inputs: JobInputs, lease: LeaseKeeper) -> str:
    started = time.perf_counter()
    device = _device(ctx.settings.worker_device)
    base, _header = checkpoint_from_bytes(ctx.store.get(inputs.base_digest))
    base = base.to(device)
    features = load_feature_net(ctx.store.get(inputs.feature_net_digest)).to(device) if inputs.feature_net_digest else None
    reads, shape = ReadLog(ctx.settings.data_roots), base.image_shape
    forget, retain = reads.load(inputs.forget, shape), reads.load(inputs.retain, shape)
    holdout = reads.load(inputs.holdout, shape)
    reference = reads.load(inputs.reference, shape) if inputs.reference else None
    loaded = time.perf_counter()

    config, params = parse_method_config(inputs.method, inputs.config, recommended_config(base.family, base.config.to_dict()))
    labels = [r.class_label for r in inputs.reference.records] if inputs.reference else []
    split = split_sets(forget, holdout, reference, labels, inputs.forget_classes,
                       eval_max=ctx.settings.eval_max_images, seed=config.seed,
                       forget_labels=[r.class_label for r in inputs.forget.records])
    progress = ProgressReporter(ctx, inputs.job_id, lease)
    targets = None
    if inputs.method == "encoder_l2":
        progress.phase(JobPhase.building_teacher_targets)
        targets = job_targets(ctx.store, inputs, base, reads)
    progress.phase(JobPhase.unlearning)
    run = Attempts(base, forget, retain, split, features, inputs=inputs, params=params, targets=targets,
                   on_step=progress, seed=config.seed)
    result, judgement, gate = run.until_done(config)
    unlearned = time.perf_counter()
    progress.phase(JobPhase.evaluating)

    candidate = result.adapter
    keys = [r.sample_key for r in inputs.holdout.records]
    # a sampler's samples could reproduce forget images (that is what membership tests): no figure
    figures = [retain_grid(base, candidate, holdout, keys)] if len(holdout) and not is_sampler(base) else []
    timings = {"load_s": loaded - started, "unlearn_s": unlearned - loaded - run.evaluate_s, "evaluate_s": run.evaluate_s}
    history = [{"step": h.step, **h.losses} for h in result.history]
    used = {**result.config.to_dict(), "params": params_to_dict(params)}
    verification = verification_section(judgement, gate, run.attempts, split)
    report_args = dict(inputs=inputs, data_read=data_read_section(inputs, reads), config=used,
                       metrics=judgement.metrics, gate=gate.to_dict(), verification=verification, history=history,
                       figures=figures, device=str(device))
    if not gate.publishable:
        detail = gate_failure_message(gate, run.attempts)
        _fail(ctx, inputs.job_id, inputs, FailureReason.gate_failed, detail,
              report=dict(report_args, outcome="gate_failed", new_checkpoint=None,
                          timings={**timings, "total_s": time.perf_counter() - started}))
        return "gate_failed"

    progress.phase(JobPhase.publishing)
    data = checkpoint_to_bytes(candidate.to("cpu"), _header_for(inputs, used))
    digest = ctx.store.put(data)
    ctx.store.put_derived(digest, SIGNATURE_NAME, sign_checkpoint(data, key_file=ctx.settings.model_signing_key_file))
    timings["total_s"] = time.perf_counter() - started
    summary = {"steps": result.steps, "budget": result.budget, "seconds": round(result.seconds, 3),
               "gate_verdict": gate.verdict, "attempts": len(run.attempts),
               "final_losses": result.history[-1].losses if result.history else {}}
    outcome = _publish(ctx, inputs, digest=digest, size=len(data), summary=summary,
                       report=dict(report_args, outcome="published", timings=timings))
    warm_next(ctx.store, inputs, candidate.to(device), digest, ctx.settings.data_roots)
    return outcome


def _publish(ctx: WorkerContext, inputs: JobInputs, *, digest: str, size: int, summary: dict, report: dict) -> str:
    with ctx.sessions.begin() as session:
        job = owns_running_job(session, job_id=inputs.job_id, owner=ctx.owner)
        if job is None:
            raise Stop("lease lost before publication")
        model = session.get(Model, job.model_id)  # locked by owns_running_job, before the job
        if model.current_version != inputs.base_version:
            raise RuntimeError(f"current moved from v{inputs.base_version} to v{model.current_version} during the job")
        if not has_live_requests(session, job_id=job.id):
            raise Stop("every request was cancelled before publication")
        version = publish(
            session, model=model, parent_version=inputs.base_version, job_id=job.id, digest=digest, size=size,
            request_ids=inputs.request_ids, metrics=summary, actor=ctx.actor,
        )
        complete_job(session, job=job, version=version, erased=inputs.forget_requests, actor=ctx.actor)
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
            delete_forget_files(session, sample_ids=sorted(inputs.forget_requests), roots=ctx.settings.data_roots,
                                actor=ctx.actor, job_id=str(inputs.job_id))


class ProgressReporter:
    """Heartbeats with the job's phase and, while unlearning, its steps and their rate (called after each step).

    The rate counts unlearning steps over time since unlearning began: loading inputs and building
    teacher targets happen before step 1 and must not make the first steps look slow.
    """

    def __init__(self, ctx: WorkerContext, job_id: uuid.UUID, lease: LeaseKeeper):
        self.ctx, self.job_id, self.lease = ctx, job_id, lease
        self.current, self.unlearning_since, self.last_sent = JobPhase.loading, None, 0.0
        self.step, self.total, self.losses, self.rate = 0, 0, {}, None
        self.pending: list[dict[str, float]] = []  # loss-history entries not yet sent

    def phase(self, phase: JobPhase) -> None:
        self.current = phase
        if phase is JobPhase.unlearning:
            self.unlearning_since = time.monotonic()
        self._send()

    def __call__(self, info: StepInfo) -> None:
        if self.lease.lost.is_set():
            raise Stop("lease lost")
        self.step, self.total, self.losses = info.step, info.total, info.losses
        if keeps_history_point(info.step, info.total):
            self.pending.append({"step": info.step, **info.losses})
        if time.monotonic() - self.last_sent >= HEARTBEAT_SECONDS or info.step in (1, info.total):
            self._send()

    def _send(self) -> None:
        self.last_sent = now = time.monotonic()
        if self.current is JobPhase.unlearning and self.step and now > self.unlearning_since:
            self.rate = self.step / (now - self.unlearning_since)  # frozen once unlearning is over
        with self.ctx.sessions.begin() as session:
            alive = heartbeat(session, job_id=self.job_id, owner=self.ctx.owner, lease_seconds=self.ctx.settings.lease_seconds,
                              phase=self.current, step=self.step, total=self.total, rate=self.rate, losses=self.losses,
                              history=self.pending)
        self.pending.clear()
        if not alive:
            raise Stop("lease lost or every request cancelled")


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


def _device(setting: str) -> torch.device:
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(setting)
