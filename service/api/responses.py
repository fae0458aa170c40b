"""OpenAPI documentation of the error responses every router can give."""

from typing import Any

from service.schemas.common import ErrorBody

_MEANING = {
    400: "Malformed request (bad cursor, bad Content-Length, unparsable body)",
    401: "Missing, invalid or revoked API key",
    403: "The key's role may not do this",
    404: "No such resource",
    409: "Conflict with the resource's state",
    413: "Body larger than OBLIVIO_MAX_BODY_BYTES (POST /models: OBLIVIO_MAX_UPLOAD_BYTES)",
    415: "A body that is not JSON sent to an endpoint that takes JSON",
    422: "Validation failed; `detail.items` lists the offending items (the first 100; `detail.count` has the total)",
    500: "Unexpected server error; quote `request_id` when reporting it",
    503: "Database or broker unavailable; retry after `Retry-After` seconds",
}
_SPECIFIC = {410: "Gone: the version was purged, or its checkpoint rejected at registration"}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    meaning = {**_MEANING, **_SPECIFIC}
    return {code: {"model": ErrorBody, "description": meaning[code]} for code in codes or _MEANING}
