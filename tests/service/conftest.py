"""API tests: the app in-process over a real migrated Postgres, one rolled-back transaction per test."""

from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.db.enums import DatasetKind, Role
from service.main import create_app
from tests.builders import make_dataset, make_key, tiny_checkpoint, validate_model, write_samples
from tests.conftest import REDIS, REDIS_SERVICE_DB

CLASSES = ["cat", "dog", "fox"]


@dataclass
class Api:
    client: TestClient
    session: Session
    keys: dict[Role, str]
    data_root: Path

    def as_(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}


@pytest.fixture
def db_session(pg_engine):
    connection = pg_engine.connect()
    outer = connection.begin()
    sessions = sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    session = sessions()
    yield session, sessions
    session.close()
    outer.rollback()
    connection.close()


@pytest.fixture
def api(db_session, pg_url, tmp_path) -> Api:
    session, sessions = db_session
    settings = Settings(
        database_url=pg_url,
        broker_url=f"{REDIS}/{REDIS_SERVICE_DB}",
        home=tmp_path / "home",
        data_roots=[tmp_path / "data"],
        outbox_poll_seconds=3600,
        audit_seal_seconds=3600,  # tests seal with seal_pending, deterministically
        batch_window_seconds=0,
        register_wait_seconds=0,  # no worker here: registration answers 202 and the test settles the verdict
    )
    app = create_app(settings)
    sessions.configure(info=app.state.sessions.kw["info"])  # the app's caches
    app.state.sessions = sessions
    app.state.dispatcher.sessions = sessions
    keys = {role: make_key(session, role) for role in Role}
    roots = settings.data_roots
    make_dataset(session, "train", DatasetKind.training, write_samples(tmp_path / "data", "tr", CLASSES, 4), roots)
    make_dataset(session, "proxy", DatasetKind.proxy, write_samples(tmp_path / "data", "px", CLASSES, 2), roots)
    session.commit()
    with TestClient(app) as client:
        client.post(
            "/models",
            headers={"Authorization": f"Bearer {keys[Role.admin]}"},
            data={"spec": '{"name": "m", "training_dataset": "train", "proxy_dataset": "proxy"}'},
            files={"checkpoint": ("m.safetensors", tiny_checkpoint(unlearn_defaults={"lr": 0.001}))},
        ).raise_for_status()
        validate_model(session, "m")
        session.commit()
        yield Api(client=client, session=session, keys=keys, data_root=tmp_path / "data")
