"""The sealer: committed, unsealed audit events become leaves of the Merkle tree; checkpoints get signed.

One sealer at a time. `seal_pending` takes a transaction-scoped advisory lock (SEAL_KEY) on Postgres,
so two callers never number leaves concurrently; only the sealer ever takes it, request transactions
never do. The API's background loop (`Sealer`) elects a leader with the session-level
`pg_try_advisory_lock(SEAL_KEY)` on a connection it keeps: every API process runs the loop, one holds
the lock and seals, the others try again each interval and take over when its connection goes. On
SQLite (embedded, one API process) the loop alone seals and SQLite serialises writers anyway.

Commit order and id gaps. Ids come from a sequence at INSERT time, not at commit: transaction A may
take id 10, B id 11, and B commit first; A may also roll back, and then id 10 never appears at all.
So the sealer does not seal "every id up to a watermark" and does not wait for gaps to close (a
rolled-back id never closes, and waiting for a long transaction would stall every later event).
Instead each pass seals exactly the rows it can see with leaf_index NULL — under READ COMMITTED those
are rows of committed transactions only — in id order. A row whose transaction commits after a pass
is simply sealed by the next one, after events with larger ids: leaf order is the order in which
commits became visible to the sealer (id order within a pass), which is a valid order for a log
(events of one request are written by successive transactions, so their ids and leaves keep their
causal order). No committed event is skipped: a pass always takes the lowest unsealed ids first.

Cadence: each pass seals at most `batch` events and then signs a checkpoint when the tree grew; the
loop runs a pass every `interval` seconds and repeats at once while full batches keep coming, so a
checkpoint covers an event about `interval` seconds after its commit, or after `batch` events.
"""

import logging
import threading
import time
from dataclasses import dataclass

from sqlalchemy import Engine, func, insert, select, text, tuple_, update
from sqlalchemy.orm import Session, sessionmaker

from service.audit import merkle
from service.audit.note import sign_checkpoint
from service.audit.signing import Signer
from service.audit.translog import entry, entry_leaf_hash
from service.db.base import utcnow
from service.db.models import AuditCheckpoint, AuditEvent, AuditTreeNode

log = logging.getLogger("oblivio.sealer")

SEAL_KEY = 0x0B11_5EA1
DEFAULT_ORIGIN = "oblivio.local/audit-log"
_NUMBER = text("UPDATE audit_events AS e SET leaf_index = u.leaf_index FROM unnest(CAST(:ids AS bigint[]), "
               "CAST(:indexes AS bigint[])) AS u(id, leaf_index) WHERE e.id = u.id")
_NODES = text("INSERT INTO audit_tree_nodes (level, idx, hash) SELECT * FROM unnest(CAST(:levels AS smallint[]), "
              "CAST(:idxs AS bigint[]), CAST(:hashes AS varchar[]))")


@dataclass(frozen=True)
class SealResult:
    sealed: int
    size: int
    checkpoint: int | None  # the size of the checkpoint signed in this pass


def tree_size(session: Session) -> int:
    last = session.scalar(select(func.max(AuditTreeNode.idx)).where(AuditTreeNode.level == 0))
    return 0 if last is None else last + 1


def event_entry(row) -> dict:
    return entry(index=row.leaf_index, at=row.at.isoformat(), actor=row.actor, action=row.action,
                 subject=row.subject, data=row.data, prev_hash=row.prev_hash, hash=row.hash)  # fmt: skip


