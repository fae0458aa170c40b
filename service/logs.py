"""Structured logs for API and worker: one JSON object per line, with the request or job it is about.

`configure_logging(level)` is the entry point (`oblivio serve`, `python -m worker`). The ids come
from context variables: `RequestContextMiddleware` binds a request id for each HTTP request, the
worker's task wrapper binds the job id with `log_context(job_id=...)`. Threads started by the
request (sync handlers, background tasks) inherit the context, so their lines carry the id too.
"""

import json
import logging
import logging.config
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

REQUEST_ID_HEADER = "X-Request-ID"
_IDS: dict[str, ContextVar[str | None]] = {
    "request_id": ContextVar("request_id", default=None),
    "job_id": ContextVar("job_id", default=None),
}
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "color_message"}

log = logging.getLogger("oblivio.http")


@contextmanager
def log_context(**ids: str | None) -> Iterator[None]:
    """Bind request_id and/or job_id for every line logged inside the block."""
    tokens = [(_IDS[name], _IDS[name].set(value)) for name, value in ids.items()]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def current_request_id() -> str | None:
    return _IDS["request_id"].get()


def _current_ids() -> dict[str, str]:
    return {name: value for name, var in _IDS.items() if (value := var.get()) is not None}


class JsonFormatter(logging.Formatter):
    """ts, level, logger, msg, the bound ids, any `extra=` fields, and the traceback as `exc`."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            **_current_ids(),
        }
        line.update({k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS and not k.startswith("_")})
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def logging_config(level: str = "INFO") -> dict[str, Any]:
    """A dictConfig that sends every logger (uvicorn's and Celery's included) through the JSON formatter."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "loggers": {name: {"handlers": [], "propagate": True} for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
        "root": {"handlers": ["stderr"], "level": level.upper()},
    }


def configure_logging(level: str = "INFO") -> None:
    logging.config.dictConfig(logging_config(level))
    logging.captureWarnings(True)  # warnings become JSON lines too


class RequestContextMiddleware:
    """ASGI middleware: a request id per HTTP request (an incoming X-Request-ID is kept if well-formed),
    echoed in the response header, bound for logging, and one access line when the response is sent."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        started = time.perf_counter()
        status, finished = 500, None

        async def send_with_id(message):
            nonlocal status, finished
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                finished = time.perf_counter()  # background tasks run after this; they are not the request's latency
            await send(message)

        with log_context(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            except Exception:
                log.exception("unhandled error in %s %s", scope["method"], scope["path"])
                raise
            finally:
                _access_line(scope, status, (finished or time.perf_counter()) - started)


def _incoming_request_id(scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            return candidate if _VALID_REQUEST_ID.fullmatch(candidate) else None
    return None


def _access_line(scope, status: int, seconds: float) -> None:
    if status >= 500:
        level = logging.ERROR
    else:
        level = logging.DEBUG if scope["path"] in _QUIET_PATHS and status < 400 else logging.INFO
    log.log(
        level,
        "%s %s %s",
        scope["method"],
        scope["path"],
        status,
        extra={"method": scope["method"], "path": scope["path"], "status": status, "duration_ms": round(seconds * 1000, 2)},
    )
