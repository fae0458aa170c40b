"""Pure ASGI middleware: request body limits on the stream, and a JSON answer for any unhandled error."""

import logging
import re

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.problems import error_response
from service.config import Settings

log = logging.getLogger("oblivio.http")
_DIGITS = re.compile(r"[0-9]{1,19}", re.ASCII)


class BodyTooLarge(HTTPException):
    """Raised from `receive` once the bytes received pass the limit; an HTTPException, so FastAPI's
    body reader passes it on untouched and the app's handler renders it as a JSON 413."""

    def __init__(self, limit: int):
        super().__init__(413, f"request body larger than {limit} bytes")


class BodyLimitMiddleware:
    """Refuse a body over the limit before reading past it, whatever its content type or framing.

    A Content-Length over the limit is refused before anything is read; otherwise (chunked bodies,
    lying lengths) the bytes of `http.request` messages are counted as the app reads them. The
    `uploads` routes (method, path) have the larger upload limit. Limits are read per request.
    A response sent before the body was read to its end (a refusal: 401, 403, 413, 415) closes
    the connection, so that the server does not drain the rest of the body either.
    """

    def __init__(self, app: ASGIApp, *, settings: Settings, uploads: frozenset[tuple[str, str]]):
        self.app, self.settings, self.uploads = app, settings, uploads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        is_upload = (scope["method"], scope["path"]) in self.uploads
        limit = self.settings.max_upload_bytes if is_upload else self.settings.max_body_bytes
        declared = _header(scope, b"content-length")
        received, started = 0, False
        ended = declared in (None, "0") and _header(scope, b"transfer-encoding") is None

        async def counted() -> Message:
            nonlocal received, ended
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                ended = not message.get("more_body", False)
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if not ended:
                    message["headers"] = [*message.get("headers", []), (b"connection", b"close")]
            await send(message)

        if declared is not None and not _DIGITS.fullmatch(declared):
            return await error_response(400, "BadRequest", "invalid Content-Length")(scope, receive, tracked)
        if declared is not None and int(declared) > limit:
            return await error_response(413, "PayloadTooLarge", BodyTooLarge(limit).detail)(scope, receive, tracked)
        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge as exc:  # read outside a route's handler: answer here
            if started:
                raise
            await error_response(413, "PayloadTooLarge", exc.detail)(scope, receive, tracked)


class InternalErrorMiddleware:
    """Any exception that escapes the app becomes a JSON 500 with the request id, never plain text.

    It sits inside `RequestContextMiddleware`, so the id is bound and the X-Request-ID header is
    added to this response like to every other.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:
            if started:
                raise  # too late to answer; RequestContextMiddleware logs it
            log.exception("unhandled error in %s %s", scope["method"], scope["path"])
            detail = "unexpected server error; quote the request id when you report it"
            await error_response(500, "InternalError", detail)(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None
