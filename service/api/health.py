"""Liveness and readiness."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from service.db.migrate import revision_problem

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "database or broker unreachable, or the database not migrated"}})
def readyz(request: Request) -> JSONResponse:
    database = _database_ok(request)
    schema = _schema_problem(request) if database else None
    checks = {"database": database, "broker": _broker_ok(request), "schema": database and schema is None}
    ready = all(checks.values())
    body = {"status": "ready" if ready else "unavailable", "checks": checks}
    return JSONResponse(body | ({"reason": schema} if schema else {}), status_code=200 if ready else 503)


def _schema_problem(request: Request) -> str | None:
    try:
        with request.app.state.sessions() as session:
            return revision_problem(session.connection(), head=request.app.state.schema_head)
    except Exception as exc:
        return f"migration state unreadable: {type(exc).__name__}"


def _database_ok(request: Request) -> bool:
    try:
        with request.app.state.sessions() as session:
            session.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


def _broker_ok(request: Request) -> bool:
    try:
        with request.app.state.dispatcher.producer.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return True
    except Exception:
        return False
