"""Webhooks, their deliveries and attempts."""

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from service.db.enums import DeliveryStatus
from service.domain.webhooks import EVENT_TYPES
from service.schemas.common import Strict

EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]


class WebhookCreate(Strict):
    url: Annotated[str, StringConstraints(min_length=1, max_length=2048)] = Field(
        description="https URL receiving the events (http and private addresses only where the service allows them)"
    )
    events: Annotated[list[EventType], Field(min_length=1, max_length=len(EVENT_TYPES))] = Field(
        description="event types to receive; `version.superseded` notices reach holders of a checkpoint whatever they list"
    )
    description: Annotated[str, StringConstraints(max_length=500)] = ""


class WebhookView(BaseModel):
    id: uuid.UUID
    url: str
    events: list[str]
    description: str
    api_key_id: int
    created_at: datetime


class WebhookCreated(WebhookView):
    secret: str = Field(description="`whsec_…`: verifies the `webhook-signature` header; shown only now")


class AttemptView(BaseModel):
    number: int
    at: datetime
    status_code: int | None
    duration_ms: float
    error: str | None


class DeliveryView(BaseModel):
    id: uuid.UUID = Field(description="sent as the `webhook-id` header, the same on every attempt and replay")
    event_type: str
    status: DeliveryStatus
    attempts: int = Field(description="attempts in the current round (a replay starts a new one)")
    next_attempt_at: datetime | None
    last_status_code: int | None
    created_at: datetime
    finished_at: datetime | None
    payload: dict[str, Any]
    attempt_log: list[AttemptView] = Field(description="every attempt, first to last")


class DeliveryPage(BaseModel):
    items: list[DeliveryView]
    next_cursor: str | None = Field(description="Pass as `cursor` to get the next page; null on the last page.")
