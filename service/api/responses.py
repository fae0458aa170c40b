"""OpenAPI documentation of the error responses every router can give."""

from typing import Any

from service.schemas.common import ErrorBody

_MEANING = {
    400: "Malformed request (bad cursor, control characters)",
    401: "Missing, invalid or revoked API key",
    403: "The key's role may not do this",
    404: "No such resource",
    409: "Conflict with the resource's state",
    413: "Body too large",
    422: "Validation failed; `detail` lists every offending item",
    503: "Database or broker unavailable; retry after `Retry-After` seconds",
}
_SPECIFIC = {410: "Removed for good (a purged version)"}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    meaning = {**_MEANING, **_SPECIFIC}
    return {code: {"model": ErrorBody, "description": meaning[code]} for code in codes or _MEANING}
