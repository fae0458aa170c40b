"""Webhooks: an API key registers its own endpoints; an admin sees and manages everyone's."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from service.api.deps import AnyRole, SessionDep, SettingsDep
from service.api.responses import errors
from service.api.routing import GuardedRoute
from service.db.enums import DeliveryStatus
from service.db.models import WebhookDelivery
from service.domain.webhooks import (
    create_webhook, delete_webhook, get_webhook, list_deliveries, list_webhooks, replay_delivery,
)
from service.schemas.webhooks import DeliveryPage, DeliveryView, WebhookCreate, WebhookCreated, WebhookView

router = APIRouter(prefix="/webhooks", tags=["webhooks"], responses=errors(), route_class=GuardedRoute)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=WebhookCreated)
def create(body: WebhookCreate, key: AnyRole, session: SessionDep, settings: SettingsDep) -> WebhookCreated:
    """Register an endpoint for this key; the signing secret is in this response only. 422 for a refused URL."""
    webhook = create_webhook(session, key=key, url=body.url, events=list(body.events), description=body.description,
                             settings=settings)
    return WebhookCreated(**WebhookView.model_validate(webhook, from_attributes=True).model_dump(), secret=webhook.secret)


@router.get("", response_model=list[WebhookView])
def index(key: AnyRole, session: SessionDep) -> list[WebhookView]:
    return [WebhookView.model_validate(w, from_attributes=True) for w in list_webhooks(session, key=key)]


@router.get("/{webhook_id}", response_model=WebhookView)
def show(webhook_id: uuid.UUID, key: AnyRole, session: SessionDep) -> WebhookView:
    return WebhookView.model_validate(get_webhook(session, key=key, webhook_id=webhook_id), from_attributes=True)


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def remove(webhook_id: uuid.UUID, key: AnyRole, session: SessionDep) -> Response:
    delete_webhook(session, key=key, webhook_id=webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{webhook_id}/deliveries", response_model=DeliveryPage)
def deliveries(
    webhook_id: uuid.UUID,
    key: AnyRole,
    session: SessionDep,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> DeliveryPage:
    """Newest first, each with its attempts (status code, duration, error); cursor-paginated."""
    webhook = get_webhook(session, key=key, webhook_id=webhook_id)
    rows, next_cursor = list_deliveries(session, webhook=webhook, cursor=cursor, limit=limit)
    return DeliveryPage(items=[_view(d) for d in rows], next_cursor=next_cursor)


@router.post("/{webhook_id}/deliveries/{delivery_id}/replay", status_code=status.HTTP_202_ACCEPTED,
             response_model=DeliveryView)
def replay(webhook_id: uuid.UUID, delivery_id: uuid.UUID, key: AnyRole, session: SessionDep) -> DeliveryView:
    """Send the delivery again (same `webhook-id` and body, fresh signature and attempts)."""
    return _view(replay_delivery(session, key=key, webhook_id=webhook_id, delivery_id=delivery_id))


def _view(delivery: WebhookDelivery) -> DeliveryView:
    view = DeliveryView.model_validate(delivery, from_attributes=True)
    return view if delivery.status is DeliveryStatus.pending else view.model_copy(update={"next_attempt_at": None})
