"""Deliveries per job stay bounded: a busy model's job waits in the database and is sent again once,
by the worker that frees the model or by the sweep; never two unsent messages for one job."""

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from service.audit.chain import record
from service.db.base import utcnow
from service.db.enums import FailureReason, Role
from service.db.models import AuditEvent, Job, OutboxMessage
from service.domain.dispatch import recover_jobs
from service.domain.jobs import Claim, claim_job, fail_job, owns_running_job


def submit(api, sample: str) -> tuple[uuid.UUID, str]:
    response = api.client.post("/unlearn-requests", json={"model": "m", "samples": [sample]}, headers=api.as_(Role.officer))
    assert response.status_code == 201, response.text
    return uuid.UUID(response.json()["job"]["id"]), response.json()["id"]


def unsent(api, job_id: uuid.UUID) -> int:
    return api.session.scalar(select(func.count()).where(OutboxMessage.job_id == job_id, OutboxMessage.sent_at.is_(None)))


def mark_all_sent(api) -> None:
    api.session.execute(OutboxMessage.__table__.update().values(sent_at=utcnow()))
    api.session.execute(Job.__table__.update().values(last_dispatched_at=utcnow()))
    api.session.commit()


def test_a_busy_models_job_is_sent_again_once_by_the_worker_that_frees_the_model(api):
    older, _ = submit(api, "tr-cat-000")
    newer, _ = submit(api, "tr-cat-001")
    mark_all_sent(api)
    assert claim_job(api.session, job_id=older, owner="w1", lease_seconds=30) is Claim.claimed
    assert claim_job(api.session, job_id=newer, owner="w2", lease_seconds=30) is Claim.model_busy
    api.session.commit()
    assert api.session.get(Job, newer).last_dispatched_at is None  # its message is spent
    for _ in range(3):  # however long it waits, nothing is re-sent while the model is busy
        assert recover_jobs(api.session, redispatch_seconds=0.001) == 0
    assert owns_running_job(api.session, job_id=older, owner="w1") is not None
    fail_job(api.session, job_id=older, reason=FailureReason.job_error, detail="boom", actor="w1")
    api.session.commit()
    assert unsent(api, newer) == 1
    assert recover_jobs(api.session, redispatch_seconds=60) == 0  # already on its way


def test_the_sweep_sends_the_head_of_an_idle_model_once(api):
    older, older_request = submit(api, "tr-dog-000")
    newer, _ = submit(api, "tr-dog-001")
    third, _ = submit(api, "tr-dog-002")
    mark_all_sent(api)
    assert claim_job(api.session, job_id=newer, owner="w", lease_seconds=30) is Claim.model_busy
    assert claim_job(api.session, job_id=third, owner="w", lease_seconds=30) is Claim.model_busy
    api.session.commit()
    cancelled = api.client.post(f"/unlearn-requests/{older_request}/cancel", headers=api.as_(Role.officer))
    assert cancelled.status_code == 200, cancelled.text
    assert recover_jobs(api.session, redispatch_seconds=60) == 1  # the model is idle: its head, not the job behind it
    assert (unsent(api, newer), unsent(api, third)) == (1, 0)
    assert recover_jobs(api.session, redispatch_seconds=60) == 0


def test_a_recovered_job_gets_one_message_and_a_second_cannot_be_queued(api):
    job_id, _ = submit(api, "tr-fox-000")
    mark_all_sent(api)
    assert claim_job(api.session, job_id=job_id, owner="dead", lease_seconds=30) is Claim.claimed
    job = api.session.get(Job, job_id)
    job.lease_expires_at = utcnow() - timedelta(seconds=1)
    job.last_dispatched_at = utcnow() - timedelta(hours=1)  # would also look lost to the redispatch check
    api.session.commit()
    assert recover_jobs(api.session, redispatch_seconds=60) == 1
    assert unsent(api, job_id) == 1
    api.session.commit()
    with pytest.raises(IntegrityError):
        with api.session.begin_nested():
            api.session.add(OutboxMessage(task_name="t", job_id=job_id, payload={}))
            api.session.flush()


def test_audit_events_are_written_at_commit_and_dropped_on_rollback(api):
    before = api.session.scalar(select(func.count()).select_from(AuditEvent))
    record(api.session, actor="test", action="thing.dropped", subject="thing:1")
    assert api.session.scalar(select(func.count()).select_from(AuditEvent)) == before
    api.session.rollback()
    record(api.session, actor="test", action="thing.kept", subject="thing:2")
    api.session.commit()
    actions = list(api.session.scalars(select(AuditEvent.action).where(AuditEvent.subject.in_(["thing:1", "thing:2"]))))
    assert actions == ["thing.kept"]
