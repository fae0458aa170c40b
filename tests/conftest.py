"""Shared fixtures: a real Postgres database migrated once per session, real Redis URLs."""

import os

import psycopg
import pytest
from sqlalchemy import create_engine

from service.config import Settings
from service.db.migrate import upgrade

PG_ADMIN = os.environ.get("OBLIVIO_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("OBLIVIO_TEST_REDIS", "redis://127.0.0.1:6379")
# Redis database numbers of the e2e stacks and of the in-process service tests; runs side by side on
# one Redis (several checkouts) give each its own pair so no worker takes another run's task.
REDIS_E2E_DB = int(os.environ.get("OBLIVIO_TEST_REDIS_E2E_DB", "13"))
REDIS_SERVICE_DB = int(os.environ.get("OBLIVIO_TEST_REDIS_SERVICE_DB", "14"))


_CREATED: set[str] = set()


def pytest_addoption(parser):
    parser.addoption("--family", action="append", default=[], metavar="NAME",
                     help="run the Adapter contract tests (tests/unlearn/test_adapters_contract.py) against this "
                          "registered model family only (repeatable; default: every registered family)")


def fresh_database(name: str, admin: str = PG_ADMIN) -> str:
    """Drop and create a Postgres database private to this test run; returns its SQLAlchemy URL.
    `admin` is a maintenance-database URL of another server (the soak runs its own cluster)."""
    name = f"{name}_{os.getpid()}"
    _CREATED.add(name)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"


@pytest.fixture(scope="session", autouse=True)
def _drop_test_databases():
    yield
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        for name in _CREATED:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_url() -> str:
    url = fresh_database("oblivio_test")
    upgrade(Settings(database_url=url, home="/tmp/oblivio-test-home"))
    return url


@pytest.fixture(scope="session")
def pg_engine(pg_url):
    engine = create_engine(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def s3_endpoint():
    """A real S3 endpoint (moto's server mode, on a free port) for the whole run; tests make their own buckets."""
    from tests.s3 import threaded_server

    with threaded_server() as url:
        yield url
