"""Per-process caches of rows read on every request that rarely change (verified API keys, the live
webhooks), and how a change here empties them.

A change a cache could hide (a key revoked, a webhook created or deleted) empties the caches of
those rows in its process at once and again after its commit: a fill that ran meanwhile may have read the old
rows. Until that commit the changing session reads around the caches, so its uncommitted rows
never reach a cache that other sessions use. Another process sees the change at the latest when
its own entries expire (`key_cache_seconds`).
"""

import weakref
from typing import Protocol

from sqlalchemy import event
from sqlalchemy.orm import Session

_CHANGING = "oblivio.caches.changing"


class Cache(Protocol):
    def clear(self) -> None: ...


_CACHES: "weakref.WeakSet[Cache]" = weakref.WeakSet()


def register(cache: Cache) -> None:
    _CACHES.add(cache)


def forget(*kinds: type) -> None:
    """Empty every registered cache of these classes in this process."""
    for cache in list(_CACHES):
        if isinstance(cache, kinds):
            cache.clear()


def changed(session: Session, *kinds: type) -> None:
    """`session` changed rows that caches of these classes hold: forget them now and once more after its commit."""
    forget(*kinds)
    pending: set[type] = session.info.setdefault(_CHANGING, set())
    if not pending:

        @event.listens_for(session, "after_commit", once=True)
        def _forget(_session: Session) -> None:
            forget(*_session.info.pop(_CHANGING, ()))
    pending.update(kinds)


def is_changing(session: Session, kind: type) -> bool:
    """Whether `session` holds an uncommitted change to rows a `kind` cache holds (it must not fill one)."""
    return kind in session.info.get(_CHANGING, ())
