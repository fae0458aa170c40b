"""Shared request and response shapes."""

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


class Strict(BaseModel):
    """Request bodies: unknown fields are an error, never silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _to_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("must include a timezone, e.g. 2026-07-01T00:00:00Z")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of range once converted to UTC") from None


def _naive_as_utc(value: datetime) -> datetime:
    return _to_utc(value if value.tzinfo is not None else value.replace(tzinfo=UTC))


# An instant with an explicit offset, normalised to UTC; a missing offset or an overflow is a 422.
AwareDatetime = Annotated[datetime, AfterValidator(_to_utc)]
# A filter bound: a plain date (midnight) or a datetime without offset means UTC.
UtcBound = Annotated[datetime, AfterValidator(_naive_as_utc)]


class ErrorBody(BaseModel):
    error: str
    detail: Any = None
    request_id: str | None = Field(None, description="The request's X-Request-ID; quote it when reporting a problem.")

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"error": "NotFound", "detail": "unlearn request 3f0c… not found"}]}
    )
