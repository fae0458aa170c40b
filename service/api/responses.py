"""OpenAPI documentation of the error responses every router can give."""

from typing import Any

from service.schemas.common import ErrorBody

_MEANING = {
    400: "Malformed request (bad cursor, control characters)",
    401: "Missing, invalid or revoked API key",
    403: "The key's role may not do this",
    404: "No such resource",
    409: "Conflict with the resource's state",
    410: "Gone: the checkpoint was rejected or purged",
    413: "Body too large",
    422: "Validation failed; `detail` lists every offending item",
    503: "Database or broker unavailable; retry after `Retry-After` seconds",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The given codes, or every code but 410 (only the checkpoint download answers it)."""
    chosen = codes or [code for code in _MEANING if code != 410]
    return {code: {"model": ErrorBody, "description": _MEANING[code]} for code in chosen}
