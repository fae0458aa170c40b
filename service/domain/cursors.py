"""Keyset pagination of lists ordered newest first on (a timestamp, a uuid id): what the listing endpoints share.

A cursor is the position of the last row of a page, base64 of `[timestamp, id]`: opaque to callers, and
anything it could not have produced is a 400, never a crash. Keyset rather than offset pagination, so a
row written while a caller pages neither shifts a page nor is listed twice.
"""

import base64
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import ColumnElement, and_, or_
from sqlalchemy.orm import InstrumentedAttribute

from service.errors import BadRequest

Row = TypeVar("Row")


def after_cursor(cursor: str, at: InstrumentedAttribute, row_id: InstrumentedAttribute) -> ColumnElement[bool]:
    """The rows that come after the cursor's row in (at, id) descending order."""
    last_at, last_id = decode_cursor(cursor)
    return or_(at < last_at, and_(at == last_at, row_id < last_id))


def page_of(rows: Sequence[Row], limit: int, position: Callable[[Row], tuple[datetime, uuid.UUID]]) -> tuple[list[Row], str | None]:
    """`rows`: up to limit + 1 fetched; the page and the cursor of its last row, or None on the last page."""
    if len(rows) <= limit:
        return list(rows), None
    return list(rows[:limit]), encode_cursor(*position(rows[limit - 1]))


def encode_cursor(at: datetime, row_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(json.dumps([at.isoformat(), str(row_id)]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The inverse of `encode_cursor`; anything it did not produce is a 400, never a crash."""
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not (isinstance(decoded, list) and len(decoded) == 2 and all(isinstance(p, str) for p in decoded)):
            raise ValueError("not a pair of strings")
        at = datetime.fromisoformat(decoded[0])
        if at.tzinfo is None:
            raise ValueError("naive")
        return at.astimezone(UTC), uuid.UUID(decoded[1])
    except (ValueError, OverflowError) as exc:
        raise BadRequest("invalid cursor; use the next_cursor value of a previous page") from exc
