"""Several API processes each run an outbox dispatcher: together they send every due job exactly once.

Each dispatcher here has its own engine (its own connections, as a separate process has) and a
broker stand-in that records what it was asked to send, slowly enough that the two overlap.
"""

import threading
import time
import uuid
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from service.config import Settings
from service.db.base import utcnow
from service.db.enums import DatasetKind, Method, Mode
from service.db.migrate import upgrade
from service.db.models import Dataset, Job, Model, OutboxMessage
from service.db.session import make_sessionmaker
from service.domain.requests import RUN_JOB_TASK
from service.queue import Dispatcher
from tests.conftest import fresh_database

JOBS = 60


class RecordingBroker:
    def __init__(self, sent: list[str]):
        self.sent = sent

    def send_task(self, name, kwargs, queue, retry):
        time.sleep(0.002)  # a broker round trip: the other dispatcher runs meanwhile
        self.sent.append(kwargs["job_id"])


@pytest.fixture
def database(tmp_path) -> str:
    url = fresh_database("oblivio_outbox")
    upgrade(Settings(database_url=url, home=tmp_path))
    return url


def test_two_dispatchers_send_every_job_once(database):
    engine = create_engine(database)
    with Session(engine) as session:
        dataset = Dataset(name="d", kind=DatasetKind.training)
        session.add(dataset)
        session.flush()
        model = Model(name="m", family="mae", adapter_config={}, training_dataset_id=dataset.id)
        session.add(model)
        session.flush()
        past = utcnow() - timedelta(seconds=1)
        jobs = [Job(id=uuid.uuid4(), model_id=model.id, mode=Mode.retain_free, method=Method.encoder_l2, config={},
                    not_before=past) for _ in range(JOBS)]
        session.add_all(jobs)
        session.flush()
        session.add_all(OutboxMessage(task_name=RUN_JOB_TASK, job_id=j.id, payload={"job_id": str(j.id)}) for j in jobs)
        job_ids = [str(j.id) for j in jobs]
        session.commit()
    sent: list[str] = []
    engines = [create_engine(database, pool_size=2) for _ in range(2)]
    dispatchers = [Dispatcher(RecordingBroker(sent), make_sessionmaker(e)) for e in engines]
    start = threading.Barrier(2)

    def drain(dispatcher: Dispatcher) -> None:
        start.wait()
        for _ in range(50):
            dispatcher.dispatch_pending(limit=15)

    threads = [threading.Thread(target=drain, args=(d,)) for d in dispatchers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert Counter(sent) == Counter({j: 1 for j in job_ids})  # none twice, none lost
    with Session(engine) as session:
        assert session.scalar(select(func.count()).where(OutboxMessage.sent_at.is_(None))) == 0
        assert set(session.scalars(select(OutboxMessage.attempts))) == {1}
        assert session.scalar(select(func.count()).where(Job.last_dispatched_at.is_(None))) == 0
    for e in (engine, *engines):
        e.dispose()
