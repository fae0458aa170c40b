"""The Alembic migration upgrades and downgrades on Postgres, and matches the models."""

import json
import uuid

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

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


def test_stored_settings_budget_in_steps_after_upgrade_and_back_after_downgrade(tmp_path):
    url = fresh_database("oblivio_migration_steps")
    settings = Settings(database_url=url, home=tmp_path)
    engine = create_engine(url)
    upgrade(settings, "0003")
    legacy = {"lr": 0.001, "epochs": 3, "max_steps": 600}
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO datasets (id, name, description, kind, created_at) "
                          "VALUES (1, 'train', '', 'training', now())"))
        conn.execute(text("INSERT INTO models (id, name, family, adapter_config, training_dataset_id, unlearn_defaults, "
                          "gate_thresholds, created_at) VALUES (1, 'm', 'mae', '{}', 1, :d, '{}', now())"),
                     {"d": json.dumps(legacy)})
        conn.execute(text("INSERT INTO jobs (id, model_id, status, mode, method, config, progress_step, progress_total, "
                          "losses, loss_history, attempts, created_at) VALUES (:id, 1, 'queued', 'retain_free', "
                          "'encoder_l2', :c, 0, 0, '{}', '[]', 0, now())"),
                     {"id": uuid.uuid4(), "c": json.dumps({"lr": 0.001, "epochs": 1000})})
    upgrade(settings)
    with engine.connect() as conn:
        assert json.loads(conn.scalar(text("SELECT unlearn_defaults::text FROM models"))) == {"lr": 0.001, "steps": 600}
        assert json.loads(conn.scalar(text("SELECT config::text FROM jobs"))) == {"lr": 0.001}
    downgrade(settings, "0003")
    with engine.connect() as conn:
        assert json.loads(conn.scalar(text("SELECT unlearn_defaults::text FROM models"))) == {"lr": 0.001, "max_steps": 600}
    engine.dispose()
