"""Coalescing: requests for one model within the window share one job; the dispatcher waits for it to close."""

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from service.db.base import utcnow
from service.db.enums import JobStatus, Role
from service.db.models import Job, OutboxMessage, UnlearnRequest
from service.domain.dispatch import recover_jobs
from service.domain.jobs import Claim, claim_job


def submit(api, body):
    response = api.client.post("/unlearn-requests", json=body, headers=api.as_(Role.officer))
    assert response.status_code == 201, response.text
    return response.json()


def test_requests_within_the_window_share_one_job_until_it_closes(api):
    api.client.app.state.settings.batch_window_seconds = 60
    a = submit(api, {"model": "m", "samples": ["tr-cat-000"]})
    b = submit(api, {"model": "m", "classes": ["dog"]})
    c = submit(api, {"model": "m", "samples": ["tr-fox-000"], "config": {"lr": 0.5}})  # other config: own job
    assert a["job"]["id"] == b["job"]["id"] != c["job"]["id"]
    assert api.session.scalar(select(func.count()).select_from(Job)) == 2
    job = api.session.get(Job, uuid.UUID(a["job"]["id"]))
    assert timedelta(seconds=55) < job.not_before - utcnow() <= timedelta(seconds=60)
    # the window is open: nothing is sent and a worker would not start it
    assert api.client.app.state.dispatcher.dispatch_pending() == 0
    assert claim_job(api.session, job_id=job.id, owner="w", lease_seconds=30) is Claim.too_early
    job.not_before = utcnow() - timedelta(seconds=1)
    api.session.commit()
    assert claim_job(api.session, job_id=job.id, owner="w", lease_seconds=30) is Claim.claimed


def test_an_early_due_date_bounds_the_window(api):
    api.client.app.state.settings.batch_window_seconds = 3600
    first = submit(api, {"model": "m", "samples": ["tr-cat-001"]})
    due = datetime.now(UTC) + timedelta(minutes=5)
    second = submit(api, {"model": "m", "samples": ["tr-cat-002"], "due_at": due.isoformat()})
    assert first["job"]["id"] == second["job"]["id"]
    job = api.session.get(Job, uuid.UUID(first["job"]["id"]))
    assert abs((job.not_before - due).total_seconds()) < 1


def test_batch_size_is_bounded(api):
    settings = api.client.app.state.settings
    settings.batch_window_seconds, settings.batch_max_requests = 60, 2
    jobs = {submit(api, {"model": "m", "samples": [f"tr-dog-00{i}"]})["job"]["id"] for i in range(3)}
    assert len(jobs) == 2


def test_jobs_of_one_model_are_claimed_oldest_first_and_one_at_a_time(api):
    older = submit(api, {"model": "m", "samples": ["tr-fox-001"]})
    newer = submit(api, {"model": "m", "samples": ["tr-fox-002"]})
    older_id, newer_id = uuid.UUID(older["job"]["id"]), uuid.UUID(newer["job"]["id"])
    assert claim_job(api.session, job_id=newer_id, owner="w1", lease_seconds=30) is Claim.model_busy
    assert claim_job(api.session, job_id=older_id, owner="w1", lease_seconds=30) is Claim.claimed
    assert claim_job(api.session, job_id=newer_id, owner="w2", lease_seconds=30) is Claim.model_busy
    assert claim_job(api.session, job_id=older_id, owner="w2", lease_seconds=30) is Claim.held


def test_expired_lease_and_lost_message_are_sent_again(api):
    job_id = uuid.UUID(submit(api, {"model": "m", "samples": ["tr-cat-003"]})["job"]["id"])
    assert claim_job(api.session, job_id=job_id, owner="dead-worker", lease_seconds=30) is Claim.claimed
    job = api.session.get(Job, job_id)
    job.lease_expires_at = utcnow() - timedelta(seconds=1)
    api.session.commit()
    assert recover_jobs(api.session, redispatch_seconds=60, task_name="oblivio.run_job") == 1
    assert job.status is JobStatus.queued and job.lease_owner is None
    request = api.session.scalar(select(UnlearnRequest).where(UnlearnRequest.job_id == job_id))
    assert request.status.value == "queued"
    unsent = api.session.scalar(select(func.count()).where(OutboxMessage.job_id == job_id, OutboxMessage.sent_at.is_(None)))
    assert unsent == 1  # one message: the re-queued job is not also taken for a lost one
    # sent long ago and never claimed: sent again, but not while a send is pending
    api.session.execute(OutboxMessage.__table__.update().values(sent_at=utcnow()))
    job.last_dispatched_at = utcnow() - timedelta(seconds=120)
    api.session.commit()
    assert recover_jobs(api.session, redispatch_seconds=60, task_name="oblivio.run_job") == 1
    assert recover_jobs(api.session, redispatch_seconds=60, task_name="oblivio.run_job") == 0
    assert claim_job(api.session, job_id=job_id, owner="new-worker", lease_seconds=30) is Claim.claimed
    assert job.attempts == 2
