"""Webhooks: registration per API key, events written with the change that causes them, replay.

An event is a `webhook_deliveries` row per subscribed webhook plus an outbox row, both in the
transaction of the change (a request's new status, a published or purged version): a crash loses
no event, and a rolled-back change sends none. The worker delivers them (worker/webhooks.py),
signed per the Standard Webhooks specification, retrying with exponential back-off.

`version.superseded` is not broadcast: it goes to every webhook of each key that downloaded the
superseded checkpoint (GDPR Art. 19: tell the recipients of data to erase it), whatever events
the webhook subscribed to; keys without a webhook are named in the audit log.

Which webhooks an event goes to comes from the process's cached live set (service/domain/live_webhooks.py):
a submission reads no webhook row.
"""

import base64
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from service.audit.chain import record
from service.config import Settings
from service.db.base import utcnow
from service.db.enums import DeliveryStatus, RequestStatus, Role
from service.db.models import (
    ApiKey, CheckpointDownload, Model, ModelVersion, OutboxMessage, UnlearnRequest, Webhook, WebhookDelivery,
)
from service.domain import caches
from service.domain.auth import actor_of
from service.domain.cursors import after_cursor, page_of
from service.domain.destinations import DestinationRefused, check_destination
from service.domain.live_webhooks import LiveWebhook, LiveWebhooks, live_webhooks
from service.errors import NotFound, Unprocessable

DELIVER_WEBHOOK_TASK = "oblivio.deliver_webhook"
REQUEST_EVENTS = tuple(f"request.{s.value}" for s in RequestStatus if s is not RequestStatus.received)
VERSION_EVENTS = ("version.published", "version.superseded", "version.purged")
EVENT_TYPES = (*REQUEST_EVENTS, *VERSION_EVENTS)
SUPERSEDED = "version.superseded"
# A pending delivery this overdue lost its message (a broker restart) and is queued again. Generous: a
# worker busy with a long job holds its retries meanwhile, and each early re-send is one more no-op message.
LOST_AFTER_SECONDS = 600.0


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def create_webhook(
    session: Session, *, key: ApiKey, url: str, events: list[str], description: str, settings: Settings
) -> Webhook:
    """Register an endpoint for `key`; a refused destination is a 422 and nothing is recorded."""
    try:
        check_destination(url, allow_http=settings.webhook_allow_http, allow_private=settings.webhook_allow_private)
    except DestinationRefused as exc:
        raise Unprocessable({"message": "webhook refused; nothing was recorded",
                             "items": [{"field": "url", "problem": str(exc)}]}) from None
    webhook = Webhook(api_key_id=key.id, url=url, events=sorted(set(events)), description=description,
                      secret=new_secret())
    session.add(webhook)
    session.flush()
    caches.changed(session, LiveWebhooks)
    record(session, actor=actor_of(key), action="webhook.created", subject=f"webhook:{webhook.id}",
           data={"url": url, "events": webhook.events})
    return webhook


def list_webhooks(session: Session, *, key: ApiKey) -> list[Webhook]:
    """The key's own webhooks; an admin sees every key's."""
    query = select(Webhook).where(Webhook.deleted_at.is_(None)).order_by(Webhook.created_at, Webhook.id)
    if key.role is not Role.admin:
        query = query.where(Webhook.api_key_id == key.id)
    return list(session.scalars(query))


def get_webhook(session: Session, *, key: ApiKey, webhook_id: uuid.UUID) -> Webhook:
    """Another key's webhook is as unknown as a missing one (404), except to an admin."""
    webhook = session.get(Webhook, webhook_id)
    if webhook is None or webhook.deleted_at is not None or (key.role is not Role.admin and webhook.api_key_id != key.id):
        raise NotFound(f"webhook {webhook_id} not found")
    return webhook


def delete_webhook(session: Session, *, key: ApiKey, webhook_id: uuid.UUID) -> None:
    """Stop sending to it; its deliveries stay listable to the audit log's readers, pending ones are dropped."""
    webhook = get_webhook(session, key=key, webhook_id=webhook_id)
    webhook.deleted_at = utcnow()
    caches.changed(session, LiveWebhooks)
    record(session, actor=actor_of(key), action="webhook.deleted", subject=f"webhook:{webhook.id}", data={"url": webhook.url})
    session.flush()


def list_deliveries(
    session: Session, *, webhook: Webhook, cursor: str | None, limit: int
) -> tuple[list[WebhookDelivery], str | None]:
    """Newest first, keyset-paginated on (created_at, id) like the request list."""
    query = (select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook.id)
             .options(selectinload(WebhookDelivery.attempt_log)))
    if cursor:
        query = query.where(after_cursor(cursor, WebhookDelivery.created_at, WebhookDelivery.id))
    query = query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc()).limit(limit + 1)
    return page_of(list(session.scalars(query)), limit, lambda d: (d.created_at, d.id))


