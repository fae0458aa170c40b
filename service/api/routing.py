"""GuardedRoute: the key, its role and the media type are checked before FastAPI reads a body.

FastAPI reads and parses a request body before it runs any dependency, so an anonymous caller
would learn that its JSON is malformed (422) instead of being refused (401), and an upload would
be read in full before its key is checked. Every router whose routes take a body uses this class.
"""

from collections.abc import Awaitable, Callable
from email.message import Message
from typing import Any

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.params import Form
from fastapi.routing import APIRoute

from service.api.deps import authorise_before_body
from service.db.enums import Role
from service.errors import UnsupportedMediaType


class GuardedRoute(APIRoute):
    """Also documents the roles its guard admits in OpenAPI (`x-roles` and the description)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any):
        super().__init__(path, endpoint, **kwargs)
        allowed = _allowed_roles(self.dependant)
        if allowed is not None:
            names = sorted(r.value for r in allowed | {Role.admin})
            self.openapi_extra = {**(self.openapi_extra or {}), "x-roles": names}
            self.description = f"{self.description}\n\nRoles: {', '.join(names)}.".lstrip()

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()
        allowed = _allowed_roles(self.dependant)
        if self.body_field is None or allowed is None:
            return handler
        takes_json = not isinstance(self.body_field.field_info, Form)

        async def guarded(request: Request) -> Response:
            await authorise_before_body(request, allowed)
            if takes_json:
                _require_json(request)
            return await handler(request)

        return guarded


def _allowed_roles(dependant: Dependant) -> frozenset[Role] | None:
    for dependency in dependant.dependencies:
        allowed = getattr(dependency.call, "allowed_roles", None) or _allowed_roles(dependency)
        if allowed:
            return allowed
    return None


def _require_json(request: Request) -> None:
    announced = request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers
    if not announced:
        return
    message = Message()
    message["content-type"] = request.headers.get("content-type", "")
    subtype = message.get_content_subtype()
    if message.get_content_maintype() != "application" or not (subtype == "json" or subtype.endswith("+json")):
        raise UnsupportedMediaType(
            f"this endpoint takes JSON; got Content-Type {request.headers.get('content-type') or 'none'!r}"
        )
