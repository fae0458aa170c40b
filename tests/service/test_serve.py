"""`oblivio serve` says where its state is and refuses a database that is not migrated; /readyz says why."""

import os

import pytest
from fastapi.testclient import TestClient

from service.cli import Exit, main
from service.config import Settings, get_settings
from service.db.migrate import upgrade
from service.main import create_app
from tests.conftest import REDIS, REDIS_SERVICE_DB, fresh_database


@pytest.fixture
def serve(monkeypatch, capsys, tmp_path):
    """Run `oblivio serve` with these OBLIVIO_* variables; uvicorn must never start."""
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: pytest.fail("uvicorn started on an unmigrated database"))

    def run(**env: str) -> tuple[int, str]:
        monkeypatch.chdir(tmp_path)
        for name in [n for n in os.environ if n.startswith("OBLIVIO_")]:
            monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(f"OBLIVIO_{name.upper()}", value)
        get_settings.cache_clear()
        try:
            code = main(["serve"])
        finally:
            get_settings.cache_clear()
        return code, capsys.readouterr().err

    return run


def test_serve_from_another_folder_creates_nothing_and_says_what_to_run(serve, tmp_path):
    code, err = serve()
    assert code == Exit.CONFLICT
    assert f"home: {tmp_path / '.oblivio'}" in err and f"database: sqlite:///{tmp_path / '.oblivio' / 'oblivio.db'}" in err
    assert "not serving: no database file at" in err and "run `oblivio migrate`" in err
    assert not (tmp_path / ".oblivio").exists()


def test_serve_refuses_a_postgres_database_without_schema_or_behind_the_code(serve, tmp_path):
    url = fresh_database("oblivio_serve")
    code, err = serve(database_url=url, home=str(tmp_path / "home"))
    assert code == Exit.CONFLICT and "has no Oblivio schema: run `oblivio migrate`" in err
    upgrade(Settings(database_url=url, home=tmp_path / "home"), "0003")
    code, err = serve(database_url=url, home=str(tmp_path / "home"))
    assert code == Exit.CONFLICT and "is at migration 0003, this code needs" in err


def test_readyz_names_a_missing_migration(tmp_path):
    settings = Settings(database_url=fresh_database("oblivio_unmigrated"), broker_url=f"{REDIS}/{REDIS_SERVICE_DB}", home=tmp_path)
    with TestClient(create_app(settings)) as client:
        ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"database": True, "broker": True, "schema": False}
    assert "has no Oblivio schema: run `oblivio migrate`" in ready.json()["reason"]


def test_serve_refuses_an_s3_store_it_cannot_use(serve, tmp_path, s3_endpoint, monkeypatch):
    from tests.s3 import CREDENTIALS

    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    upgrade(Settings(home=tmp_path / "home"))
    code, err = serve(home=str(tmp_path / "home"), artifact_url="s3://no-such-bucket/oblivio", s3_endpoint_url=s3_endpoint,
                      s3_addressing_style="path")
    assert code == Exit.CONFLICT
    assert "artifacts: s3://no-such-bucket/oblivio" in err
    assert "not serving: artifact store s3://no-such-bucket/oblivio/ is not reachable or does not exist" in err


def test_serve_probes_an_s3_bucket_once_for_all_its_api_processes(tmp_path, s3_endpoint, monkeypatch, caplog):
    """The parent probes the versioned bucket; the API processes it starts (here uvicorn's in-process one, built as
    uvicorn builds it: `service.asgi`, settings from the environment it inherits) do not probe again."""
    from tests.s3 import CREDENTIALS, Requests, new_bucket, store_env

    bucket = new_bucket(s3_endpoint, versioned=True)
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("OBLIVIO_")]:
        monkeypatch.delenv(name)
    for name, value in {**CREDENTIALS, **store_env(s3_endpoint, bucket), "OBLIVIO_HOME": str(tmp_path / "home"),
                        "OBLIVIO_ARTIFACT_PROBED_URL": ""}.items():  # set: the variable serve sets is undone after
        monkeypatch.setenv(name, value)
    upgrade(Settings(home=tmp_path / "home"))
    seen, started = Requests(caplog, bucket), []

    def api_processes(app: str, workers: int, **_) -> None:
        assert app == "service.asgi:app" and workers == 1
        started.append((create_app().state.store.versioned, seen.probes()))

    monkeypatch.setattr("uvicorn.run", api_processes)
    get_settings.cache_clear()
    try:
        assert main(["serve"]) == Exit.OK
    finally:
        get_settings.cache_clear()
    [(versioned, probes)] = started
    assert versioned and [r.split()[0] for r in probes] == ["PUT", "GET", "DELETE"]  # the parent's probe only
    assert os.environ["OBLIVIO_ARTIFACT_PROBED_URL"] == f"s3://{bucket}/artifacts"  # what uvicorn's children inherit
