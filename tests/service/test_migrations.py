"""The Alembic migration upgrades and downgrades on Postgres, and matches the models."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from service.config import Settings
from service.db.base import Base
from service.db.migrate import downgrade, upgrade
from tests.conftest import fresh_database


def test_upgrade_downgrade_upgrade_on_postgres(tmp_path):
    url = fresh_database("oblivio_migrations")
    settings = Settings(database_url=url, home=tmp_path)
    engine = create_engine(url)
    upgrade(settings)
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    downgrade(settings)
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    upgrade(settings)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_upgrade_on_embedded_sqlite(tmp_path):
    settings = Settings(home=tmp_path)
    upgrade(settings)
    engine = create_engine(settings.database_url)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    downgrade(settings)
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    engine.dispose()
