"""Deliver one webhook attempt, signed per the Standard Webhooks specification, and record it.

The delivery row is locked (SKIP LOCKED) for the attempt, so a duplicate message never sends twice
at once; a message for a delivery that is finished, or not yet due (a newer retry is scheduled),
does nothing. Each attempt is recorded with the receiver's status and the time it took; a 2xx
ends the delivery, anything else (including a redirect, a timeout, a refused destination) is
retried after `backoff` until `webhook_max_attempts`.
"""

import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks import Webhook as Signer

from service.config import Settings
from service.db.base import utcnow
from service.db.enums import DeliveryStatus
from service.db.models import Webhook, WebhookAttempt, WebhookDelivery
from service.domain.destinations import DestinationRefused, check_destination
from service.domain.webhooks import backoff

log = logging.getLogger("oblivio.webhooks")
USER_AGENT = "Oblivio-Webhooks/1"


@dataclass(frozen=True)
class Outcome:
    result: str  # succeeded, retry, failed, or why nothing was sent: busy, finished, not_due, missing
    retry_in: float | None = None


def deliver(sessions: sessionmaker[Session], settings: Settings, delivery_id: uuid.UUID, client: httpx.Client) -> Outcome:
    with sessions() as session:
        delivery = session.scalar(
            select(WebhookDelivery).where(WebhookDelivery.id == delivery_id).with_for_update(skip_locked=True)
        )
        if delivery is None:
            exists = session.scalar(select(WebhookDelivery.id).where(WebhookDelivery.id == delivery_id))
            return Outcome("busy" if exists else "missing")
        if delivery.status is not DeliveryStatus.pending:
            return Outcome("finished")
        now = utcnow()
        if delivery.next_attempt_at > now + timedelta(seconds=1):
            return Outcome("not_due")
        webhook = session.get(Webhook, delivery.webhook_id)
        if webhook.deleted_at is not None:
            delivery.status, delivery.finished_at = DeliveryStatus.failed, now
            session.commit()
            return Outcome("failed")
        number = 1 + session.scalar(select(func.count()).where(WebhookAttempt.delivery_id == delivery.id))
        code, error, ms = _attempt(client, settings, webhook=webhook, delivery=delivery)
        session.add(WebhookAttempt(delivery_id=delivery.id, number=number, at=now, status_code=code,
                                   duration_ms=ms, error=error))
        delivery.attempts += 1
        delivery.last_status_code = code
        outcome = _settle(delivery, ok=code is not None and 200 <= code < 300, settings=settings)
        session.commit()
    log.info("webhook delivery %s attempt %d: %s (%s)", delivery_id, number, outcome.result, code or error,
             extra={"delivery_id": str(delivery_id), "status_code": code, "duration_ms": round(ms, 1)})
    return outcome


def _settle(delivery: WebhookDelivery, *, ok: bool, settings: Settings) -> Outcome:
    now = utcnow()
    if ok:
        delivery.status, delivery.finished_at = DeliveryStatus.succeeded, now
        return Outcome("succeeded")
    if delivery.attempts >= settings.webhook_max_attempts:
        delivery.status, delivery.finished_at = DeliveryStatus.failed, now
        return Outcome("failed")
    wait = backoff(delivery.attempts, settings=settings)
    delivery.next_attempt_at = now + wait
    return Outcome("retry", retry_in=wait.total_seconds())


def signed_request(webhook: Webhook, delivery: WebhookDelivery) -> tuple[bytes, dict[str, str]]:
    """The body (the stored payload, compact JSON) and the Standard Webhooks headers of one attempt."""
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    msg_id, at = str(delivery.id), utcnow()
    return body, {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Signer(webhook.secret).sign(msg_id=msg_id, timestamp=at, data=body),
    }


def _attempt(client: httpx.Client, settings: Settings, *, webhook: Webhook, delivery: WebhookDelivery
             ) -> tuple[int | None, str | None, float]:
    started = time.perf_counter()
    try:
        check_destination(webhook.url, allow_http=settings.webhook_allow_http, allow_private=settings.webhook_allow_private)
        body, headers = signed_request(webhook, delivery)
        # The status is the answer; the receiver's body is never read (it could be anything, of any size).
        with client.stream("POST", webhook.url, content=body, headers=headers,
                           timeout=settings.webhook_timeout_seconds) as response:
            error = None if response.is_success else f"HTTP {response.status_code}"
            return response.status_code, error, (time.perf_counter() - started) * 1000
    except (DestinationRefused, httpx.HTTPError) as exc:
        return None, f"{type(exc).__name__}: {exc}"[:1000], (time.perf_counter() - started) * 1000
