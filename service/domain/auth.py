"""API keys: random tokens, stored only as their sha256, each with one role.

A verified key is cached in the process for `key_cache_seconds` (`KeyCache`): the hash of the
presented secret maps to the key's id, name and role, so a request authenticates without a query.
A revoke empties every cache of the revoking process at once (and again after its commit, see
`service/domain/caches.py`); in another process a revoked key is refused at the latest when its
cache entry expires.
"""

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.audit.chain import record
from service.db.base import utcnow
from service.db.enums import Role
from service.db.models import ApiKey
from service.domain import caches
from service.domain.live_webhooks import LiveWebhooks
from service.errors import Forbidden, NotFound, Unauthenticated

_PREFIX = "obl"


def hash_secret(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as: what handlers read from a verified key (never its secret hash)."""

    id: int
    name: str
    role: Role

    @classmethod
    def of(cls, key: ApiKey) -> "Principal":
        return cls(id=key.id, name=key.name, role=key.role)


class KeyCache:
    """Secret hash -> verified `Principal`, each entry for `ttl` seconds; only active keys are cached."""

    def __init__(self, ttl: float, max_entries: int = 10_000):
        self.ttl, self.max_entries = ttl, max_entries
        self._entries: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()
        caches.register(self)

    def get(self, secret_hash: str) -> Principal | None:
        entry = self._entries.get(secret_hash)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            with self._lock:
                self._entries.pop(secret_hash, None)
            return None
        return entry[1]

    def put(self, secret_hash: str, principal: Principal) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()  # a flood of distinct keys: start over rather than grow
            self._entries[secret_hash] = (time.monotonic() + self.ttl, principal)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def actor_of(key: "ApiKey | Principal") -> str:
    return f"key:{key.id}:{key.name}:{key.role.value}"


def create_api_key(session: Session, *, name: str, role: Role, actor: str = "system") -> tuple[ApiKey, str]:
    """Create a key; the plaintext token is returned once and never stored."""
    prefix = secrets.token_hex(4)
    token = f"{_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(name=name, role=role, prefix=prefix, secret_hash=hash_secret(token))
    session.add(key)
    session.flush()
    record(session, actor=actor, action="api_key.created", subject=f"api_key:{key.id}", data={"name": name, "role": role.value})
    return key, token


def require_token(token: str | None) -> str:
    if not token:
        raise Unauthenticated("missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
    return token


def cached_principal(cache: KeyCache | None, token: str | None) -> Principal | None:
    """The cached principal of this token, or None (not cached, expired, or no cache); raises on no token."""
    return cache.get(hash_secret(require_token(token))) if cache is not None else None


def authenticate(session: Session, *, token: str | None, cache: KeyCache | None = None) -> Principal:
    secret_hash = hash_secret(require_token(token))
    if cache is not None and (hit := cache.get(secret_hash)) is not None:
        return hit
    key = session.execute(
        select(ApiKey.id, ApiKey.name, ApiKey.role, ApiKey.revoked_at).where(ApiKey.secret_hash == secret_hash)
    ).first()
    if key is None or key.revoked_at is not None:
        raise Unauthenticated("invalid or revoked API key")
    principal = Principal(id=key.id, name=key.name, role=key.role)
    if cache is not None:
        cache.put(secret_hash, principal)
    return principal


def require_role(key: "ApiKey | Principal", roles: frozenset[Role]) -> None:
    if key.role is not Role.admin and key.role not in roles:
        allowed = ", ".join(sorted(r.value for r in roles | {Role.admin}))
        raise Forbidden(f"role '{key.role.value}' may not do this; allowed: {allowed}")


def revoke_api_key(session: Session, *, key_id: int, actor: str) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"API key {key_id} not found")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        caches.changed(session, KeyCache, LiveWebhooks)  # its webhooks stop receiving events too
        record(session, actor=actor, action="api_key.revoked", subject=f"api_key:{key.id}", data={"name": key.name})
    session.flush()
    return key


def list_api_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))
