"""The append-only audit log: every event's hash covers the previous event's hash.

hash_n = sha256(canonical({seq, at, actor, action, subject, data, prev_hash})). Appends are
serialised (a transaction-scoped advisory lock on Postgres; SQLite serialises writers), so the
chain never forks. Verification recomputes every hash and names the first row that does not match.
"""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from service.audit.canonical import digest
from service.db.base import utcnow
from service.db.models import AuditEvent

GENESIS = "0" * 64
_LOCK_KEY = 0x0B11_0A0D


def event_hash(*, seq: int, at: str, actor: str, action: str, subject: str, data: dict, prev_hash: str) -> str:
    return digest({"seq": seq, "at": at, "actor": actor, "action": action, "subject": subject, "data": data,
                   "prev_hash": prev_hash})


def record(session: Session, *, actor: str, action: str, subject: str, data: dict[str, Any] | None = None) -> AuditEvent:
    """Append one event in the caller's transaction."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    last = session.execute(select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)).first()
    seq, prev = (last.seq + 1, last.hash) if last else (1, GENESIS)
    at = utcnow().replace(microsecond=0)
    data = data or {}
    event = AuditEvent(
        seq=seq, at=at, actor=actor, action=action, subject=subject, data=data, prev_hash=prev,
        hash=event_hash(seq=seq, at=at.isoformat(), actor=actor, action=action, subject=subject, data=data, prev_hash=prev),
    )
    session.add(event)
    session.flush()
    return event


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    checked: int
    first_broken_seq: int | None = None
    reason: str | None = None


def verify_chain(session: Session, *, batch: int = 5000) -> ChainCheck:
    prev, expected_seq, checked = GENESIS, 1, 0
    last_seq = 0
    while True:
        rows = list(session.scalars(select(AuditEvent).where(AuditEvent.seq > last_seq).order_by(AuditEvent.seq).limit(batch)))
        if not rows:
            return ChainCheck(ok=True, checked=checked)
        for row in rows:
            if row.seq != expected_seq:
                return ChainCheck(False, checked, expected_seq, f"event {expected_seq} is missing")
            if row.prev_hash != prev:
                return ChainCheck(False, checked, row.seq, "prev_hash does not match the previous event's hash")
            recomputed = event_hash(seq=row.seq, at=row.at.isoformat(), actor=row.actor, action=row.action,
                                    subject=row.subject, data=row.data, prev_hash=row.prev_hash)
            if recomputed != row.hash:
                return ChainCheck(False, checked, row.seq, "content does not match its hash (row edited)")
            prev, expected_seq, checked, last_seq = row.hash, expected_seq + 1, checked + 1, row.seq
