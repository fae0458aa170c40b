"""Engine and session factory built from the settings."""

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings


def make_engine(settings: Settings) -> Engine:
    if settings.is_sqlite:
        settings.home.mkdir(parents=True, exist_ok=True)
        engine = create_engine(settings.database_url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(settings.database_url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_sessionmaker(engine: Engine, *, info: dict | None = None) -> sessionmaker[Session]:
    """`info`: what every session carries in `Session.info` (an API process's caches)."""
    return sessionmaker(engine, expire_on_commit=False, info=info or {})
