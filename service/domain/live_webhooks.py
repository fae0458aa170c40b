"""The live webhooks (not deleted, their key not revoked) that every event is matched against.

Every submission queues a `request.*` event, so an API process holds the set in memory
(`LiveWebhooks`, for `key_cache_seconds`, indexed by event type): a submission reads no webhook
row, and the set is read at most once per TTL per process, whatever the number of webhooks.
Creating or deleting a webhook, or revoking a key, empties it in the process that made the change
(`service/domain/caches.py`). Another process (another API process, the CLI) sees such a change at
the latest one TTL later: until then a new webhook misses its events, and a delivery queued for a
deleted webhook is dropped unsent by the worker (worker/webhooks.py). A session without a cache
(the worker's, which emits a few events per job) reads the set every time.
"""

import threading
import time
import uuid
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.models import ApiKey, Webhook
from service.domain import caches

CACHE = "oblivio.live_webhooks"  # where a session's `info` carries its process's LiveWebhooks


@dataclass(frozen=True, slots=True)
class LiveWebhook:
    id: uuid.UUID
    api_key_id: int
    events: frozenset[str]


@dataclass(frozen=True)
class LiveSet:
    webhooks: tuple[LiveWebhook, ...]
    by_event: dict[str, tuple[LiveWebhook, ...]] = field(init=False)

    def __post_init__(self) -> None:
        events = {e for w in self.webhooks for e in w.events}
        object.__setattr__(self, "by_event", {e: tuple(w for w in self.webhooks if e in w.events) for e in events})

    def subscribed_to(self, event_type: str) -> tuple[LiveWebhook, ...]:
        return self.by_event.get(event_type, ())


class LiveWebhooks:
    """The live set, read at most once per `ttl` seconds (0 = every time)."""

    def __init__(self, ttl: float):
        self.ttl = ttl
        self._entry: tuple[float, LiveSet] | None = None
        self._generation = 0  # bumped by every clear: a read that began before it is not kept
        self._lock = threading.Lock()
        caches.register(self)

    def get(self, session: Session) -> LiveSet:
        entry = self._entry
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        generation = self._generation
        live = read_live_webhooks(session)
        if self.ttl > 0:
            with self._lock:
                if generation == self._generation:
                    self._entry = (time.monotonic() + self.ttl, live)
        return live

    def clear(self) -> None:
        with self._lock:
            self._entry = None
            self._generation += 1


def live_webhooks(session: Session) -> LiveSet:
    """The process's cached set when the session carries one and changed no cached row, else read now."""
    cache: LiveWebhooks | None = session.info.get(CACHE)
    if cache is None or caches.is_changing(session, LiveWebhooks):
        return read_live_webhooks(session)
    return cache.get(session)


def read_live_webhooks(session: Session) -> LiveSet:
    rows = session.execute(
        select(Webhook.id, Webhook.api_key_id, Webhook.events).join(ApiKey, ApiKey.id == Webhook.api_key_id)
        .where(Webhook.deleted_at.is_(None), ApiKey.revoked_at.is_(None))
        .order_by(Webhook.id)
    )
    return LiveSet(tuple(LiveWebhook(id=r.id, api_key_id=r.api_key_id, events=frozenset(r.events)) for r in rows))
