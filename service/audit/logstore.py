"""Reading the transparency log from the database: checkpoints, proofs, a request's proofs, export, verification.

Proofs come from the stored perfect-subtree hashes (audit_tree_nodes): a proof is planned from the
two sizes alone (service.audit.merkle), its nodes fetched in one query, and assembled; O(log n).
Verification does not trust those stored hashes for the roots: it recomputes every leaf from its row
and the tree from the leaves, and compares with every signed checkpoint (service.audit.translog).
"""

from collections.abc import Iterator
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from service.audit import merkle
from service.audit.sealer import event_entry
from service.audit.translog import LogCheck, b64, verify_log
from service.db.models import AuditCheckpoint, AuditEvent, AuditTreeNode


EVENT_COLUMNS = (AuditEvent.leaf_index, AuditEvent.at, AuditEvent.actor, AuditEvent.action, AuditEvent.subject,
                 AuditEvent.data, AuditEvent.prev_hash, AuditEvent.hash)  # fmt: skip


def latest_checkpoint(session: Session) -> AuditCheckpoint | None:
    return session.scalar(select(AuditCheckpoint).order_by(AuditCheckpoint.size.desc()).limit(1))


def checkpoint_of_size(session: Session, size: int) -> AuditCheckpoint | None:
    return session.get(AuditCheckpoint, size)


def _nodes(session: Session, wanted: set[merkle.Node]) -> dict[merkle.Node, bytes]:
    found: dict[merkle.Node, bytes] = {}
    ordered = sorted(wanted)
    for i in range(0, len(ordered), 500):
        query = select(AuditTreeNode).where(tuple_(AuditTreeNode.level, AuditTreeNode.idx).in_(ordered[i:i + 500]))
        found.update({(n.level, n.idx): bytes.fromhex(n.hash) for n in session.scalars(query)})
    if len(found) != len(wanted):
        raise LookupError("the tree is missing nodes")
    return found


def inclusion_proof(session: Session, index: int, size: int) -> list[bytes]:
    ranges = merkle.inclusion_ranges(index, size)
    return merkle.assemble(ranges, _nodes(session, merkle.nodes_for(ranges)))


def inclusion_proofs(session: Session, indexes: list[int], size: int) -> dict[int, list[bytes]]:
    """Several proofs against one size, their nodes in one round trip."""
    plans = {i: merkle.inclusion_ranges(i, size) for i in indexes}
    nodes = _nodes(session, set().union(*(merkle.nodes_for(r) for r in plans.values()))) if plans else {}
    return {i: merkle.assemble(r, nodes) for i, r in plans.items()}


def consistency_proof(session: Session, first: int, second: int) -> list[bytes]:
    ranges = merkle.consistency_ranges(first, second)
    return merkle.assemble(ranges, _nodes(session, merkle.nodes_for(ranges)))


def leaf_hash(session: Session, index: int) -> bytes | None:
    node = session.get(AuditTreeNode, (0, index))
    return None if node is None else bytes.fromhex(node.hash)


def subject_log(session: Session, subject: str) -> dict[str, Any]:
    """The receipt's `transparency_log` section: the subject's events (leaf index and entry) and,
    for each one sealed, its inclusion proof against the latest checkpoint, with that checkpoint."""
    rows = list(session.scalars(select(AuditEvent).where(AuditEvent.subject == subject).order_by(AuditEvent.id)))
    checkpoint = latest_checkpoint(session)
    size = checkpoint.size if checkpoint else 0
    covered = [r.leaf_index for r in rows if r.leaf_index is not None and r.leaf_index < size]
    proofs = inclusion_proofs(session, covered, size)
    events = []
    for row in rows:
        if row.leaf_index is not None and row.leaf_index in proofs:
            events.append({"index": row.leaf_index, "entry": event_entry(row),
                           "inclusion_proof": [b64(p) for p in proofs[row.leaf_index]]})  # fmt: skip
        else:
            events.append({"index": None, "action": row.action, "at": row.at.isoformat()})
    return {"checkpoint": checkpoint.note if checkpoint else None, "size": size, "events": events}


def sealed_leaves(session: Session, *, batch: int = 5000) -> Iterator[tuple[dict[str, Any], bytes | None]]:
    """Every sealed event in leaf order with the leaf hash stored when it was sealed (None if absent)."""
    after = -1
    while True:
        query = (select(*EVENT_COLUMNS, AuditTreeNode.hash.label("stored"))
                 .outerjoin(AuditTreeNode, (AuditTreeNode.level == 0) & (AuditTreeNode.idx == AuditEvent.leaf_index))
                 .where(AuditEvent.leaf_index > after).order_by(AuditEvent.leaf_index).limit(batch))  # fmt: skip
        rows = session.execute(query).all()
        if not rows:
            return
        for row in rows:
            yield event_entry(row), (bytes.fromhex(row.stored) if row.stored else None)
        after = rows[-1].leaf_index


def checkpoint_notes(session: Session) -> list[str]:
    return list(session.scalars(select(AuditCheckpoint.note).order_by(AuditCheckpoint.size)))


def verify_tree(session: Session, public_key: Ed25519PublicKey) -> LogCheck:
    return verify_log(sealed_leaves(session), checkpoint_notes(session), public_key)


def export(session: Session) -> Iterator[dict[str, Any]]:
    """JSON lines: one {"checkpoint": note} per checkpoint, then one {"entry", "leaf_hash"} per leaf."""
    for note in checkpoint_notes(session):
        yield {"checkpoint": note}
    for value, stored in sealed_leaves(session):
        yield {"entry": value, "leaf_hash": b64(stored) if stored is not None else None}
