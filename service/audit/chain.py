"""Appending to the audit log: `record` an event in the caller's transaction; no lock, no read.

`record` queues the event on the session; when the transaction commits, its events are inserted in
one multi-row INSERT after everything else was flushed, as *unsealed* rows: the database assigns their
ids, leaf_index stays NULL. Nothing is read and no lock is taken, so appends from any number of
transactions and processes run in parallel. A rolled-back transaction leaves no event. The sealer
(service.audit.sealer) later gives each committed event its leaf index in the Merkle tree and signs
checkpoints; until then an event is in the database but not yet in a checkpoint.

(Before the tree, this module hash-chained events under a global advisory lock held until commit;
those events are the tree's first leaves, their chain checked by service.audit.translog.verify_log.)
"""

from typing import Any

from sqlalchemy import event, insert
from sqlalchemy.orm import Session, SessionTransaction

from service.db.base import utcnow
from service.db.models import AuditEvent

_PENDING = "oblivio.audit.pending"


def record(session: Session, *, actor: str, action: str, subject: str, data: dict[str, Any] | None = None) -> None:
    """Queue one event; it is inserted (unsealed) when the caller's transaction commits."""
    at = utcnow().replace(microsecond=0)
    session.info.setdefault(_PENDING, []).append(
        {"at": at, "actor": actor, "action": action, "subject": subject, "data": dict(data or {})}
    )


@event.listens_for(Session, "before_commit")
def _append_pending(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if pending:
        session.flush()
        session.execute(insert(AuditEvent), pending)  # one INSERT … VALUES (…), (…); nothing read back


@event.listens_for(Session, "after_transaction_end")
def _drop_unwritten(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the outermost transaction ended: a rollback discards its events
        session.info.pop(_PENDING, None)
