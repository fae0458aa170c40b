"""The append-only audit log: every event's hash covers the previous event's hash.

hash_n = sha256(canonical({seq, at, actor, action, subject, data, prev_hash})). Appends are
serialised (a transaction-scoped advisory lock on Postgres; SQLite serialises writers), so the
chain never forks. Verification recomputes every hash and names the first row that does not match.

`record` only queues an event on the session; the events are chained and inserted when the
transaction commits, after everything else in it was flushed. The advisory lock is therefore the
last lock any transaction takes (see service/domain/__init__.py for the whole order), and it is
held only for the few inserts before the commit: a transaction waiting for it holds no lock the
holder could need, so the chain's lock can never be part of a deadlock. A rolled-back
transaction leaves no event.
"""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, select, text
from sqlalchemy.orm import Session, SessionTransaction

from service.audit.canonical import digest
from service.db.base import utcnow
from service.db.models import AuditEvent

GENESIS = "0" * 64
_LOCK_KEY = 0x0B11_0A0D
_PENDING = "oblivio.audit.pending"


def event_hash(*, seq: int, at: str, actor: str, action: str, subject: str, data: dict, prev_hash: str) -> str:
    return digest({"seq": seq, "at": at, "actor": actor, "action": action, "subject": subject, "data": data,
                   "prev_hash": prev_hash})


def record(session: Session, *, actor: str, action: str, subject: str, data: dict[str, Any] | None = None) -> None:
    """Queue one event; it is chained and inserted when the caller's transaction commits."""
    at = utcnow().replace(microsecond=0)
    session.info.setdefault(_PENDING, []).append((at, actor, action, subject, dict(data or {})))


@event.listens_for(Session, "before_commit")
def _append_pending(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    session.flush()  # every row lock of the transaction is taken before the chain's lock
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    last = session.execute(select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)).first()
    seq, prev = (last.seq, last.hash) if last else (0, GENESIS)
    for at, actor, action, subject, data in pending:
        seq += 1
        link = event_hash(seq=seq, at=at.isoformat(), actor=actor, action=action, subject=subject, data=data,
                             prev_hash=prev)
        session.add(AuditEvent(seq=seq, at=at, actor=actor, action=action, subject=subject, data=data,
                               prev_hash=prev, hash=link))
        prev = link
    session.flush()


@event.listens_for(Session, "after_transaction_end")
def _drop_unwritten(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the outermost transaction ended: a rollback discards its events
        session.info.pop(_PENDING, None)


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
