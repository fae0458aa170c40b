"""Shared response shapes."""

from typing import Any

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Request bodies: unknown fields are an error, never silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ErrorBody(BaseModel):
    error: str
    detail: Any = None

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"error": "NotFound", "detail": "unlearn request 3f0c… not found"}]}
    )
