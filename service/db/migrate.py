"""Run Alembic migrations from code (CLI, tests, demo)."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, make_url

from service.config import Settings
from service.db.session import make_engine

_ROOT = Path(__file__).resolve().parents[2]


def alembic_config(settings: Settings) -> Config:
    config = Config(str(_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(_ROOT / "migrations"))
    config.attributes["settings"] = settings
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    command.upgrade(alembic_config(settings), revision)


def downgrade(settings: Settings, revision: str = "base") -> None:
    command.downgrade(alembic_config(settings), revision)


def head_revision() -> str:
    """The migration this code needs (the head of migrations/)."""
    config = Config(str(_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(_ROOT / "migrations"))
    return ScriptDirectory.from_config(config).get_current_head()


def schema_problem(settings: Settings, *, head: str) -> str | None:
    """None when the settings' database is migrated to `head`; otherwise what is wrong and what to run.

    A missing SQLite file is reported, not created. Connection errors propagate: an unreachable
    database is a different problem (the API answers 503 until it is back), not a missing schema.
    """
    url = make_url(settings.database_url)
    if settings.is_sqlite and url.database and not Path(url.database).is_file():
        return (f"no database file at {url.database}: run `oblivio migrate` with the same OBLIVIO_HOME to create it, "
                "or set OBLIVIO_HOME / OBLIVIO_DATABASE_URL to where your state is")
    engine = make_engine(settings)
    try:
        with engine.connect() as connection:
            return revision_problem(connection, head=head)
    finally:
        engine.dispose()


def revision_problem(connection: Connection, *, head: str) -> str | None:
    """None when the connected database is at `head`; otherwise which migration it is at and what to run."""
    current = MigrationContext.configure(connection).get_current_revision()
    where = connection.engine.url.render_as_string(hide_password=True)
    if current is None:
        return f"database {where} has no Oblivio schema: run `oblivio migrate`"
    if current != head:
        return f"database {where} is at migration {current}, this code needs {head}: run `oblivio migrate`"
    return None


def state_summary(settings: Settings) -> list[str]:
    """Where this process keeps its state, for the first lines of `oblivio serve`."""
    return [
        f"home: {settings.home}",
        f"database: {make_url(settings.database_url).render_as_string(hide_password=True)}",
        f"artifacts: {settings.artifact_url or settings.artifact_dir}",
    ]
