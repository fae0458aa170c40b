"""API keys: random tokens, stored only as their sha256, each with one role."""

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.audit.chain import record
from service.db.base import utcnow
from service.db.enums import Role
from service.db.models import ApiKey
from service.errors import Forbidden, NotFound, Unauthenticated

_PREFIX = "obl"


def hash_secret(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def actor_of(key: ApiKey) -> str:
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


def authenticate(session: Session, *, token: str | None) -> ApiKey:
    if not token:
        raise Unauthenticated("missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
    key = session.scalar(select(ApiKey).where(ApiKey.secret_hash == hash_secret(token)))
    if key is None or key.revoked_at is not None:
        raise Unauthenticated("invalid or revoked API key")
    return key


def require_role(key: ApiKey, roles: frozenset[Role]) -> None:
    if key.role is not Role.admin and key.role not in roles:
        allowed = ", ".join(sorted(r.value for r in roles | {Role.admin}))
        raise Forbidden(f"role '{key.role.value}' may not do this; allowed: {allowed}")


def revoke_api_key(session: Session, *, key_id: int, actor: str) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"API key {key_id} not found")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        record(session, actor=actor, action="api_key.revoked", subject=f"api_key:{key.id}", data={"name": key.name})
    session.flush()
    return key


def list_api_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))
