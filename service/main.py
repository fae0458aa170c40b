"""create_app(settings) -> FastAPI."""

import asyncio
import logging
import threading
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from starlette.exceptions import HTTPException

from service.api import audit, datasets, deadlines, health, jobs, keys, metrics, models, requests, translog, webhooks
from service.api.admission import AdmissionMiddleware
from service.api.middleware import BodyLimitMiddleware, InternalErrorMiddleware
from service.api.problems import error_response, validation_problems
from service.audit.sealer import Sealer
from service.audit.signing import Signer
from service.config import Settings, get_settings
from service.domain.auth import KeyCache
from service.domain.live_webhooks import CACHE as LIVE_WEBHOOKS, LiveWebhooks
from service.db.migrate import head_revision
from service.db.session import make_engine, make_sessionmaker
from service.errors import ServiceError
from service.logs import RequestContextMiddleware
from service.metrics import ApiMetrics, HttpMetricsMiddleware
from service.queue import Dispatcher, make_producer
from service.storage import StoreUnavailable, make_store
from service.web import mount_dashboard

log = logging.getLogger("oblivio.api")

DESCRIPTION = """Right-to-be-forgotten requests against image-to-image generative models.

Authenticate with `Authorization: Bearer <API key>`. Roles: officer (files requests), reviewer,
auditor (reads everything), admin (registry, keys, promotion). The key and its role are checked
before the body is read. Bodies are JSON (`Content-Type: application/json`) except the multipart
`POST /models`; a body over `OBLIVIO_MAX_BODY_BYTES` is refused with 413 as soon as it passes the limit.

Errors are `{"error": "<Kind>", "detail": ..., "request_id": ...}`. A list of problems
(`{"message", "items", "count", "truncated"}`) shows its first 100 items and their total count;
error texts never echo long input back.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    engine = make_engine(settings)
    live_webhooks = LiveWebhooks(settings.key_cache_seconds)
    sessions = make_sessionmaker(engine, info={LIVE_WEBHOOKS: live_webhooks})
    dispatcher = Dispatcher(make_producer(settings), sessions)
    signer = Signer.from_file(settings.signing_key_file, create=True)
    sealer = Sealer(engine, signer, origin=settings.audit_log_origin, interval=settings.audit_seal_seconds,
                    batch=settings.audit_seal_batch)  # fmt: skip

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        stop = threading.Event()
        thread = threading.Thread(
            target=dispatcher.run_forever,
            args=(stop, settings.outbox_poll_seconds, settings.redispatch_seconds),
            name="outbox",
            daemon=True,
        )
        thread.start()
        sealing = threading.Thread(target=sealer.run_forever, args=(stop,), name="sealer", daemon=True)
        sealing.start()
        yield
        stop.set()
        thread.join(timeout=5)
        sealing.join(timeout=5)
        engine.dispose()

    app = FastAPI(title="Oblivio", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = sessions
    app.state.db_slots = asyncio.Semaphore(settings.api_db_concurrency)
    app.state.key_cache = KeyCache(settings.key_cache_seconds)
    app.state.live_webhooks = live_webhooks
    # `oblivio serve` probed the bucket once before starting the API processes: each only reads its versioning.
    app.state.store = make_store(settings, probe=settings.artifact_probed_url != settings.artifact_url)
    app.state.dispatcher = dispatcher
    app.state.schema_head = head_revision()
    app.state.signer = signer
    app.state.sealer = sealer
    app.state.metrics = ApiMetrics(lambda: app.state.sessions)
    for module in (requests, deadlines, audit, translog, jobs, models, datasets, keys, webhooks, health, metrics):
        app.include_router(module.router)
    mount_dashboard(app)  # the compliance dashboard under /ui (service/web)
    _install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, settings=settings, uploads=frozenset({("POST", "/models")}))
    app.add_middleware(HttpMetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(AdmissionMiddleware, max_in_flight=settings.admission_max_in_flight,
                       max_queue=settings.admission_max_queue, wait_seconds=settings.admission_wait_seconds)
    app.add_middleware(InternalErrorMiddleware)  # a JSON 500 with the request id, never plain text
    app.add_middleware(RequestContextMiddleware)  # outermost: every line of a request carries its id
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(_: Request, exc: ServiceError):
        return error_response(exc.status_code, exc.error, exc.detail, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError):
        return error_response(422, "ValidationError", validation_problems(exc.errors()))

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException):
        return error_response(exc.status_code, _kind(exc.status_code), exc.detail, exc.headers)

    @app.exception_handler(OperationalError)
    async def database_down(_: Request, exc: OperationalError):
        log.error("database unavailable: %s", exc.orig)
        return error_response(503, "Unavailable", "database unavailable; nothing was recorded", {"Retry-After": "5"})

    @app.exception_handler(StoreUnavailable)
    async def store_down(_: Request, exc: StoreUnavailable):
        log.error("artifact store unavailable: %s", exc)
        return error_response(503, "Unavailable", "artifact store unavailable; nothing was recorded", {"Retry-After": "5"})

    @app.exception_handler(DataError)
    async def bad_value(_: Request, exc: DataError):
        # Only caller-supplied values reach the database this way (a NUL byte, a number out of range).
        return error_response(422, "ValidationError", f"value rejected by the database: {str(exc.orig).splitlines()[0]}")

    @app.exception_handler(DBAPIError)
    async def database_error(_: Request, exc: DBAPIError):
        if exc.connection_invalidated:
            return error_response(
                503, "Unavailable", "database connection lost; nothing was recorded", {"Retry-After": "5"}
            )
        raise exc


def _kind(status: int) -> str:
    return {400: "BadRequest", 401: "Unauthenticated", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
            409: "Conflict", 413: "PayloadTooLarge", 415: "UnsupportedMediaType"}.get(status, "HTTPError")