def replay_delivery(session: Session, *, key: ApiKey, webhook_id: uuid.UUID, delivery_id: uuid.UUID) -> WebhookDelivery:
    """Send a delivery again, same id and body, with a fresh budget of attempts (its past attempts stay)."""
    webhook = get_webhook(session, key=key, webhook_id=webhook_id)
    delivery = session.scalar(
        select(WebhookDelivery).where(WebhookDelivery.id == delivery_id, WebhookDelivery.webhook_id == webhook.id)
        .with_for_update()
    )
    if delivery is None:
        raise NotFound(f"delivery {delivery_id} of webhook {webhook_id} not found")
    delivery.status, delivery.attempts, delivery.finished_at = DeliveryStatus.pending, 0, None
    delivery.next_attempt_at = utcnow()
    _queue(session, delivery)
    record(session, actor=actor_of(key), action="webhook.replayed", subject=f"webhook:{webhook.id}",
           data={"delivery_id": str(delivery.id), "event": delivery.event_type})
    session.flush()
    session.expire(delivery, ["attempt_log"])
    return session.scalar(select(WebhookDelivery).where(WebhookDelivery.id == delivery.id)
                          .options(selectinload(WebhookDelivery.attempt_log)))


def emit(session: Session, *, event_type: str, data: dict[str, Any]) -> int:
    """Queue `event_type` for every live webhook subscribed to it; returns how many deliveries were queued."""
    webhooks = live_webhooks(session).subscribed_to(event_type)
    for webhook in webhooks:
        _deliver(session, webhook=webhook, event_type=event_type, data=data)
    session.flush()
    return len(webhooks)


def emit_request_status(session: Session, *, request: UnlearnRequest, model_name: str | None = None) -> int:
    """A request reached a new status: `request.<status>` with what a subscriber needs to act on it.
    `model_name`: the caller's, when it has it (the submission path reads nothing back)."""
    model = model_name or session.scalar(select(Model.name).where(Model.id == request.model_id))
    return emit(session, event_type=f"request.{request.status.value}", data={
        "request_id": str(request.id), "external_id": request.external_id, "model": model,
        "status": request.status.value, "reason": request.reason, "job_id": str(request.job_id) if request.job_id else None,
        "result_version": request.result_version, "due_at": request.due_at.isoformat(),
    })


def emit_version(session: Session, *, event_type: str, model: Model, version: ModelVersion) -> int:
    return emit(session, event_type=event_type, data=_version_data(model, version))


def record_download(session: Session, *, key: ApiKey, version: ModelVersion) -> None:
    session.add(CheckpointDownload(api_key_id=key.id, model_version_id=version.id))
    session.flush()


def notify_holders(session: Session, *, model: Model, superseded: list[ModelVersion], by_version: int, actor: str) -> None:
    """Art. 19: tell every key that downloaded a now-superseded version to delete its copy."""
    for version in superseded:
        holders = sorted(set(session.scalars(
            select(CheckpointDownload.api_key_id).where(CheckpointDownload.model_version_id == version.id)
        )))
        if not holders:
            continue
        webhooks = [w for w in live_webhooks(session).webhooks if w.api_key_id in holders]
        data = {**_version_data(model, version), "superseded_by_version": by_version,
                "action": "delete every copy of this checkpoint: it predates an erasure"}
        for webhook in webhooks:
            _deliver(session, webhook=webhook, event_type=SUPERSEDED, data=data)
        reached = {w.api_key_id for w in webhooks}
        record(session, actor=actor, action="version.holders_notified", subject=f"model:{model.name}", data={
            "version": version.version, "checkpoint_digest": version.checkpoint_digest, "holders": holders,
            "notified": sorted(reached), "without_webhook": [k for k in holders if k not in reached],
        })
    session.flush()


def backoff(attempts: int, *, settings: Settings) -> timedelta:
    """Wait after the `attempts`-th failed attempt: the base, doubled each time, capped."""
    seconds = settings.webhook_backoff_seconds * 2 ** min(attempts - 1, 30)
    return timedelta(seconds=min(seconds, settings.webhook_backoff_max_seconds))


def recover_deliveries(session: Session, *, stale_seconds: float) -> int:
    """Queue again pending deliveries overdue by `stale_seconds` (their retry message was lost)."""
    now = utcnow()
    overdue = list(session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.status == DeliveryStatus.pending,
               WebhookDelivery.next_attempt_at < now - timedelta(seconds=stale_seconds))
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(500)
        .with_for_update(skip_locked=True)
    ))
    for delivery in overdue:
        delivery.next_attempt_at = now
        _queue(session, delivery)
    session.flush()
    return len(overdue)


def _deliver(session: Session, *, webhook: LiveWebhook, event_type: str, data: dict[str, Any]) -> WebhookDelivery:
    now = utcnow()
    delivery = WebhookDelivery(id=uuid.uuid4(), webhook_id=webhook.id, event_type=event_type, next_attempt_at=now,
                               payload={"type": event_type, "timestamp": _iso(now), "data": data})
    session.add(delivery)
    session.flush()
    _queue(session, delivery)
    return delivery


def _queue(session: Session, delivery: WebhookDelivery) -> None:
    session.add(OutboxMessage(task_name=DELIVER_WEBHOOK_TASK, payload={"delivery_id": str(delivery.id)}))


def _version_data(model: Model, version: ModelVersion) -> dict[str, Any]:
    return {"model": model.name, "version": version.version, "checkpoint_digest": version.checkpoint_digest,
            "status": version.status.value}


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")
