"""The one shape of every error response, and the bounds on what an error echoes back."""

from typing import Any

from fastapi.responses import JSONResponse

from service.logs import current_request_id

MAX_ITEMS = 100  # a problem list shows its first items and the total count
MAX_TEXT = 700  # longer strings are cut: an error never echoes a huge input back (700: the 12 gate check names fit)
_NOT_ECHOED = frozenset({"input", "ctx", "url"})


def error_response(status: int, kind: str, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": kind, "detail": bounded(detail), "request_id": current_request_id()}
    return JSONResponse(body, status_code=status, headers=headers)


def bounded(detail: Any) -> Any:
    """Cap a `{"message", "items"}` problem list at MAX_ITEMS, adding `count` and `truncated`; cut long strings."""
    if isinstance(detail, dict) and isinstance(detail.get("items"), list):
        items = detail["items"]
        detail = {**detail, "items": items[:MAX_ITEMS], "count": len(items), "truncated": len(items) > MAX_ITEMS}
    return _shortened(detail)


def validation_problems(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """Pydantic errors as a problem list: where, what and which rule, never the offending input itself."""
    items = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in errors]
    return {"message": "the request does not match the schema", "items": items}


def _shortened(value: Any) -> Any:
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + "…"
    if isinstance(value, dict):
        return {key: _shortened(v) for key, v in value.items() if key not in _NOT_ECHOED}
    if isinstance(value, list | tuple):
        return [_shortened(v) for v in value]
    return value