def seal_pending(session: Session, signer: Signer, *, origin: str = DEFAULT_ORIGIN, batch: int = 5000) -> SealResult:
    """Seal up to `batch` committed unsealed events, then sign a checkpoint if the tree grew. The
    caller commits. Deterministic: tests call it directly."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SEAL_KEY})
    size = tree_size(session)
    wanted = merkle.CompactRange.frontier_nodes(size)
    stored = {}
    if wanted:
        query = select(AuditTreeNode).where(tuple_(AuditTreeNode.level, AuditTreeNode.idx).in_(wanted))
        stored = {(n.level, n.idx): bytes.fromhex(n.hash) for n in session.scalars(query)}
    tree = merkle.CompactRange(size, [stored[node] for node in wanted])
    columns = (AuditEvent.id, AuditEvent.at, AuditEvent.actor, AuditEvent.action, AuditEvent.subject, AuditEvent.data,
               AuditEvent.prev_hash, AuditEvent.hash)  # fmt: skip
    rows = session.execute(select(*columns).where(AuditEvent.leaf_index.is_(None)).order_by(AuditEvent.id).limit(batch)).all()
    updates, nodes = [], []
    for row in rows:
        index = tree.size
        value = entry(index=index, at=row.at.isoformat(), actor=row.actor, action=row.action, subject=row.subject,
                      data=row.data, prev_hash=row.prev_hash, hash=row.hash)  # fmt: skip
        nodes += [{"level": lv, "idx": ix, "hash": h.hex()} for lv, ix, h in tree.append(entry_leaf_hash(value))]
        updates.append({"id": row.id, "leaf_index": index})
    if updates and session.get_bind().dialect.name == "postgresql":  # two statements, not one per row
        session.execute(_NUMBER, {"ids": [u["id"] for u in updates], "indexes": [u["leaf_index"] for u in updates]})
        session.execute(_NODES, {"levels": [n["level"] for n in nodes], "idxs": [n["idx"] for n in nodes],
                                 "hashes": [n["hash"] for n in nodes]})  # fmt: skip
    elif updates:
        session.execute(update(AuditEvent), updates)
        session.execute(insert(AuditTreeNode), nodes)
    signed = None
    latest = session.scalar(select(func.max(AuditCheckpoint.size))) or 0
    if tree.size > latest:
        now = utcnow().replace(microsecond=0)
        root = tree.root()
        note = sign_checkpoint(signer, origin=origin, size=tree.size, root=root, time=now)
        session.add(AuditCheckpoint(size=tree.size, root_hash=root.hex(), note=note, created_at=now))
        session.flush()
        signed = tree.size
    return SealResult(sealed=len(updates), size=tree.size, checkpoint=signed)


class Sealer:
    """The background loop of an API process; see the module docstring for leadership and cadence."""

    def __init__(self, engine: Engine, signer: Signer, *, origin: str, interval: float, batch: int):
        self.engine, self.signer, self.origin = engine, signer, origin
        self.interval, self.batch = interval, batch
        self.sessions = sessionmaker(engine, expire_on_commit=False)
        self._leader = None  # the connection holding the session-level advisory lock

    def run_forever(self, stop: threading.Event) -> None:
        next_pass = time.monotonic() + self.interval
        while not stop.wait(max(0.0, next_pass - time.monotonic())):
            next_pass = time.monotonic() + self.interval  # a pass every interval, start to start
            try:
                self.run_once()
            except Exception:  # the database went away, a deadlock…: release and try next interval
                log.exception("sealing failed; retrying")
                self.release()
        self.release()

    def run_once(self) -> int:
        """Seal until nothing is pending; returns the number of events sealed (0 when not the leader)."""
        if self.engine.dialect.name != "postgresql":
            return self._seal(self.sessions())
        if self._leader is None:
            connection = self.engine.connect()
            got = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": SEAL_KEY}).scalar()
            connection.commit()
            if not got:
                connection.close()
                return 0
            self._leader = connection
        return self._seal(Session(bind=self._leader, expire_on_commit=False))

    def _seal(self, session: Session) -> int:
        total = 0
        with session:
            while True:
                result = seal_pending(session, self.signer, origin=self.origin, batch=self.batch)
                session.commit()
                total += result.sealed
                if result.sealed < self.batch:
                    return total

    def release(self) -> None:
        """Give up leadership: unlock, and if that fails close the connection for good (never back to the pool
        holding the lock)."""
        if self._leader is None:
            return
        connection, self._leader = self._leader, None
        try:
            connection.rollback()
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": SEAL_KEY})
            connection.commit()
            connection.close()
        except Exception:
            log.warning("could not unlock the sealer's connection; closing it", exc_info=True)
            connection.invalidate()
            connection.close()
